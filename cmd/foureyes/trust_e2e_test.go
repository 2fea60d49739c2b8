package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
)

// Issue 10 end to end: each attack by one person with write access, sent as
// real (patched) payload examples through the real server to the fake
// forges, must not turn foureyes green; the honest path beside it does.

// addPR adds a pull request by alice whose head pushedBy pushed, without
// any webhook: GitHub records the push in the repository activity API.
func (e *e2e) addPR(pushedBy string, files ...string) fakegithub.PR {
	e.t.Helper()
	e.n++
	c := fakegithub.Commit{SHA: fakegithub.SHA(fmt.Sprintf("%s-%d-1", e.t.Name(), e.n)), Message: "change", Author: ident("alice"), Committer: ident("alice")}
	pr := fakegithub.PR{Number: e.n, Title: "change", Author: fakegithub.User{Login: "alice"}, BaseRef: e2eBase, BaseSHA: fakegithub.SHA(e2eBase),
		HeadRef: fmt.Sprintf("topic-%d", e.n), Commits: []fakegithub.Commit{c}, PushedBy: fakegithub.User{Login: pushedBy}}
	for _, p := range files {
		pr.Files = append(pr.Files, fakegithub.File{Filename: p, Patch: "@@ -1 +1 @@\n-a\n+b " + p})
	}
	e.sb.Fake.AddPR(e2eRepo, pr)
	pr, _ = e.sb.Fake.PR(e2eRepo, pr.Number)
	return pr
}

// moveHead makes sha (a new commit by alice, or an earlier head) the head,
// pushed by pusher, and sends synchronize from them.
func (e *e2e) moveHead(pr fakegithub.PR, pusher, sha string) fakegithub.PR {
	e.t.Helper()
	pr = e.pushHead(pr, pusher, sha)
	e.send("pull_request", prFixture(e.t, "synchronize", pr, pusher))
	return pr
}

// pushHead is moveHead on GitHub's side only: no webhook is sent.
func (e *e2e) pushHead(pr fakegithub.PR, pusher, sha string) fakegithub.PR {
	e.t.Helper()
	e.sb.Fake.UpdatePR(e2eRepo, pr.Number, func(p *fakegithub.PR) {
		found := false
		for _, c := range p.Commits {
			found = found || c.SHA == sha
		}
		if found {
			// A force-push back: the history ends at sha again.
			for i, c := range p.Commits {
				if c.SHA == sha {
					p.Commits = p.Commits[:i+1]
					break
				}
			}
		} else {
			p.Commits = append(p.Commits, fakegithub.Commit{SHA: sha, Message: "more", Author: ident("alice"), Committer: ident("alice")})
		}
		p.HeadSHA = sha
		p.PushedBy = fakegithub.User{Login: pusher}
	})
	pr, _ = e.sb.Fake.PR(e2eRepo, pr.Number)
	return pr
}

func (e *e2e) expect(pr fakegithub.PR, want string, says ...string) {
	e.t.Helper()
	run := e.check(pr)
	if got := conclusion(run); got != want {
		e.t.Fatalf("check run %s, want %s\ntitle: %s\n%s", got, want, run.Title, run.Summary)
	}
	for _, s := range says {
		if !strings.Contains(run.Title+"\n"+run.Summary, s) {
			e.t.Fatalf("check run does not say %q\ntitle: %s\n%s", s, run.Title, run.Summary)
		}
	}
}

// The opener of a pull request is not the pusher of its head: bob pushes a
// branch of commits by alice, alice opens the pull request, bob approves.
func TestTrustGitHubOpenerIsNotThePusher(t *testing.T) {
	e := newE2E(t, nil)
	pr := e.addPR("bob", "src/app.go")
	e.send("pull_request", prFixture(t, "opened", pr, "alice"))
	e.review(pr, "bob", "approved")
	e.expect(pr, "in_progress", "@bob", "pushed head")
	e.review(pr, "carol", "approved")
	e.expect(pr, "success", "@carol")
}

// A pull request foureyes never saw opened is judged correctly on its first
// event: who pushed comes from the activity API.
func TestTrustGitHubNeverSawItOpened(t *testing.T) {
	e := newE2E(t, nil)
	pr := e.addPR("alice", "src/app.go")
	e.review(pr, "carol", "approved")
	e.expect(pr, "success", "@carol")

	pr2 := e.addPR("dave", "src/other.go")
	e.review(pr2, "dave", "approved")
	e.expect(pr2, "in_progress", "pushed head")
}

// Pushers are a history: bob pushes H2, alice pushes H3 and force-pushes
// back to H2; bob is still a pusher of H2.
func TestTrustGitHubForcePushBackKeepsEarlierPusher(t *testing.T) {
	e := newE2E(t, nil)
	pr := e.addPR("alice", "src/app.go")
	e.send("pull_request", prFixture(t, "opened", pr, "alice"))
	h2 := fakegithub.SHA(t.Name() + "-H2")
	pr = e.moveHead(pr, "bob", h2)
	pr = e.moveHead(pr, "alice", fakegithub.SHA(t.Name()+"-H3"))
	pr = e.moveHead(pr, "alice", h2)
	e.review(pr, "bob", "approved")
	e.expect(pr, "in_progress", "@bob")
	e.review(pr, "carol", "approved")
	e.expect(pr, "success", "@carol")
}

// A bot pushed the head of a person's change: who triggered it is unknown.
func TestTrustGitHubBotPushedHeadIsNamed(t *testing.T) {
	e := newE2E(t, nil)
	pr := e.addPR("alice", "src/app.go")
	pr = e.moveHead(pr, "github-actions[bot]", fakegithub.SHA(t.Name()+"-bot"))
	e.review(pr, "carol", "approved")
	e.expect(pr, "in_progress", "pushed by github-actions[bot]: foureyes cannot tell who triggered it")
	pr = e.moveHead(pr, "alice", fakegithub.SHA(t.Name()+"-alice"))
	e.review(pr, "carol", "approved")
	e.expect(pr, "success", "@carol")
}

// A head in a fork the App cannot read has an unknown pusher: the check
// says so and what would resolve it, never success.
func TestTrustGitHubUnreadableForkSaysSo(t *testing.T) {
	e := newE2E(t, nil)
	e.n++
	c := fakegithub.Commit{SHA: fakegithub.SHA(t.Name() + "-fork"), Message: "change", Author: ident("alice"), Committer: ident("alice")}
	pr := fakegithub.PR{Number: e.n, Title: "from a fork", Author: fakegithub.User{Login: "alice"}, BaseRef: e2eBase, BaseSHA: fakegithub.SHA(e2eBase),
		HeadRef: "patch-1", HeadRepo: "mallory/Hello-World", Commits: []fakegithub.Commit{c},
		Files: []fakegithub.File{{Filename: "src/app.go", Patch: "+x"}}}
	e.sb.Fake.AddPR(e2eRepo, pr)
	pr, _ = e.sb.Fake.PR(e2eRepo, pr.Number)
	review := reviewFixture(t, pr, e.sb.Fake.AddReview(e2eRepo, pr.Number, fakegithub.Review{User: fakegithub.User{Login: "carol"}, State: "APPROVED", CommitID: pr.HeadSHA}), "carol", "approved", pr.HeadSHA)
	obj(review, "pull_request", "head", "repo")["full_name"] = "mallory/Hello-World"
	e.send("pull_request_review", review)
	e.expect(pr, "in_progress", "mallory/Hello-World", "install foureyes on mallory/Hello-World")

	// Installed on the fork, foureyes reads who pushed there.
	e.sb.Fake.AddRepo("mallory/Hello-World")
	e.sb.Fake.AddActivity("mallory/Hello-World", fakegithub.Activity{Before: strings.Repeat("0", 40), After: pr.HeadSHA, Ref: "patch-1",
		Type: "branch_creation", Actor: fakegithub.User{Login: "mallory"}})
	e.send("pull_request_review", review)
	e.expect(pr, "success", "@carol")
}

// Retargeting a stacked pull request to the base branch keeps the head but
// grows the diff: an approval of the smaller diff no longer counts.
func TestTrustGitHubRetargetMakesApprovalStale(t *testing.T) {
	e := newE2E(t, nil)
	e.sb.Fake.SetBranch(e2eRepo, "feature-a", fakegithub.SHA("feature-a"))
	pr := e.addPR("alice", "src/b.go")
	e.sb.Fake.UpdatePR(e2eRepo, pr.Number, func(p *fakegithub.PR) { p.BaseRef = "feature-a" })
	pr, _ = e.sb.Fake.PR(e2eRepo, pr.Number)
	opened := prFixture(t, "opened", pr, "alice")
	obj(opened, "pull_request", "base")["ref"] = "feature-a"
	e.send("pull_request", opened)
	stackedReview := reviewFixture(t, pr, e.sb.Fake.AddReview(e2eRepo, pr.Number, fakegithub.Review{User: fakegithub.User{Login: "bob"}, State: "APPROVED", CommitID: pr.HeadSHA}), "bob", "approved", pr.HeadSHA)
	obj(stackedReview, "pull_request", "base")["ref"] = "feature-a"
	e.send("pull_request_review", stackedReview)
	e.expect(pr, "success", "@bob")

	// Retarget to master: feature-a's own change is now part of the diff.
	e.sb.Fake.UpdatePR(e2eRepo, pr.Number, func(p *fakegithub.PR) {
		p.BaseRef = e2eBase
		p.Files = append([]fakegithub.File{{Filename: "src/a.go", Patch: "+a"}}, p.Files...)
	})
	pr, _ = e.sb.Fake.PR(e2eRepo, pr.Number)
	edited := prFixture(t, "edited", pr, "alice")
	obj(edited, "pull_request")["updated_at"] = time.Now().UTC().Add(time.Hour).Format(time.RFC3339) // GitHub bumps it on a retarget
	edited["changes"] = map[string]any{"base": map[string]any{"ref": map[string]any{"from": "feature-a"}, "sha": map[string]any{"from": pr.BaseSHA}}}
	e.send("pull_request", edited)
	e.expect(pr, "in_progress", "different diff")

	e.review(pr, "bob", "approved")
	e.expect(pr, "success", "@bob")
}

// The policy is the base branch's current one: tightened on master after
// the pull request was opened, it applies to the next event even though
// the payload's base.sha still names the old tip.
func TestTrustGitHubPolicyIsTheBaseBranchTip(t *testing.T) {
	e := newE2E(t, nil)
	old, tightened := fakegithub.SHA("master-lax"), fakegithub.SHA("master-strict")
	e.sb.Fake.SetBranch(e2eRepo, e2eBase, old)
	e.sb.Fake.PutFile(e2eRepo, old, ".github/foureyes.yml", "version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    approvals: 1\n")
	pr := e.addPR("alice", "src/app.go")
	e.sb.Fake.UpdatePR(e2eRepo, pr.Number, func(p *fakegithub.PR) { p.BaseSHA = old })
	pr, _ = e.sb.Fake.PR(e2eRepo, pr.Number)
	e.send("pull_request", prFixture(t, "opened", pr, "alice"))

	e.sb.Fake.SetBranch(e2eRepo, e2eBase, tightened)
	e.sb.Fake.PutFile(e2eRepo, tightened, ".github/foureyes.yml", "version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    approvals: 2\n")
	if got, _ := e.sb.Fake.PR(e2eRepo, pr.Number); got.BaseSHA != old {
		t.Fatalf("the fake moved base.sha with the branch: %s", got.BaseSHA)
	}
	e.review(pr, "bob", "approved") // the payload's base.sha is still the old tip
	e.expect(pr, "in_progress", "code needs 1 more")
	e.review(pr, "carol", "approved")
	e.expect(pr, "success", "@bob", "@carol")
}

// GitLab: the opener is not the pusher, a merge request foureyes never saw
// opened is judged on its first event, and pushes come from push events.
func TestTrustGitLabOpenerIsNotThePusher(t *testing.T) {
	e := newGLE2E(t)
	mr := e.openMRWith(func(m *fakegitlab.MergeRequest) { m.PushedByID = glBob }, "src/app.go")
	e.approve(mr, glBob)
	if st := e.status(mr.SHA); st.State == "success" {
		t.Fatalf("bob pushed the head and approved it: %s %s", st.State, st.Description)
	}
	e.approve(mr, glCarol)
	if st := e.status(mr.SHA); st.State != "success" {
		t.Fatalf("carol approved: %s %s", st.State, st.Description)
	}
}

// GitLab: a tag named like the target branch must not supply the policy.
func TestTrustGitLabTagCannotShadowTheBranchPolicy(t *testing.T) {
	e := newGLE2E(t)
	e.policy("version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    approvals: 2\n")
	tagSHA := glSHA("tag-master")
	e.fake.AddTag(glProject, glTarget, tagSHA)
	e.fake.SetFile(glProject, tagSHA, ".gitlab/foureyes.yml", []byte("version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    approvals: 0\n"))
	mr := e.openMR("src/app.go")
	e.approve(mr, glCarol)
	if st := e.status(mr.SHA); st.State == "success" {
		t.Fatalf("the tag's policy applied: %s %s", st.State, st.Description)
	}
	e.approve(mr, glBob)
	if st := e.status(mr.SHA); st.State != "success" {
		t.Fatalf("two approvals: %s %s", st.State, st.Description)
	}
}

// GitLab: a merge request foureyes never saw opened is judged on its first
// event, with its pusher read from the project's push events.
func TestTrustGitLabNeverSawItOpened(t *testing.T) {
	e := newGLE2E(t)
	e.n++
	head := glSHA(t.Name() + "-1")
	mr := fakegitlab.MergeRequest{IID: e.n, Title: "change", AuthorID: glAlice, SourceBranch: "adopted", TargetBranch: glTarget, SHA: head,
		Commits: []fakegitlab.Commit{{ID: head, Message: "change", AuthorName: "Alice", AuthorEmail: "alice@example.com"}},
		Diffs:   []fakegitlab.Diff{{OldPath: "src/app.go", NewPath: "src/app.go", Diff: "@@ -1 +1 @@\n-a\n+b\n"}}}
	e.fake.AddMergeRequest(glProject, mr)
	e.approve(mr, glCarol)
	if st := e.status(mr.SHA); st.State != "success" {
		t.Fatalf("first event, carol approved alice's push: %s %s", st.State, st.Description)
	}
}

// GitLab: approval events are ordered by their time. With the approvals
// API unavailable, carol's unapproval delivered before the approval it
// revokes leaves no approval standing.
func TestTrustGitLabUnapprovalDeliveredFirstWins(t *testing.T) {
	e := newGLE2E(t)
	e.fake.SetApprovalsAPIStatus(404)
	// carol is a requested reviewer, so foureyes looks up her facts.
	mr := e.openMRWith(func(m *fakegitlab.MergeRequest) { m.ReviewerIDs = []int{glCarol} }, "src/app.go")
	at := func(m map[string]any, ts string) map[string]any {
		obj(m, "object_attributes")["updated_at"] = ts
		return m
	}
	e.deliver(at(e.mrHook(mr, "unapproved", glCarol, ""), "2026-01-02T10:05:00Z"))
	e.deliver(at(e.mrHook(mr, "approved", glCarol, ""), "2026-01-02T10:00:00Z"))
	if st := e.status(mr.SHA); st.State == "success" {
		t.Fatalf("a revoked approval counted: %s %s", st.State, st.Description)
	}
	e.deliver(at(e.mrHook(mr, "approved", glCarol, ""), "2026-01-02T10:10:00Z"))
	if st := e.status(mr.SHA); st.State != "success" {
		t.Fatalf("carol approved again: %s %s", st.State, st.Description)
	}
}

// A push delivered after the change moved on is judged by nobody (the newer
// head's own event does that), but who pushed it is still recorded: bob
// pushes H2, alice pushes H3 on top before foureyes handles bob's
// delivery, and bob, a pusher of a commit of the change, approves H3.
func TestTrustGitHubPushDeliveredAfterTheNextStillCounts(t *testing.T) {
	e := newE2E(t, nil)
	pr := e.addPR("alice", "src/app.go")
	e.send("pull_request", prFixture(t, "opened", pr, "alice"))
	h2 := e.pushHead(pr, "bob", fakegithub.SHA(t.Name()+"-H2"))
	byBob := prFixture(t, "synchronize", h2, "bob")
	h3 := e.pushHead(h2, "alice", fakegithub.SHA(t.Name()+"-H3"))
	e.send("pull_request", byBob)
	if err := e.sb.Drain(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	e.send("pull_request", prFixture(t, "synchronize", h3, "alice"))
	e.review(h3, "bob", "approved")
	e.expect(h3, "in_progress", "@bob")
	e.review(h3, "carol", "approved")
	e.expect(h3, "success", "@carol")
}

// An evaluation that fails (here on an unreadable stored fact) is retried
// and may end dead-lettered; who pushed, which only its delivery told, is
// recorded all the same, so a later evaluation cannot miss it.
func TestTrustGitHubFailedEvaluationKeepsThePusher(t *testing.T) {
	e := newE2E(t, nil)
	pr := e.addPR("alice", "src/app.go")
	e.send("pull_request", prFixture(t, "opened", pr, "alice"))
	e.check(pr)
	first := pr.Commits[0].SHA
	if err := e.sb.srv.db.PutFact(context.Background(), bot.PushScope(bot.GitHub, e2eRepo, first), "mallory", "not json"); err != nil {
		t.Fatal(err)
	}
	h2 := fakegithub.SHA(t.Name() + "-H2")
	pr = e.moveHead(pr, "bob", h2)
	scope := bot.FactScope(bot.ChangeRef{Forge: bot.GitHub, Repo: bot.Repo{FullName: e2eRepo}, Number: pr.Number}, "pusher")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		pushers, err := e.sb.srv.db.Facts(context.Background(), scope)
		if err != nil {
			t.Fatal(err)
		}
		if pushers[h2+"/bob"] == "bob" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pusher facts %v: bob's push was lost with the failed evaluation", pushers)
		}
	}
	if runs := e.sb.Fake.CheckRuns(e2eRepo, h2); len(runs) > 0 && conclusion(runs[len(runs)-1]) == "success" {
		t.Fatalf("an evaluation that failed reported success: %+v", runs[len(runs)-1])
	}
}
