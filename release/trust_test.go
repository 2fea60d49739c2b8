package release_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/internal/fakegithub"
)

// Issue 10: a pull request foureyes never saw while it was open (installed
// later) was merged after an independent approval. Who pushed its head
// comes from GitHub's activity API; the merge is not flagged.
func TestGitHubMergeOfChangeNeverSeenOpenIsNotFlagged(t *testing.T) {
	e := newGitHub(t)
	c1 := ghCommit("c1", "alice", t0.Add(-5*time.Hour))
	e.mergedPR(prSpec{number: 1, author: "alice", commits: []fakegithub.Commit{c1},
		reviews:  []fakegithub.Review{approve("bob", c1.SHA, t0.Add(-2*time.Hour))},
		pushers:  map[string]string{}, // foureyes recorded nothing
		mergedAt: t0.Add(-time.Hour), merge: "m1"})
	m1 := ghCommit("m1", "alice", t0.Add(-time.Hour))
	e.mustHandle(ghPush("d1", before0, m1.SHA, "alice", false, c1, m1))
	if fl := e.flagAudits(); len(fl) != 0 {
		t.Fatalf("a reviewed merge was flagged: %+v", fl)
	}

	// The pusher approving their own head is still caught.
	c2 := ghCommit("c2", "alice", t0.Add(-5*time.Hour))
	e.mergedPR(prSpec{number: 2, author: "alice", commits: []fakegithub.Commit{c2},
		reviews:  []fakegithub.Review{approve("bob", c2.SHA, t0.Add(-2*time.Hour))},
		pushers:  map[string]string{},
		mergedAt: t0.Add(-time.Hour), merge: "m2"})
	e.fake.AddActivity(ghRepo.FullName, fakegithub.Activity{Before: c1.SHA, After: c2.SHA, Ref: "topic-2", Type: "force_push", Actor: fakegithub.User{Login: "bob"}})
	m2 := ghCommit("m2", "alice", t0.Add(-time.Hour))
	e.mustHandle(ghPush("d2", m1.SHA, m2.SHA, "alice", false, c2, m2))
	if fl := e.flagAudits(); len(fl) != 1 || fl[0].Commits[0].Reason != "unapproved-merge" {
		t.Fatalf("bob pushed and approved #2: %+v", fl)
	}
}

// A new release branch whose head carries a policy that guards nothing is
// guarded by the default branch's policy (here the built-in default, which
// guards release/**): the pushed head does not choose its own rules.
func TestGitHubNewReleaseBranchCannotUnguardItself(t *testing.T) {
	e := newGitHub(t)
	d1 := ghCommit("d1", "mallory", t0)
	e.fake.PutFile(ghRepo.FullName, d1.SHA, ".github/foureyes.yml", "version: 1\nrelease:\n  branches: [\"nothing\"]\n")
	e.fake.SetCompare(ghRepo.FullName, "main", d1.SHA, []fakegithub.Commit{d1})
	ev := ghPush("p1", "0000000000000000000000000000000000000000", d1.SHA, "mallory", false, d1)
	ev.Push.Ref, ev.Push.Created = "refs/heads/release/9.9", true
	e.mustHandle(ev)
	fl := e.flagAudits()
	if len(fl) != 1 || !reflect.DeepEqual(fl[0].reasons(), []string{d1.SHA[:7] + ":direct-push"}) {
		t.Fatalf("flags: %+v", fl)
	}
}

// A new release branch created at a reviewed merge with "commits": [] (as
// GitHub sends for a branch created at an existing commit; the decoder then
// lists only head_commit) still brings what main lacks: a direct push
// below the merge is flagged, the reviewed merge is not.
func TestGitHubNewBranchJudgesEveryCommitMainLacks(t *testing.T) {
	e := newGitHub(t)
	x0 := ghCommit("x0", "mallory", t0.Add(-6*time.Hour))
	c1 := ghCommit("c1", "alice", t0.Add(-5*time.Hour))
	e.mergedPR(prSpec{number: 1, author: "alice", commits: []fakegithub.Commit{c1},
		reviews: []fakegithub.Review{approve("bob", c1.SHA, t0.Add(-2*time.Hour))}, mergedAt: t0.Add(-time.Hour), merge: "m1", base: "release/2.0"})
	m1 := ghCommit("m1", "alice", t0.Add(-time.Hour))
	e.fake.SetCompare(ghRepo.FullName, "main", m1.SHA, []fakegithub.Commit{x0, c1, m1})
	ev := ghPush("p1", "0000000000000000000000000000000000000000", m1.SHA, "dave", false, m1)
	ev.Push.Ref, ev.Push.Created = "refs/heads/release/2.0", true
	e.mustHandle(ev)
	fl := e.flagAudits()
	if len(fl) != 1 || !reflect.DeepEqual(fl[0].reasons(), []string{x0.SHA[:7] + ":direct-push"}) {
		t.Fatalf("flags: %+v", fl)
	}
}
