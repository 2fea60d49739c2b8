package github_test

import (
	"context"
	"crypto/rsa"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/forge/github"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
)

const appID = 4242

// testKey is one real RSA key for the package: generating a 2048-bit key
// per test would only slow the tests down.
var testKey = sync.OnceValues(func() (*rsa.PrivateKey, []byte) {
	k, p, err := fakegithub.GenerateKey()
	if err != nil {
		panic(err)
	}
	return k, p
})

// clock is a settable time source shared by the adapter and the fake.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t     *testing.T
	fake  *fakegithub.Fake
	forge *github.Forge
	clock *clock
	ctx   context.Context

	mu     sync.Mutex
	sleeps []time.Duration
}

type envOpt struct {
	prefix      string
	maxAttempts int
	maxWait     time.Duration
	apiURL      func(f *fakegithub.Fake) string
}

func newEnv(t *testing.T, o envOpt) *env {
	t.Helper()
	key, pemBytes := testKey()
	e := &env{t: t, clock: &clock{t: time.Now().Truncate(time.Second)}, ctx: context.Background()}
	opts := []fakegithub.Option{fakegithub.WithNow(e.clock.Now)}
	if o.prefix != "" {
		opts = append(opts, fakegithub.WithPrefix(o.prefix))
	}
	e.fake = fakegithub.New(appID, &key.PublicKey, opts...)
	t.Cleanup(e.fake.Close)
	if o.maxAttempts == 0 {
		o.maxAttempts = 4
	}
	api := e.fake.URL()
	if o.apiURL != nil {
		api = o.apiURL(e.fake)
	}
	f, err := github.New(github.Config{
		AppID:        appID,
		PrivateKey:   pemBytes,
		APIURL:       api,
		Transport:    e.fake.Client().Transport,
		Now:          e.clock.Now,
		MaxAttempts:  o.maxAttempts,
		MaxRetryWait: o.maxWait,
		Sleep: func(_ context.Context, d time.Duration) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.sleeps = append(e.sleeps, d)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.forge = f
	return e
}

func (e *env) Sleeps() []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Duration(nil), e.sleeps...)
}

var repo = bot.Repo{FullName: "acme/app", ID: 7, DefaultBranch: "main", Installation: 1}

var (
	baseSHA = fakegithub.SHA("base")
	headSHA = fakegithub.SHA("head")
)

// requests renders the fake's request log compactly for assertions and
// failure messages.
func (e *env) requests() []string {
	var out []string
	for _, r := range e.fake.Requests() {
		s := fmt.Sprintf("%s %s %d", r.Method, r.Path, r.Status)
		if r.Query != "" {
			s = fmt.Sprintf("%s %s?%s %d", r.Method, r.Path, r.Query, r.Status)
		}
		out = append(out, s)
	}
	return out
}

func (e *env) countPath(method, sub string) int {
	n := 0
	for _, r := range e.fake.Requests() {
		if r.Method == method && strings.Contains(r.Path, sub) {
			n++
		}
	}
	return n
}

func user(login string) fakegithub.User { return fakegithub.User{Login: login} }

func ident(name, email, login string) fakegithub.Identity {
	return fakegithub.Identity{Name: name, Email: email, Login: login, Date: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
}

// smallPR adds the budget scenario's pull request: one file, one commit by
// its author, at headSHA on main@baseSHA.
func (e *env) smallPR() {
	e.fake.AddRepo(repo.FullName)
	e.fake.AddPR(repo.FullName, fakegithub.PR{
		Number: 1, Title: "Fix the thing", Author: user("alice"),
		HeadRef: "fix", BaseRef: "main", BaseSHA: baseSHA,
		Files:   []fakegithub.File{{Filename: "main.go", Patch: "@@ -1 +1 @@\n-a\n+b", Additions: 1, Deletions: 1}},
		Commits: []fakegithub.Commit{{SHA: headSHA, Message: "fix", Author: ident("Alice", "alice@example.com", "alice"), Committer: ident("Alice", "alice@example.com", "alice")}},
	})
}

func mustChange(t *testing.T, e *env, ref bot.ChangeRef, teams ...string) *bot.Change {
	t.Helper()
	ch, err := e.forge.Change(e.ctx, ref, teams)
	if err != nil {
		t.Fatalf("Change: %v\nrequests: %v", err, e.requests())
	}
	return ch
}

func prRef(n int, head string) bot.ChangeRef {
	return bot.ChangeRef{Forge: bot.GitHub, Repo: repo, Number: n, HeadSHA: head}
}
