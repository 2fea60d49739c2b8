package github_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/forge/github"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
	"github.com/foureyes-dev/foureyes/store"
)

// The base branch's policy reuse (bot/policycache.go) seen from GitHub,
// through the service: GitHub does not opt in.

const (
	ghOnePolicy = "version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    approvals: 1\n"
	ghTwoPolicy = "version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    approvals: 2\n"
)

type ghPolicyEnv struct {
	*env
	svc   *bot.Service
	clock time.Time
	asked *askCounter
}

// askCounter is the real adapter, counting how often the domain asks it
// for a policy.
type askCounter struct {
	*github.Forge
	n int
}

func (a *askCounter) Policy(ctx context.Context, r bot.Repo, ref string) (bot.PolicyFile, error) {
	a.n++
	return a.Forge.Policy(ctx, r, ref)
}

func newGHPolicyEnv(t *testing.T) *ghPolicyEnv {
	e := newEnv(t, envOpt{})
	e.smallPR()
	e.fake.SetPermission(repo.FullName, "carol", "write")
	e.fake.AddReview(repo.FullName, 1, fakegithub.Review{User: user("carol"), State: "APPROVED", CommitID: headSHA})
	db, err := store.Open(e.ctx, "sqlite:"+filepath.Join(t.TempDir(), "foureyes.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	g := &ghPolicyEnv{env: e, clock: time.Now(), asked: &askCounter{Forge: e.forge}}
	g.svc = &bot.Service{Forges: map[bot.ForgeName]bot.Forge{bot.GitHub: g.asked}, Store: db, Now: func() time.Time { return g.clock }}
	return g
}

// push delivers GitHub's push example for ref, edited to this repository,
// and handles its events (branch push, and policy push when it touches
// the policy file) like the service's workers.
func (g *ghPolicyEnv) push(ref string, files ...string) {
	g.t.Helper()
	m := fixture(g.t, "push.with-new-branch.json")
	set(g.t, m, "ref", ref)
	set(g.t, m, "created", false)
	set(g.t, m, "before", baseSHA)
	set(g.t, m, "after", strings.Repeat("f", 40))
	set(g.t, m, "repository.full_name", repo.FullName)
	set(g.t, m, "repository.id", repo.ID)
	mod := make([]any, len(files))
	for i, f := range files {
		mod[i] = f
	}
	set(g.t, m, "commits.0.modified", mod)
	for _, ev := range decodeOne(g.t, g.env, "push", m) {
		if ev.Kind != bot.EventBranchPush {
			continue // its re-evaluations are not what is tested here
		}
		if err := g.svc.Handle(g.ctx, ev); err != nil {
			g.t.Fatal(err)
		}
	}
}

// judge evaluates PR 1 and counts the requests for policy files.
func (g *ghPolicyEnv) judge() (bot.State, int) {
	g.t.Helper()
	g.fake.ResetRequests()
	v, err := g.svc.Evaluate(g.ctx, prRef(1, headSHA), "main", "")
	if err != nil {
		g.t.Fatal(err)
	}
	n := 0
	for _, r := range g.fake.Requests() {
		if strings.Contains(r.Path, "/contents/") {
			n++
		}
	}
	return v.State, n
}

// TestPolicyCacheNotOnGitHub: GitHub's adapter does not opt in to the
// reuse (bot.BranchPolicyReuse): its reads are conditional, so a 304 is
// free, and its answer may come from the org's .github repository. So even
// with a push to main recorded, every evaluation asks it, and a policy
// tightened without any delivery is judged at once; a tightening push is
// too.
func TestPolicyCacheNotOnGitHub(t *testing.T) {
	g := newGHPolicyEnv(t)
	g.fake.PutFile(repo.FullName, "main", ".github/foureyes.yml", ghOnePolicy)
	g.push("refs/heads/main")
	for i := 0; i < 2; i++ {
		before := g.asked.n
		if st, _ := g.judge(); st != bot.Success || g.asked.n == before {
			t.Fatalf("evaluation %d: %s, adapter asked %d times", i, st, g.asked.n-before)
		}
	}
	g.fake.PutFile(repo.FullName, "main", ".github/foureyes.yml", ghTwoPolicy)
	if st, _ := g.judge(); st != bot.PendingState {
		t.Fatalf("a tightened policy without a delivery: %s", st)
	}
	g.fake.PutFile(repo.FullName, "main", ".github/foureyes.yml", ghOnePolicy)
	g.push("refs/heads/main", ".github/foureyes.yml")
	if st, _ := g.judge(); st != bot.Success {
		t.Fatalf("after a push: %s", st)
	}
}

// TestPolicyCacheOrgPolicyIsNeverReused: the repository has no policy and
// the organisation's .github repository supplies it. A push there is no
// push to this repository's branch, so the domain never reuses that read:
// every evaluation asks the adapter again (which looks at the repository's
// own locations first, and keeps the org file for its PermissionTTL, as
// documented in docs/github.md).
func TestPolicyCacheOrgPolicyIsNeverReused(t *testing.T) {
	g := newGHPolicyEnv(t)
	g.fake.AddRepo("acme/.github")
	g.fake.PutFile("acme/.github", "main", "foureyes.yml", ghOnePolicy)
	g.push("refs/heads/main")
	if st, _ := g.judge(); st != bot.Success {
		t.Fatalf("org policy: %s", st)
	}
	for i := 0; i < 2; i++ {
		before := g.asked.n
		if g.judge(); g.asked.n == before {
			t.Fatalf("evaluation %d reused an org-level policy read", i)
		}
	}
}
