package release_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
)

// at runs f with the fake's clock set to t (approvals are stamped with it).
func (e *glEnv) at(t time.Time, f func()) {
	e.clock.mu.Lock()
	saved := e.clock.t
	e.clock.t = t
	e.clock.mu.Unlock()
	f()
	e.clock.mu.Lock()
	e.clock.t = saved
	e.clock.mu.Unlock()
}

// mergedMR adds a merged merge request whose commits (oldest first) are
// already in the repository graph, approved by approvers at approvedAt on
// its head, with the facts bot.Service would have recorded.
func (e *glEnv) mergedMR(iid, author int, authorLogin string, commits []fakegitlab.Commit, approvers []int, approvedAt, mergedAt time.Time) string {
	e.t.Helper()
	head := commits[len(commits)-1].ID
	newestFirst := slices.Clone(commits)
	slices.Reverse(newestFirst)
	e.fake.AddMergeRequest(glProject, fakegitlab.MergeRequest{
		IID: iid, Title: fmt.Sprintf("Change %d", iid), AuthorID: author, SourceBranch: fmt.Sprintf("topic-%d", iid),
		TargetBranch: "main", SHA: head, BaseSHA: commits[0].ParentIDs[0], State: "merged", MergedAt: mergedAt,
		Diffs:   []fakegitlab.Diff{{OldPath: fmt.Sprintf("pkg/f%d.go", iid), NewPath: fmt.Sprintf("pkg/f%d.go", iid), Diff: fmt.Sprintf("@@ -1 +1 @@\n-a\n+b%d\n", iid)}},
		Commits: newestFirst,
	})
	ref := bot.ChangeRef{Forge: bot.GitLab, Repo: glRepo, Number: iid, HeadSHA: head}
	e.fact(ref, "pusher", head, authorLogin)
	e.at(approvedAt, func() {
		for _, id := range approvers {
			e.fake.Approve(glProject, iid, id)
		}
	})
	logins := map[int]string{glBob: "bob", glDave: "dave", glAlice: "alice", glMallory: "mallory"}
	for _, id := range approvers {
		e.fact(ref, "approval", logins[id], head)
	}
	return head
}

// A truncated GitLab push (20 of 24 commits listed) is completed through
// the compare API: the reviewed merge request's commits pass, and the
// direct commit that only the compare API names is flagged.
func TestGitLabTruncatedPushCompletedThroughCompare(t *testing.T) {
	e := newGitLab(t)
	e.fake.AddCommits(glProject, glCommit("r0", "dave", t0.Add(-48*time.Hour)))
	x1 := glCommit("x1", "mallory", t0.Add(-30*time.Hour), "r0")
	e.fake.AddCommits(glProject, x1)
	var mr []fakegitlab.Commit
	prev := "x1"
	for i := 1; i <= 23; i++ {
		c := glCommit(fmt.Sprintf("c%02d", i), "alice", t0.Add(-24*time.Hour+time.Duration(i)*time.Minute), prev)
		mr = append(mr, c)
		prev = c.ID
	}
	e.fake.AddCommits(glProject, mr...)
	// Fast-forward merge: the branch's new head is the merge request's.
	head := e.mergedMR(1, glAlice, "alice", mr, []int{glBob}, t0.Add(-2*time.Hour), t0.Add(-time.Hour))

	payload := mr[len(mr)-20:] // GitLab lists the newest 20
	e.fake.ResetRequests()
	start := time.Now()
	if err := e.guard.HandlePush(e.ctx, glPush("d1", "r0", head, "alice", 24, payload...)); err != nil {
		t.Fatal(err)
	}
	t.Logf("24-commit truncated push: %d requests in %v", e.fake.RequestCount(), time.Since(start))

	fl := e.flagAudits()
	if len(fl) != 1 || !reflect.DeepEqual(fl[0].reasons(), []string{"x1:direct-push"}) {
		t.Fatalf("flag records: %+v", fl)
	}
	if n := e.fake.CountRequests("GET", "/repository/compare"); n != 2 { // completion + force-push check
		t.Errorf("compare requests: %d", n)
	}
	if n := e.fake.CountRequests("GET", "/merge_requests/1/commits"); n != 1 {
		t.Errorf("the merge request was read %d times", n)
	}
	sts := e.fake.Statuses(glProject, head)
	if len(sts) != 1 || sts[0].State != "failed" || sts[0].Name != "foureyes" || sts[0].Ref != "main" || sts[0].AuthorID != glBot {
		t.Errorf("statuses: %+v", sts)
	}
	is := e.fake.Issues(glProject)
	if len(is) != 1 || !strings.Contains(is[0].Title, "@alice") || !strings.Contains(is[0].Description, "`x1`") ||
		!strings.Contains(is[0].Description, "mallory <mallory@example.com>") {
		t.Errorf("issues: %+v", is)
	}
}

// GitLab's push hook has no "forced": a push whose old head has commits
// the new one lacks rewrote history and is flagged force-push.
func TestGitLabForcePushDetected(t *testing.T) {
	e := newGitLab(t)
	e.fake.AddCommits(glProject,
		glCommit("r0", "dave", t0.Add(-48*time.Hour)),
		glCommit("a1", "alice", t0.Add(-40*time.Hour), "r0"),
		glCommit("a2", "alice", t0.Add(-39*time.Hour), "a1"),
		glCommit("b1", "dave", t0.Add(-time.Minute), "r0"),
	)
	ev := glPush("d1", "a2", "b1", "dave", 1, glCommit("b1", "dave", t0.Add(-time.Minute), "r0"))
	if err := e.guard.HandlePush(e.ctx, ev); err != nil {
		t.Fatal(err)
	}
	fl := e.flagAudits()
	if len(fl) != 1 || !fl[0].Forced || !reflect.DeepEqual(fl[0].reasons(), []string{"b1:direct-push", "b1:force-push"}) {
		t.Fatalf("flag records: %+v", fl)
	}
	if m := e.metrics.snapshot(); m["gitlab/force-push"] != 1 || m["gitlab/direct-push"] != 1 {
		t.Errorf("metrics: %v", m)
	}
	// A fast-forward is no force-push.
	e.fake.AddCommits(glProject, glCommit("b2", "dave", t0, "b1"))
	e.fake.AddMergeRequest(glProject, fakegitlab.MergeRequest{IID: 9, AuthorID: glDave, TargetBranch: "main", SHA: "b2", State: "merged",
		Commits: []fakegitlab.Commit{glCommit("b2", "dave", t0, "b1")}, Diffs: []fakegitlab.Diff{{OldPath: "a", NewPath: "a", Diff: "x"}}})
	ref := bot.ChangeRef{Forge: bot.GitLab, Repo: glRepo, Number: 9, HeadSHA: "b2"}
	e.fact(ref, "pusher", "b2", "dave")
	e.fact(ref, "approval", "bob", "b2")
	e.at(t0.Add(-time.Hour), func() { e.fake.Approve(glProject, 9, glBob) })
	if err := e.guard.HandlePush(e.ctx, glPush("d2", "b1", "b2", "dave", 1, glCommit("b2", "dave", t0, "b1"))); err != nil {
		t.Fatal(err)
	}
	if fl := e.flagAudits(); len(fl) != 1 {
		t.Errorf("a fast-forward of a reviewed merge request was flagged: %+v", fl[1:])
	}
}

// A merge let through by a "foureyes" success status that foureyes did not
// write (any Developer can post one) is unapproved, whatever the approvals.
func TestGitLabForgedStatusIsUnapprovedMerge(t *testing.T) {
	e := newGitLab(t)
	e.fake.AddCommits(glProject, glCommit("r0", "dave", t0.Add(-48*time.Hour)))
	c1 := glCommit("h1", "alice", t0.Add(-5*time.Hour), "r0")
	e.fake.AddCommits(glProject, c1)
	head := e.mergedMR(2, glAlice, "alice", []fakegitlab.Commit{c1}, []int{glBob}, t0.Add(-2*time.Hour), t0.Add(-time.Hour))
	if _, err := e.fake.PostStatus(glProject, head, glMallory, "foureyes", "topic-2", "success"); err != nil {
		t.Fatal(err)
	}
	if err := e.guard.HandlePush(e.ctx, glPush("d1", "r0", head, "alice", 1, c1)); err != nil {
		t.Fatal(err)
	}
	fl := e.flagAudits()
	if len(fl) != 1 || !reflect.DeepEqual(fl[0].reasons(), []string{"h1:unapproved-merge"}) || fl[0].Commits[0].Change != 2 {
		t.Fatalf("flag records: %+v", fl)
	}
	is := e.fake.Issues(glProject)
	if len(is) != 1 || !strings.Contains(is[0].Description, "@mallory") {
		t.Errorf("issue does not name who forged the status: %+v", is)
	}
}

// The same merge request without the forged status passes; redelivering
// its push does nothing.
func TestGitLabReviewedMergeNotFlagged(t *testing.T) {
	e := newGitLab(t)
	e.fake.AddCommits(glProject, glCommit("r0", "dave", t0.Add(-48*time.Hour)))
	c1 := glCommit("h1", "alice", t0.Add(-5*time.Hour), "r0")
	e.fake.AddCommits(glProject, c1)
	head := e.mergedMR(2, glAlice, "alice", []fakegitlab.Commit{c1}, []int{glBob}, t0.Add(-2*time.Hour), t0.Add(-time.Hour))
	for _, id := range []string{"d1", "d1", "d2"} {
		if err := e.guard.HandlePush(e.ctx, glPush(id, "r0", head, "alice", 1, c1)); err != nil {
			t.Fatal(err)
		}
	}
	if fl := e.flagAudits(); len(fl) != 0 {
		t.Errorf("flag records: %+v", fl)
	}
	if sts := e.fake.Statuses(glProject, head); len(sts) != 0 {
		t.Errorf("statuses: %+v", sts)
	}
}

// A direct push on GitLab: one issue and one failed status, even when
// the push is redelivered.
func TestGitLabDirectPushFlaggedOnce(t *testing.T) {
	e := newGitLab(t)
	e.fake.AddCommits(glProject, glCommit("r0", "dave", t0.Add(-48*time.Hour)), glCommit("d1", "mallory", t0.Add(-time.Minute), "r0"))
	ev := glPush("delivery-1", "r0", "d1", "mallory", 1, glCommit("d1", "mallory", t0.Add(-time.Minute), "r0"))
	for _, id := range []string{"delivery-1", "delivery-1", "delivery-2"} {
		ev.DeliveryID = id
		if err := e.guard.HandlePush(e.ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	is := e.fake.Issues(glProject)
	if len(is) != 1 || !strings.Contains(is[0].Title, "main") || !strings.Contains(is[0].Title, "@mallory") ||
		!slices.Equal(is[0].Labels, []string{"foureyes", "unreviewed-push"}) {
		t.Errorf("issues: %+v", is)
	}
	if sts := e.fake.Statuses(glProject, "d1"); len(sts) != 1 || sts[0].State != "failed" {
		t.Errorf("statuses: %+v", sts)
	}
	if len(e.flagAudits()) != 1 || e.metrics.snapshot()["gitlab/direct-push"] != 1 {
		t.Errorf("audit %+v, metrics %v", e.flagAudits(), e.metrics.snapshot())
	}
}

// compare_timeout means GitLab's compare diffs overflowed, not that its
// commits are partial: the guard still completes a truncated push from
// the commits and flags the direct commit only the compare API names.
func TestGitLabCompareTimeoutStillUsesCommits(t *testing.T) {
	e := newGitLab(t)
	e.fake.SetCompareTimeout(true)
	e.fake.AddCommits(glProject, glCommit("r0", "dave", t0.Add(-48*time.Hour)))
	e.fake.AddCommits(glProject, glCommit("x1", "mallory", t0.Add(-30*time.Hour), "r0"))
	var mr []fakegitlab.Commit
	prev := "x1"
	for i := 1; i <= 23; i++ {
		c := glCommit(fmt.Sprintf("c%02d", i), "alice", t0.Add(-24*time.Hour+time.Duration(i)*time.Minute), prev)
		mr = append(mr, c)
		prev = c.ID
	}
	e.fake.AddCommits(glProject, mr...)
	head := e.mergedMR(1, glAlice, "alice", mr, []int{glBob}, t0.Add(-2*time.Hour), t0.Add(-time.Hour))
	if err := e.guard.HandlePush(e.ctx, glPush("d1", "r0", head, "alice", 24, mr[len(mr)-20:]...)); err != nil {
		t.Fatalf("a compare whose diffs timed out failed the guard: %v", err)
	}
	fl := e.flagAudits()
	if len(fl) != 1 || !reflect.DeepEqual(fl[0].reasons(), []string{"x1:direct-push"}) {
		t.Fatalf("flag records: %+v", fl)
	}
}
