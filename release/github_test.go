package release_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
)

var before0 = fakegithub.SHA("before")

// A pull request approved by an independent reviewer on its final head
// and merged: nothing is flagged, and nothing is written on the forge.
func TestGitHubReviewedMergeNotFlagged(t *testing.T) {
	e := newGitHub(t)
	c1 := ghCommit("c1", "alice", t0.Add(-5*time.Hour))
	e.mergedPR(prSpec{number: 1, author: "alice", commits: []fakegithub.Commit{c1},
		reviews: []fakegithub.Review{approve("bob", c1.SHA, t0.Add(-2*time.Hour))}, mergedAt: t0.Add(-time.Hour), merge: "m1"})
	m1 := ghCommit("m1", "alice", t0.Add(-time.Hour))

	e.mustHandle(ghPush("d1", before0, m1.SHA, "alice", false, c1, m1))

	if runs := e.fake.CheckRuns(ghRepo.FullName, m1.SHA); len(runs) != 0 {
		t.Errorf("check runs on a reviewed push: %+v", runs)
	}
	if is := e.fake.Issues(ghRepo.FullName); len(is) != 0 {
		t.Errorf("issues: %+v", is)
	}
	if fl := e.flagAudits(); len(fl) != 0 {
		t.Errorf("flag audit records: %+v", fl)
	}
	if m := e.metrics.snapshot(); len(m) != 0 {
		t.Errorf("metrics: %v", m)
	}
}

// The last-minute push: bob approved c1, alice pushed c2 on top and merged
// without a new approval. Every commit of the change is flagged
// stale-approval.
func TestGitHubStaleApprovalFlagged(t *testing.T) {
	e := newGitHub(t)
	c1 := ghCommit("c1", "alice", t0.Add(-5*time.Hour))
	c2 := ghCommit("c2", "alice", t0.Add(-70*time.Minute))
	e.mergedPR(prSpec{number: 2, author: "alice", commits: []fakegithub.Commit{c1, c2},
		reviews:  []fakegithub.Review{approve("bob", c1.SHA, t0.Add(-3*time.Hour))},
		pushers:  map[string]string{c1.SHA: "alice", c2.SHA: "alice"},
		digests:  map[string]string{c1.SHA: "digest-of-c1-only"},
		mergedAt: t0.Add(-time.Hour), merge: "m2"})
	m2 := ghCommit("m2", "alice", t0.Add(-time.Hour))

	e.mustHandle(ghPush("d1", before0, m2.SHA, "alice", false, c1, c2, m2))

	fl := e.flagAudits()
	if len(fl) != 1 {
		t.Fatalf("flag records: %+v", fl)
	}
	want := []string{c1.SHA[:7] + ":stale-approval", c2.SHA[:7] + ":stale-approval", m2.SHA[:7] + ":stale-approval"}
	slices.Sort(want)
	if got := fl[0].reasons(); !reflect.DeepEqual(got, want) {
		t.Errorf("flagged %v, want %v", got, want)
	}
	runs := e.fake.CheckRuns(ghRepo.FullName, m2.SHA)
	if len(runs) != 1 || runs[0].Conclusion != "failure" || !strings.Contains(runs[0].Title, "stale-approval") ||
		!strings.Contains(runs[0].Summary, "@bob approved "+c1.SHA[:7]) {
		t.Errorf("check runs: %+v", runs)
	}
	if m := e.metrics.snapshot(); m["github/stale-approval"] != 3 || len(m) != 1 {
		t.Errorf("metrics: %v", m)
	}
}

// A direct push: flagged direct-push with one issue that names the pusher
// and carries the policy's labels, one failing check run, one audit record
// and one metric — and none of them again when the push is redelivered
// under the same or a new delivery ID.
func TestGitHubDirectPushFlaggedOnce(t *testing.T) {
	e := newGitHub(t)
	e.fake.PutFile(ghRepo.FullName, before0, ".github/foureyes.yml", `version: 1
categories:
  code: {paths: ["**"], approvals: 1}
release:
  alert: {issue: true, labels: ["security", "needs-review"]}
`)
	d1 := ghCommit("d1", "mallory", t0.Add(-10*time.Minute))

	ev := ghPush("delivery-1", before0, d1.SHA, "mallory", false, d1)
	e.mustHandle(ev)

	is := e.fake.Issues(ghRepo.FullName)
	if len(is) != 1 {
		t.Fatalf("issues: %+v", is)
	}
	if !strings.Contains(is[0].Title, "main") || !strings.Contains(is[0].Title, "@mallory") ||
		!slices.Equal(is[0].Labels, []string{"security", "needs-review"}) ||
		!strings.Contains(is[0].Body, d1.SHA[:7]) || !strings.Contains(is[0].Body, "**direct-push**") {
		t.Errorf("issue: %+v", is[0])
	}
	runs := e.fake.CheckRuns(ghRepo.FullName, d1.SHA)
	if len(runs) != 1 || runs[0].Conclusion != "failure" || runs[0].Name != "foureyes" || !strings.Contains(runs[0].Summary, "direct-push") {
		t.Fatalf("check runs: %+v", runs)
	}
	fl := e.flagAudits()
	if len(fl) != 1 || fl[0].Pusher != "@mallory" || fl[0].Branch != "main" || fl[0].Before != before0 || fl[0].After != d1.SHA ||
		len(fl[0].Commits) != 1 || fl[0].Commits[0].Reason != "direct-push" || fl[0].Commits[0].Author != "@mallory" {
		t.Errorf("flag records: %+v", fl)
	}

	// Redelivery, same ID and a new one: no forge request at all.
	e.fake.ResetRequests()
	e.mustHandle(ev)
	ev.DeliveryID = "delivery-2"
	e.mustHandle(ev)
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("redelivery made %d requests: %v", n, e.requestLog())
	}
	if len(e.fake.Issues(ghRepo.FullName)) != 1 || len(e.fake.CheckRuns(ghRepo.FullName, d1.SHA)) != 1 || len(e.flagAudits()) != 1 {
		t.Errorf("redelivery duplicated an effect")
	}
	if m := e.metrics.snapshot(); m["github/direct-push"] != 1 || len(m) != 1 {
		t.Errorf("metrics: %v", m)
	}
}

// A crash between opening the issue and recording it (GitHub created the
// issue but answered 502): the retry finds the issue by its marker
// instead of opening a second one, and still publishes the check.
func TestGitHubIssueRecoveredAfterFailure(t *testing.T) {
	e := newGitHub(t)
	d1 := ghCommit("d1", "mallory", t0.Add(-10*time.Minute))
	e.fake.Fail(fakegithub.Failure{Method: "POST", Path: "/repos/acme/app/issues", AfterHandling: true})
	ev := ghPush("delivery-1", before0, d1.SHA, "mallory", false, d1)
	if err := e.handle(ev); err == nil {
		t.Fatal("a failed issue creation was not reported for retry")
	}
	if len(e.fake.Issues(ghRepo.FullName)) != 1 {
		t.Fatalf("the fake did not create the issue")
	}
	if runs := e.fake.CheckRuns(ghRepo.FullName, d1.SHA); len(runs) != 1 {
		t.Fatalf("the check waited for the issue: %+v", runs)
	}
	e.mustHandle(ev)
	if is := e.fake.Issues(ghRepo.FullName); len(is) != 1 {
		t.Errorf("issues after the retry: %d", len(is))
	}
	if runs := e.fake.CheckRuns(ghRepo.FullName, d1.SHA); len(runs) != 1 {
		t.Errorf("check runs after the retry: %+v", runs)
	}
	if len(e.flagAudits()) != 1 || e.metrics.snapshot()["github/direct-push"] != 1 {
		t.Errorf("audit %d, metrics %v", len(e.flagAudits()), e.metrics.snapshot())
	}
}

// A force-push rewrites the branch: the pushed commit is flagged
// force-push even when the commits it brings were reviewed.
func TestGitHubForcePushFlagged(t *testing.T) {
	e := newGitHub(t)
	c1 := ghCommit("c1", "alice", t0.Add(-5*time.Hour))
	e.mergedPR(prSpec{number: 1, author: "alice", commits: []fakegithub.Commit{c1},
		reviews: []fakegithub.Review{approve("bob", c1.SHA, t0.Add(-2*time.Hour))}, mergedAt: t0.Add(-time.Hour)})

	e.mustHandle(ghPush("d1", before0, c1.SHA, "dave", true, c1))

	fl := e.flagAudits()
	if len(fl) != 1 || !fl[0].Forced || !reflect.DeepEqual(fl[0].reasons(), []string{c1.SHA[:7] + ":force-push"}) || fl[0].Pusher != "@dave" {
		t.Fatalf("flag records: %+v", fl)
	}
	runs := e.fake.CheckRuns(ghRepo.FullName, c1.SHA)
	if len(runs) != 1 || runs[0].Conclusion != "failure" || !strings.Contains(runs[0].Title, "force-push") {
		t.Errorf("check runs: %+v", runs)
	}
	if m := e.metrics.snapshot(); m["github/force-push"] != 1 || len(m) != 1 {
		t.Errorf("metrics: %v", m)
	}
}

// Merged without an independent approval (an admin bypassing branch
// protection; the author's own approval and a review given after the
// merge do not count): unapproved-merge.
func TestGitHubAdminBypassIsUnapprovedMerge(t *testing.T) {
	e := newGitHub(t)
	c1 := ghCommit("c1", "alice", t0.Add(-3*time.Hour))
	e.mergedPR(prSpec{number: 3, author: "alice", commits: []fakegithub.Commit{c1},
		reviews: []fakegithub.Review{
			approve("alice", c1.SHA, t0.Add(-2*time.Hour)),  // the author
			approve("bob", c1.SHA, t0.Add(-30*time.Minute)), // after the merge
			{User: fakegithub.User{Login: "carol"}, State: "COMMENTED", CommitID: c1.SHA, SubmittedAt: t0.Add(-90 * time.Minute)},
		},
		mergedAt: t0.Add(-time.Hour)})

	e.mustHandle(ghPush("d1", before0, c1.SHA, "dave", false, c1))

	fl := e.flagAudits()
	if len(fl) != 1 || !reflect.DeepEqual(fl[0].reasons(), []string{c1.SHA[:7] + ":unapproved-merge"}) || fl[0].Commits[0].Change != 3 {
		t.Fatalf("flag records: %+v", fl)
	}
	is := e.fake.Issues(ghRepo.FullName)
	if len(is) != 1 || !slices.Equal(is[0].Labels, []string{"foureyes", "unreviewed-push"}) || !strings.Contains(is[0].Body, "[#3](") {
		t.Errorf("issues: %+v", is)
	}
	if m := e.metrics.snapshot(); m["github/unapproved-merge"] != 1 {
		t.Errorf("metrics: %v", m)
	}
}

// An invalid policy on the release branch: the push is still guarded
// with the built-in default (the direct push is flagged) and the policy
// itself is flagged.
func TestGitHubInvalidPolicyStillGuards(t *testing.T) {
	e := newGitHub(t)
	e.fake.PutFile(ghRepo.FullName, before0, ".foureyes.yml", "version: 1\ncategories: {code: {paths: [\"**\"], approvals: -1}}\n")
	d1 := ghCommit("d1", "mallory", t0.Add(-10*time.Minute))
	e.mustHandle(ghPush("d1", before0, d1.SHA, "mallory", false, d1))
	fl := e.flagAudits()
	want := []string{d1.SHA[:7] + ":direct-push", d1.SHA[:7] + ":invalid-policy"}
	if len(fl) != 1 || !reflect.DeepEqual(fl[0].reasons(), want) {
		t.Fatalf("flag records: %+v", fl)
	}
	if m := e.metrics.snapshot(); m["github/direct-push"] != 1 || len(m) != 1 {
		t.Errorf("metrics (invalid-policy is no unreviewed commit): %v", m)
	}
}

// Pushes to branches the policy does not guard are left alone.
func TestGitHubUnguardedBranchIgnored(t *testing.T) {
	e := newGitHub(t)
	d1 := ghCommit("d1", "mallory", t0)
	ev := ghPush("d1", before0, d1.SHA, "mallory", false, d1)
	ev.Push.Ref = "refs/heads/feature/x"
	e.mustHandle(ev)
	if len(e.audits(audit.KindFlag)) != 0 || len(e.fake.Issues(ghRepo.FullName)) != 0 {
		t.Error("an unguarded branch was flagged")
	}
	for _, r := range e.fake.Requests() {
		// Policy lookups only: the contents, the tip of the branch they are
		// read at, and whether the org's .github repository is readable when
		// it holds no policy.
		if !strings.Contains(r.Path, "/contents/") && !strings.Contains(r.Path, "access_tokens") && !strings.Contains(r.Path, "/commits/heads/") && !strings.HasSuffix(r.Path, "/.github") {
			t.Errorf("unexpected request %s %s", r.Method, r.Path)
		}
	}
}

// ghChain builds n commits for budget scenarios.
func ghChain(prefix, author string, n int, start time.Time) []fakegithub.Commit {
	out := make([]fakegithub.Commit, n)
	for i := range out {
		out[i] = ghCommit(fmt.Sprintf("%s-%d", prefix, i), author, start.Add(time.Duration(i)*time.Minute))
	}
	return out
}

// A new release branch cut from commits already judged on another
// release branch is not flagged again; a new commit on it is.
func TestGitHubNewBranchSkipsJudgedCommits(t *testing.T) {
	e := newGitHub(t)
	d1 := ghCommit("d1", "mallory", t0.Add(-time.Hour))
	e.mustHandle(ghPush("p1", before0, d1.SHA, "mallory", false, d1))
	if len(e.flagAudits()) != 1 {
		t.Fatal("the direct push to main was not flagged")
	}
	// A new branch brings what the default branch lacks (compare).
	e.fake.SetCompare(ghRepo.FullName, "main", d1.SHA, nil)
	ev := ghPush("p2", "0000000000000000000000000000000000000000", d1.SHA, "dave", false, d1)
	ev.Push.Ref, ev.Push.Created = "refs/heads/release/1.x", true
	e.mustHandle(ev)
	if fl := e.flagAudits(); len(fl) != 1 {
		t.Errorf("cutting release/1.x re-flagged main's commit: %+v", fl[1:])
	}
	x1 := ghCommit("x1", "dave", t0)
	e.fake.SetCompare(ghRepo.FullName, "main", x1.SHA, []fakegithub.Commit{x1})
	ev = ghPush("p3", "0000000000000000000000000000000000000000", x1.SHA, "dave", false, d1, x1)
	ev.Push.Ref, ev.Push.Created = "refs/heads/release/2.x", true
	e.mustHandle(ev)
	if fl := e.flagAudits(); len(fl) != 2 || !reflect.DeepEqual(fl[1].reasons(), []string{x1.SHA[:7] + ":direct-push"}) || fl[1].Branch != "release/2.x" {
		t.Errorf("flag records: %+v", fl)
	}
}
