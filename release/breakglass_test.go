package release_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
	"github.com/foureyes-dev/foureyes/release"
)

// vote stores a break-glass vote as bot.Service records it.
func (e *ghEnv) vote(ref bot.ChangeRef, login string, id int64, at time.Time, confirm bool, reason string) {
	e.t.Helper()
	raw, _ := json.Marshal(bot.BreakGlassVote{HeadSHA: ref.HeadSHA, BreakGlassCommand: bot.BreakGlassCommand{
		Author: bot.User{Login: login}, CommentID: id, At: at, Confirm: confirm, Reason: reason}})
	e.fact(ref, "breakglass", ref.HeadSHA+"/"+login+"/"+string(rune('0'+id)), string(raw))
	// When bot.Service first saw the head (its push event), before any vote.
	e.fact(ref, "head-seen", ref.HeadSHA, t0.Add(-10*time.Hour).Format(time.RFC3339Nano))
}

const bgPolicy = "version: 1\nbreak_glass:\n  approvers: { users: [\"carol\", \"dave\", \"alice\"] }\n  required: 2\n"

// A change merged on a break-glass override is shown as `override` with
// both names, counted apart, and not flagged as unreviewed; an override
// completed only after the merge did not let it in, and one by the
// author's own hand never counts.
func TestGitHubOverrideMerges(t *testing.T) {
	e := newGitHub(t)
	e.fake.PutFile(ghRepo.FullName, "v1.1.0", ".github/foureyes.yml", bgPolicy)
	e.fake.PutFile(ghRepo.FullName, fakegithub.SHA("v1.0.0"), ".github/foureyes.yml", bgPolicy)
	prev, tagSHA := fakegithub.SHA("v1.0.0"), fakegithub.SHA("v1.1.0")
	e.fake.AddTag(ghRepo.FullName, "v1.0.0", prev)
	e.fake.AddTag(ghRepo.FullName, "v1.1.0", tagSHA)

	// o1: overridden by carol and dave before the merge.
	o1 := ghCommit("o1", "bob", t0.Add(-5*time.Hour))
	e.mergedPR(prSpec{number: 20, author: "bob", commits: []fakegithub.Commit{o1}, mergedAt: t0.Add(-3 * time.Hour)})
	r20 := bot.ChangeRef{Forge: bot.GitHub, Repo: ghRepo, Number: 20, HeadSHA: o1.SHA}
	e.vote(r20, "carol", 1, t0.Add(-4*time.Hour), false, "payments down")
	e.vote(r20, "dave", 2, t0.Add(-4*time.Hour+time.Minute), true, "")
	// l1: the second key came after the merge.
	l1 := ghCommit("l1", "bob", t0.Add(-5*time.Hour))
	e.mergedPR(prSpec{number: 21, author: "bob", commits: []fakegithub.Commit{l1}, mergedAt: t0.Add(-3 * time.Hour)})
	r21 := bot.ChangeRef{Forge: bot.GitHub, Repo: ghRepo, Number: 21, HeadSHA: l1.SHA}
	e.vote(r21, "carol", 1, t0.Add(-4*time.Hour), false, "late")
	e.vote(r21, "dave", 2, t0.Add(-2*time.Hour), true, "")
	// a1: alice is an approver but authored it.
	a1 := ghCommit("a1", "alice", t0.Add(-5*time.Hour))
	e.mergedPR(prSpec{number: 22, author: "alice", commits: []fakegithub.Commit{a1}, mergedAt: t0.Add(-3 * time.Hour)})
	r22 := bot.ChangeRef{Forge: bot.GitHub, Repo: ghRepo, Number: 22, HeadSHA: a1.SHA}
	e.vote(r22, "alice", 1, t0.Add(-4*time.Hour), false, "mine")
	e.vote(r22, "carol", 2, t0.Add(-4*time.Hour), true, "")

	// The push of all three to main: only the two unapproved ones are flagged.
	e.mustHandle(ghPush("push-1", prev, a1.SHA, "dave", false, o1, l1, a1))
	fl := e.flagAudits()
	if len(fl) != 1 {
		t.Fatalf("%d flag records, want 1", len(fl))
	}
	var flagged []string
	for _, c := range fl[0].Commits {
		flagged = append(flagged, c.SHA)
	}
	if slices.Contains(flagged, o1.SHA) || !slices.Contains(flagged, l1.SHA) || !slices.Contains(flagged, a1.SHA) {
		t.Errorf("flagged %v; want l1 and a1, not the override o1", flagged)
	}
	runs := e.fake.CheckRuns(ghRepo.FullName, a1.SHA)
	if len(runs) != 1 || runs[0].Conclusion != "failure" || !strings.Contains(runs[0].Summary, "Merged on a break-glass override") || !strings.Contains(runs[0].Summary, "@carol and @dave") {
		t.Errorf("flag check: %+v", runs)
	}
	if n := e.metrics.snapshot()["github/override"]; n != 0 {
		t.Errorf("override counted as unreviewed %d times", n)
	}

	e.fake.SetCompare(ghRepo.FullName, prev, tagSHA, []fakegithub.Commit{o1, l1, a1})
	e.mustHandle(tagPush(bot.GitHub, ghRepo, "v1.1.0", tagSHA, "dave"))
	rep, err := release.Load(e.ctx, e.db, "github", ghRepo.FullName, "v1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Summary; s.Overridden != 1 || s.Unreviewed != 2 || s.Reviewed != 0 || s.ByReason["override"] != 0 {
		t.Errorf("summary %+v", s)
	}
	c := rep.Commits[0]
	if c.SHA != o1.SHA || c.Reason != release.Override || c.Reviewed || !slices.Equal(c.OverriddenBy, []string{"carol", "dave"}) ||
		c.Change == nil || c.Change.OverrideReason != "payments down" || !strings.Contains(c.Detail, "@carol and @dave") {
		t.Errorf("override commit %+v", c)
	}
	if rep.Commits[1].Reason != release.UnapprovedMerge || rep.Commits[2].Reason != release.UnapprovedMerge {
		t.Errorf("late and author overrides: %s, %s", rep.Commits[1].Reason, rep.Commits[2].Reason)
	}
	md := release.RenderMarkdown(rep)
	if !strings.Contains(md, "**override** by @carol and @dave") || !strings.Contains(md, "1 merged on a break-glass override") {
		t.Errorf("markdown:\n%s", md)
	}
}

// A push whose only notable commit came in on an override passes, and says so.
func TestGitHubOverridePushIsShownNotFlagged(t *testing.T) {
	e := newGitHub(t)
	prev := fakegithub.SHA("main-before")
	e.fake.PutFile(ghRepo.FullName, prev, ".github/foureyes.yml", bgPolicy)
	o1 := ghCommit("o1", "bob", t0.Add(-5*time.Hour))
	e.mergedPR(prSpec{number: 30, author: "bob", commits: []fakegithub.Commit{o1}, mergedAt: t0.Add(-time.Hour)})
	ref := bot.ChangeRef{Forge: bot.GitHub, Repo: ghRepo, Number: 30, HeadSHA: o1.SHA}
	e.vote(ref, "carol", 1, t0.Add(-3*time.Hour), false, "db down")
	e.vote(ref, "dave", 2, t0.Add(-2*time.Hour), true, "")
	push := ghPush("push-o1", prev, o1.SHA, "carol", false, o1)
	e.mustHandle(push)
	e.mustHandle(push) // redelivered: one check
	if n := len(e.flagAudits()); n != 0 {
		t.Fatalf("%d flags for an overridden merge", n)
	}
	runs := e.fake.CheckRuns(ghRepo.FullName, o1.SHA)
	if len(runs) != 1 || runs[0].Conclusion != "success" || runs[0].Title != "push to main: 1 commit(s) merged on a break-glass override" ||
		!strings.Contains(runs[0].Summary, "@carol and @dave: db down") {
		t.Fatalf("check runs: %+v", runs)
	}
}

// On GitLab the votes name their head (the note hook's last_commit): an
// MR merged on an override by bob and dave is shown on the pushed commit,
// not flagged.
func TestGitLabOverrideMerge(t *testing.T) {
	e := newGitLab(t)
	e.fake.SetFile(glProject, "r0", ".gitlab/foureyes.yml", []byte("version: 1\nbreak_glass:\n  approvers: { users: [\"bob\", \"dave\", \"alice\"] }\n"))
	e.fake.AddCommits(glProject, glCommit("r0", "dave", t0.Add(-48*time.Hour)))
	c1 := glCommit("h1", "alice", t0.Add(-5*time.Hour), "r0")
	e.fake.AddCommits(glProject, c1)
	head := e.mergedMR(3, glAlice, "alice", []fakegitlab.Commit{c1}, nil, time.Time{}, t0.Add(-time.Hour))
	ref := bot.ChangeRef{Forge: bot.GitLab, Repo: glRepo, Number: 3, HeadSHA: head}
	for i, v := range []struct {
		login string
		id    int64
	}{{"bob", glBob}, {"dave", glDave}} {
		raw, _ := json.Marshal(bot.BreakGlassVote{HeadSHA: head, HeadFromEvent: true, BreakGlassCommand: bot.BreakGlassCommand{
			Author: bot.User{Login: v.login, ID: v.id}, CommentID: int64(70 + i), At: t0.Add(-2 * time.Hour), Confirm: i > 0, Reason: "outage"}})
		e.fact(ref, "breakglass", head+"/"+v.login+"/"+string(rune('a'+i)), string(raw))
	}
	if err := e.guard.HandlePush(e.ctx, glPush("p1", "r0", head, "alice", 1, c1)); err != nil {
		t.Fatal(err)
	}
	if fl := e.flagAudits(); len(fl) != 0 {
		t.Fatalf("an overridden merge was flagged: %+v", fl)
	}
	sts := e.fake.Statuses(glProject, head)
	if len(sts) != 1 || sts[0].State != "success" || !strings.Contains(sts[0].Description, "break-glass override") {
		t.Fatalf("statuses: %+v", sts)
	}

	// The release tag's report lists it as override with both names.
	e.fake.AddTag(glProject, "v1.0.0", "r0")
	e.fake.AddTag(glProject, "v1.1.0", head)
	e.fake.SetFile(glProject, "v1.1.0", ".gitlab/foureyes.yml", []byte("version: 1\nbreak_glass:\n  approvers: { users: [\"bob\", \"dave\", \"alice\"] }\n"))
	if err := e.guard.HandlePush(e.ctx, tagPush(bot.GitLab, glRepo, "v1.1.0", head, "dave")); err != nil {
		t.Fatal(err)
	}
	rep, err := release.Load(e.ctx, e.db, "gitlab", glRepo.FullName, "v1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Overridden != 1 || rep.Summary.Unreviewed != 0 || len(rep.Commits) != 1 || rep.Commits[0].Reason != release.Override ||
		!slices.Equal(rep.Commits[0].OverriddenBy, []string{"bob", "dave"}) {
		t.Fatalf("report: %+v", rep)
	}
	if is := e.fake.Issues(glProject); len(is) != 1 || !strings.Contains(is[0].Description, "**override** by @bob and @dave") {
		t.Errorf("report issue: %+v", is)
	}
}
