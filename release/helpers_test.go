package release_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/forge/github"
	"github.com/foureyes-dev/foureyes/forge/gitlab"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
	"github.com/foureyes-dev/foureyes/release"
	"github.com/foureyes-dev/foureyes/store"
)

// The adapters and the store are what cmd/foureyes hands the guard.
var (
	_ release.Forge = (*github.Forge)(nil)
	_ release.Forge = (*gitlab.Forge)(nil)
	_ release.Store = (*store.DB)(nil)
)

// t0 is "now" in every scenario: the tag or push happens at t0. It is the
// real time (whole seconds) because ghinstallation judges the fake's
// installation tokens by the real clock.
var t0 = time.Now().UTC().Truncate(time.Second)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// metrics records the guard's Observer calls.
type metrics struct {
	mu sync.Mutex
	n  map[string]int // "forge/reason" -> count
}

func (m *metrics) observe(forge, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n[forge+"/"+reason]++
}

func (m *metrics) snapshot() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for k, v := range m.n {
		out[k] = v
	}
	return out
}

// harness is what both forges' scenarios share: the real SQLite store
// and a guard wired as cmd/foureyes wires it.
type harness struct {
	t       *testing.T
	ctx     context.Context
	db      *store.DB
	guard   *release.Guard
	metrics *metrics
	clock   *clock
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := context.Background()
	c := &clock{t: t0}
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "foureyes.db"), nil, store.WithClock(c.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m := &metrics{n: map[string]int{}}
	h := &harness{t: t, ctx: ctx, db: db, metrics: m, clock: c}
	h.guard = &release.Guard{Forges: map[bot.ForgeName]release.Forge{}, Store: db, Observer: m.observe, Now: c.Now}
	return h
}

// fact records what bot.Service would have stored about a change.
func (h *harness) fact(ref bot.ChangeRef, kind, key, value string) {
	h.t.Helper()
	if err := h.db.PutFact(h.ctx, bot.FactScope(ref, kind), key, value); err != nil {
		h.t.Fatal(err)
	}
}

// flags returns the flag audit records' data.
func (h *harness) audits(kind string) []audit.Record {
	h.t.Helper()
	recs, err := h.db.AuditRecords(h.ctx, store.AuditFilter{})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []audit.Record
	for _, r := range recs {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

type flagAudit struct {
	Branch  string `json:"branch"`
	Pusher  string `json:"pusher"`
	Before  string `json:"before"`
	After   string `json:"after"`
	Forced  bool   `json:"forced"`
	Commits []struct {
		SHA    string         `json:"sha"`
		Author string         `json:"author"`
		Reason release.Reason `json:"reason"`
		Change int            `json:"change"`
	} `json:"commits"`
}

func (h *harness) flagAudits() []flagAudit {
	h.t.Helper()
	var out []flagAudit
	for _, r := range h.audits(audit.KindFlag) {
		var d flagAudit
		if err := json.Unmarshal(r.Data, &d); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// reasons lists "sha-prefix:reason" of a flag record, sorted.
func (d flagAudit) reasons() []string {
	var out []string
	for _, c := range d.Commits {
		out = append(out, c.SHA[:min(7, len(c.SHA))]+":"+string(c.Reason))
	}
	sort.Strings(out)
	return out
}

// ---- GitHub ----

var ghKey = sync.OnceValues(func() (*rsa.PrivateKey, []byte) {
	k, p, err := fakegithub.GenerateKey()
	if err != nil {
		panic(err)
	}
	return k, p
})

const ghAppID = 4242

var ghRepo = bot.Repo{FullName: "acme/app", ID: 7, DefaultBranch: "main", Installation: 1}

type ghEnv struct {
	*harness
	fake  *fakegithub.Fake
	forge *github.Forge
}

func newGitHub(t *testing.T) *ghEnv {
	t.Helper()
	h := newHarness(t)
	key, pemBytes := ghKey()
	fake := fakegithub.New(ghAppID, &key.PublicKey, fakegithub.WithNow(h.clock.Now))
	t.Cleanup(fake.Close)
	f, err := github.New(github.Config{
		AppID: ghAppID, PrivateKey: pemBytes, APIURL: fake.URL(), Transport: fake.Client().Transport, Now: h.clock.Now,
		Sleep: func(context.Context, time.Duration) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	fake.AddRepo(ghRepo.FullName)
	for login, role := range map[string]string{"alice": "write", "bob": "write", "carol": "write", "dave": "admin"} {
		fake.SetPermission(ghRepo.FullName, login, role)
	}
	h.guard.Forges[bot.GitHub] = f
	return &ghEnv{harness: h, fake: fake, forge: f}
}

func ghIdent(login string, at time.Time) fakegithub.Identity {
	return fakegithub.Identity{Name: strings.ToUpper(login[:1]) + login[1:], Email: login + "@example.com", Login: login, Date: at}
}

func ghCommit(name, author string, at time.Time) fakegithub.Commit {
	return fakegithub.Commit{SHA: fakegithub.SHA(name), Message: name + "\n\nbody", Author: ghIdent(author, at), Committer: ghIdent(author, at)}
}

// prSpec describes a merged pull request of a scenario.
type prSpec struct {
	number   int
	author   string
	commits  []fakegithub.Commit // oldest first; the last is the final head
	files    []fakegithub.File
	reviews  []fakegithub.Review
	pushers  map[string]string // head SHA -> pusher login, as the service recorded them
	digests  map[string]string // head SHA -> diff digest, as the service recorded them
	mergedAt time.Time
	merge    string // merge commit name ("" = none)
	base     string
}

func (e *ghEnv) mergedPR(s prSpec) {
	e.t.Helper()
	if s.files == nil {
		s.files = []fakegithub.File{{Filename: fmt.Sprintf("pkg/f%d.go", s.number), Patch: fmt.Sprintf("@@ -1 +1 @@\n-a\n+b%d", s.number)}}
	}
	if s.base == "" {
		s.base = "main"
	}
	head := s.commits[len(s.commits)-1].SHA
	pr := fakegithub.PR{
		Number: s.number, Title: fmt.Sprintf("Change %d", s.number), Author: fakegithub.User{Login: s.author},
		State: "closed", Merged: true, MergedAt: s.mergedAt, BaseRef: s.base, HeadRef: fmt.Sprintf("topic-%d", s.number),
		Files: s.files, Commits: s.commits, HeadSHA: head, CreatedAt: s.mergedAt.Add(-48 * time.Hour), UpdatedAt: s.mergedAt,
	}
	if s.merge != "" {
		pr.MergeCommitSHA = fakegithub.SHA(s.merge)
		e.fake.SetCommitPulls(ghRepo.FullName, pr.MergeCommitSHA, s.number)
	}
	e.fake.AddPR(ghRepo.FullName, pr)
	for _, c := range s.commits {
		e.fake.SetCommitPulls(ghRepo.FullName, c.SHA, s.number)
	}
	for _, r := range s.reviews {
		e.fake.AddReview(ghRepo.FullName, s.number, r)
	}
	ref := bot.ChangeRef{Forge: bot.GitHub, Repo: ghRepo, Number: s.number, HeadSHA: head}
	if s.pushers == nil {
		s.pushers = map[string]string{head: s.author}
	}
	for sha, who := range s.pushers {
		e.fact(ref, "pusher", sha, who)
	}
	for sha, d := range s.digests {
		e.fact(ref, "digest", sha, d)
	}
}

func approve(by, sha string, at time.Time) fakegithub.Review {
	return fakegithub.Review{User: fakegithub.User{Login: by}, State: "APPROVED", CommitID: sha, SubmittedAt: at}
}

func ghPush(delivery, before, after string, pusher string, forced bool, commits ...fakegithub.Commit) bot.Event {
	p := &bot.PushEvent{Ref: "refs/heads/main", Before: before, After: after, Forced: forced, Pusher: bot.User{Login: pusher}}
	for _, c := range commits {
		p.Commits = append(p.Commits, bot.PushCommit{
			SHA: c.SHA, Message: c.Message, Time: c.Committer.Date,
			Author:    bot.User{Login: c.Author.Login, Name: c.Author.Name, Email: c.Author.Email},
			Committer: bot.User{Login: c.Committer.Login, Name: c.Committer.Name, Email: c.Committer.Email},
		})
	}
	return bot.Event{Forge: bot.GitHub, DeliveryID: delivery, Name: "push", Kind: bot.EventBranchPush, Repo: ghRepo,
		Sender: bot.User{Login: pusher}, Received: t0, Push: p}
}

func (e *ghEnv) handle(ev bot.Event) error {
	e.t.Helper()
	return e.guard.HandlePush(e.ctx, ev)
}

func (e *ghEnv) mustHandle(ev bot.Event) {
	e.t.Helper()
	if err := e.handle(ev); err != nil {
		e.t.Fatalf("HandlePush: %v\nrequests:\n%s", err, strings.Join(e.requestLog(), "\n"))
	}
}

func (e *ghEnv) requestLog() []string {
	var out []string
	for _, r := range e.fake.Requests() {
		out = append(out, fmt.Sprintf("%s %s?%s %d", r.Method, r.Path, r.Query, r.Status))
	}
	return out
}

// ---- GitLab ----

const (
	glProject = 42
	glBot     = 1
	glAlice   = 2
	glBob     = 3
	glMallory = 4
	glDave    = 5
)

var glRepo = bot.Repo{FullName: "acme/app", ID: glProject, DefaultBranch: "main"}

type glEnv struct {
	*harness
	fake  *fakegitlab.Server
	forge *gitlab.Forge
}

func newGitLab(t *testing.T) *glEnv {
	t.Helper()
	h := newHarness(t)
	fake := fakegitlab.New()
	t.Cleanup(fake.Close)
	fake.SetClock(h.clock.Now)
	for _, u := range []fakegitlab.User{
		{ID: glBot, Username: "project_42_bot_1", Name: "foureyes", Bot: true},
		{ID: glAlice, Username: "alice", PublicEmail: "alice@example.com"},
		{ID: glBob, Username: "bob", PublicEmail: "bob@example.com"},
		{ID: glMallory, Username: "mallory", PublicEmail: "mallory@example.com"},
		{ID: glDave, Username: "dave", PublicEmail: "dave@example.com"},
	} {
		fake.AddUser(u)
	}
	fake.AddToken("tok-bot", glBot)
	fake.AddToken("tok-mallory", glMallory)
	fake.AddProject(fakegitlab.Project{ID: glProject, PathWithNamespace: "acme/app", DefaultBranch: "main"})
	for _, id := range []int{glBot, glAlice, glBob, glMallory} {
		fake.SetMember(glProject, id, fakegitlab.Developer)
	}
	fake.SetMember(glProject, glDave, fakegitlab.Maintainer)
	f, err := gitlab.New(gitlab.Config{BaseURL: fake.URL(), Token: "tok-bot", Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	h.guard.Forges[bot.GitLab] = f
	return &glEnv{harness: h, fake: fake, forge: f}
}

func glCommit(id, author string, at time.Time, parents ...string) fakegitlab.Commit {
	return fakegitlab.Commit{ID: id, Message: id + "\n", AuthorName: author, AuthorEmail: author + "@example.com", Date: at, ParentIDs: parents}
}

func glPush(delivery, before, after, pusher string, total int, commits ...fakegitlab.Commit) bot.Event {
	p := &bot.PushEvent{Ref: "refs/heads/main", Before: before, After: after, Pusher: bot.User{Login: pusher},
		Truncated: total > len(commits)}
	for _, c := range commits {
		p.Commits = append(p.Commits, bot.PushCommit{SHA: c.ID, Message: c.Message, Time: c.Date,
			Author: bot.User{Name: c.AuthorName, Email: c.AuthorEmail}})
	}
	return bot.Event{Forge: bot.GitLab, DeliveryID: delivery, Name: "Push Hook", Kind: bot.EventBranchPush, Repo: glRepo,
		Sender: bot.User{Login: pusher}, Received: t0, Push: p}
}
