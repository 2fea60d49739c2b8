package gitlab_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/forge/gitlab"
	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
)

// The policy cache (bot/policycache.go) judged through the service, on
// GitLab: a branch's policy is reused only while no push to it has been
// recorded since it was read.

const (
	onePolicy  = "version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    approvals: 1\n"
	twoPolicy  = "version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    approvals: 2\n"
	policyPath = "/projects/42/repository/files/.gitlab/foureyes.yml/raw"
)

func (b *budgetEnv) service() *bot.Service {
	return &bot.Service{Forges: map[bot.ForgeName]bot.Forge{bot.GitLab: b.forge}, Store: b.db, Now: func() time.Time { return b.clock }}
}

// judge evaluates the merge request through the service and returns its
// state and how many policy reads it cost.
func (b *budgetEnv) judge(svc *bot.Service) (bot.State, int) {
	b.t.Helper()
	b.fake.ResetRequests()
	v, err := svc.Evaluate(b.ctx, b.ref(), "", "")
	if err != nil {
		b.t.Fatal(err)
	}
	return v.State, b.fake.CountRequests("GET", policyPath)
}

// pushHook delivers a GitLab Push Hook (the documented example, edited)
// for ref to the service: decoded and handled like a delivery. Only the
// events of the given kinds are handled.
func (b *budgetEnv) pushHook(svc *bot.Service, ref, after string, files []string, kinds ...bot.EventKind) {
	b.t.Helper()
	body := derive(b.t, "push.json", func(m map[string]any) {
		m["ref"], m["before"], m["after"] = ref, baseSHA, after
		m["project"].(map[string]any)["id"] = projectID
		m["project"].(map[string]any)["path_with_namespace"] = repo.FullName
		m["total_commits_count"] = 2
		m["commits"].([]any)[1].(map[string]any)["modified"] = files
	})
	evs, err := b.forge.Decode("Push Hook", body)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, ev := range evs {
		for _, k := range kinds {
			if ev.Kind == k {
				if err := svc.Handle(b.ctx, ev); err != nil {
					b.t.Fatal(err)
				}
			}
		}
	}
}

func newPolicyEnv(t *testing.T) *budgetEnv {
	b := newBudgetEnv(t)
	b.fake.SetFile(projectID, "main", ".gitlab/foureyes.yml", []byte(onePolicy))
	b.fake.Approve(projectID, mrIID, idBob)
	return b
}

// TestPolicyCacheReusesUntilAPush is the honest path: with a push to main
// recorded, the second evaluation reuses the first one's read.
func TestPolicyCacheReusesUntilAPush(t *testing.T) {
	b := newPolicyEnv(t)
	svc := b.service()
	if st, reads := b.judge(svc); st != bot.Success || reads != 1 {
		t.Fatalf("first: %s, %d policy reads", st, reads)
	}
	b.clock = b.clock.Add(10 * time.Second)
	if st, reads := b.judge(svc); st != bot.Success || reads != 0 {
		t.Fatalf("second: %s, %d policy reads, want 0", st, reads)
	}
	// Another replica (another service and adapter, the same store).
	b.forge = b.forge2()
	if st, reads := b.judge(b.service()); st != bot.Success || reads != 0 {
		t.Fatalf("another replica: %s, %d policy reads, want 0", st, reads)
	}
}

// TestPolicyCacheTightenedByAPushIsSeenAtOnce: the policy is tightened by
// a push to the target branch. Whichever of the push's two events (branch
// push, policy push) is handled, the very next evaluation — on any
// replica — judges by the new policy.
func TestPolicyCacheTightenedByAPushIsSeenAtOnce(t *testing.T) {
	for _, kind := range []bot.EventKind{bot.EventBranchPush, bot.EventPolicyPush} {
		t.Run(string(kind), func(t *testing.T) {
			b := newPolicyEnv(t)
			svc := b.service()
			b.judge(svc)
			if st, reads := b.judge(svc); st != bot.Success || reads != 0 {
				t.Fatalf("warm: %s, %d reads", st, reads)
			}
			b.clock = b.clock.Add(time.Second)
			b.fake.SetFile(projectID, "main", ".gitlab/foureyes.yml", []byte(twoPolicy))
			// The push is handled by another replica.
			other := &bot.Service{Forges: map[bot.ForgeName]bot.Forge{bot.GitLab: b.forge2()}, Store: b.db, Now: func() time.Time { return b.clock }}
			b.pushHook(other, "refs/heads/main", strings.Repeat("f", 40), []string{".gitlab/foureyes.yml"}, kind)
			// A policy push re-evaluates the open merge requests itself, and
			// that evaluation's read of the new policy may be reused.
			st, reads := b.judge(svc)
			if st != bot.PendingState || (kind == bot.EventBranchPush && reads != 1) {
				t.Fatalf("after the push: %s with %d policy reads: judged by the old policy", st, reads)
			}
		})
	}
}

// TestPolicyCacheOtherBranchIsNotTheTarget: a push to another branch, or
// a tag named like the target branch, is not a push to the target; and a
// read of one branch's policy never stands for another's.
func TestPolicyCacheOtherBranchIsNotTheTarget(t *testing.T) {
	b := newPolicyEnv(t)
	b.fake.SetFile(projectID, "release", ".gitlab/foureyes.yml", []byte(onePolicy))
	b.fake.SetFile(projectID, "main", ".gitlab/foureyes.yml", []byte(twoPolicy))
	svc := b.service()
	b.pushHook(svc, "refs/heads/release", strings.Repeat("c", 40), nil, bot.EventBranchPush)

	// Targeting release: its own (looser) policy, read and cached.
	b.fake.UpdateMergeRequest(projectID, mrIID, func(m *fakegitlab.MergeRequest) { m.TargetBranch = "release" })
	if st, _ := b.judge(svc); st != bot.Success {
		t.Fatalf("release: %s", st)
	}
	if st, reads := b.judge(svc); st != bot.Success || reads != 0 {
		t.Fatalf("release again: %s, %d reads", st, reads)
	}
	// Retargeted to main: main's policy, not release's cached one.
	b.fake.UpdateMergeRequest(projectID, mrIID, func(m *fakegitlab.MergeRequest) { m.TargetBranch = "main" })
	if st, reads := b.judge(svc); st != bot.PendingState || reads != 1 {
		t.Fatalf("main after release: %s, %d reads", st, reads)
	}
	// Main is loosened by a push whose hook is a push to release and a
	// tag "main": neither is main's, so nothing tells main's read is stale
	// — the read of main made after them is what counts, and it is judged
	// by main's file as it is then.
	b.pushHook(svc, "refs/heads/release", strings.Repeat("d", 40), nil, bot.EventBranchPush)
	if st, reads := b.judge(svc); st != bot.PendingState || reads != 0 {
		t.Fatalf("main after a push to release: %s, %d reads (release's push is not main's)", st, reads)
	}
	b.clock = b.clock.Add(time.Second)
	b.fake.SetFile(projectID, "main", ".gitlab/foureyes.yml", []byte(onePolicy))
	b.pushHook(svc, "refs/heads/main", strings.Repeat("e", 40), []string{".gitlab/foureyes.yml"}, bot.EventBranchPush)
	if st, reads := b.judge(svc); st != bot.Success || reads != 1 {
		t.Fatalf("main after its own push: %s, %d reads", st, reads)
	}
}

// TestPolicyCacheNoTipNoReuse: foureyes never saw a push to the target
// branch, so every evaluation reads its policy; so does one whose branch
// has no policy file (a file added later would be judged at once anyway,
// but nothing is reused that a push did not vouch for).
func TestPolicyCacheNoTipNoReuse(t *testing.T) {
	b := newPolicyEnv(t)
	b.fake.UpdateMergeRequest(projectID, mrIID, func(m *fakegitlab.MergeRequest) { m.TargetBranch = "develop" })
	b.fake.SetFile(projectID, "develop", ".gitlab/foureyes.yml", []byte(onePolicy))
	svc := b.service()
	for i := 0; i < 3; i++ {
		if _, reads := b.judge(svc); reads != 1 {
			t.Fatalf("evaluation %d without a recorded push: %d policy reads, want 1", i, reads)
		}
	}
	b.fake.SetFile(projectID, "develop", ".gitlab/foureyes.yml", []byte(twoPolicy))
	if st, _ := b.judge(svc); st != bot.PendingState {
		t.Fatalf("a policy changed without a recorded push was not read: %s", st)
	}
}

// TestPolicyCacheLatePushDoesNotReviveAnOldRead: a push to main is
// recorded, read; a tightening push follows; then the first push's hook
// is delivered again (a redelivery, or a late retry). Its tip is the one
// the first read was stored under, but the read is not revived.
func TestPolicyCacheLatePushDoesNotReviveAnOldRead(t *testing.T) {
	b := newPolicyEnv(t)
	svc := b.service()
	first := strings.Repeat("1", 40)
	b.pushHook(svc, "refs/heads/main", first, nil, bot.EventBranchPush)
	b.judge(svc)
	b.clock = b.clock.Add(time.Second)
	b.fake.SetFile(projectID, "main", ".gitlab/foureyes.yml", []byte(twoPolicy))
	b.pushHook(svc, "refs/heads/main", strings.Repeat("2", 40), []string{".gitlab/foureyes.yml"}, bot.EventBranchPush)
	b.pushHook(svc, "refs/heads/main", first, nil, bot.EventBranchPush)
	if st, reads := b.judge(svc); st != bot.PendingState || reads != 1 {
		t.Fatalf("after a late push back to the first tip: %s, %d reads", st, reads)
	}
}

// racingForge records a push to main (and tightens the policy) right after
// the adapter read the policy, as a push hook handled by another replica
// while this one reads would.
type racingForge struct {
	*gitlab.Forge
	race func()
}

func (r *racingForge) Policy(ctx context.Context, repo bot.Repo, ref string) (bot.PolicyFile, error) {
	pf, err := r.Forge.Policy(ctx, repo, ref)
	if r.race != nil {
		r.race()
		r.race = nil
	}
	return pf, err
}

// TestPolicyCachePushDuringTheRead: a push recorded while the policy is
// being read makes that read stale: the next evaluation reads again.
func TestPolicyCachePushDuringTheRead(t *testing.T) {
	b := newPolicyEnv(t)
	rf := &racingForge{Forge: b.forge}
	svc := &bot.Service{Forges: map[bot.ForgeName]bot.Forge{bot.GitLab: rf}, Store: b.db, Now: func() time.Time { return b.clock }}
	rf.race = func() {
		b.fake.SetFile(projectID, "main", ".gitlab/foureyes.yml", []byte(twoPolicy))
		b.pushHook(b.service(), "refs/heads/main", strings.Repeat("9", 40), []string{".gitlab/foureyes.yml"}, bot.EventBranchPush)
	}
	if st, _ := b.judge(svc); st != bot.Success {
		t.Fatalf("the read before the push: %s", st)
	}
	if st, reads := b.judge(svc); st != bot.PendingState || reads != 1 {
		t.Fatalf("after a push recorded during the read: %s, %d reads", st, reads)
	}
}

// TestPolicyCacheTTL: a push whose hook never came (GitLab sends none for
// a push of more than three branches at once) is seen once the read is
// DefaultPolicyCacheTTL old.
func TestPolicyCacheTTL(t *testing.T) {
	b := newPolicyEnv(t)
	svc := b.service()
	b.judge(svc)
	b.fake.SetFile(projectID, "main", ".gitlab/foureyes.yml", []byte(twoPolicy))
	b.clock = b.clock.Add(bot.DefaultPolicyCacheTTL - time.Second)
	if st, reads := b.judge(svc); st != bot.Success || reads != 0 {
		t.Fatalf("within the TTL: %s, %d reads", st, reads)
	}
	b.clock = b.clock.Add(time.Second)
	if st, reads := b.judge(svc); st != bot.PendingState || reads != 1 {
		t.Fatalf("at the TTL: %s, %d reads", st, reads)
	}
}

// TestPolicyCacheNoFileThenAdded: a branch without a policy file (the
// server default applies) is not re-read at every evaluation, since adding
// a file is a push to it: the push that adds a strict policy is judged at
// once.
func TestPolicyCacheNoFileThenAdded(t *testing.T) {
	b := newPolicyEnv(t)
	b.fake.UpdateMergeRequest(projectID, mrIID, func(m *fakegitlab.MergeRequest) { m.TargetBranch = "develop" })
	svc := b.service()
	b.pushHook(svc, "refs/heads/develop", strings.Repeat("a", 40), nil, bot.EventBranchPush)
	fileReads := func() int {
		b.t.Helper()
		b.fake.ResetRequests()
		if _, err := svc.Evaluate(b.ctx, b.ref(), "", ""); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range b.fake.Requests() {
			if strings.Contains(r.Path, "/repository/files/") {
				n++
			}
		}
		return n
	}
	if n := fileReads(); n != 3 {
		t.Fatalf("first evaluation: %d policy locations looked up, want 3", n)
	}
	if n := fileReads(); n != 0 {
		t.Fatalf("second evaluation: %d policy locations looked up again, want 0", n)
	}
	b.clock = b.clock.Add(time.Second)
	b.fake.SetFile(projectID, "develop", ".foureyes.yml", []byte(twoPolicy))
	b.pushHook(svc, "refs/heads/develop", strings.Repeat("b", 40), []string{".foureyes.yml"}, bot.EventBranchPush)
	if st, _ := b.judge(svc); st != bot.PendingState {
		t.Fatalf("a policy added by a push: %s", st)
	}
}
