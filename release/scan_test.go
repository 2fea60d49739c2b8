package release_test

import (
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
	"github.com/foureyes-dev/foureyes/release"
)

// A merge without approvals that break glass let in is an override, not an
// unapproved merge; it is still not independently reviewed. An approved
// merge stays reviewed whatever the override record says.
func TestScannerOverrideCategory(t *testing.T) {
	e := newGitHub(t)
	c1 := ghCommit("c1", "alice", t0.Add(-5*time.Hour))
	c2 := ghCommit("c2", "alice", t0.Add(-4*time.Hour))
	c3 := ghCommit("c3", "alice", t0.Add(-3*time.Hour))
	e.mergedPR(prSpec{number: 1, author: "alice", commits: []fakegithub.Commit{c1}, mergedAt: t0.Add(-4 * time.Hour)})
	e.mergedPR(prSpec{number: 2, author: "alice", commits: []fakegithub.Commit{c2}, mergedAt: t0.Add(-3 * time.Hour)})
	e.mergedPR(prSpec{number: 3, author: "alice", commits: []fakegithub.Commit{c3}, mergedAt: t0.Add(-2 * time.Hour),
		reviews: []fakegithub.Review{approve("bob", c3.SHA, t0.Add(-150*time.Minute))}})
	e.fake.PutFile(ghRepo.FullName, "main", ".github/foureyes.yml", bgPolicy)
	// Break glass by carol and dave let #1 in; #3 was approved anyway.
	r1 := bot.ChangeRef{Forge: bot.GitHub, Repo: ghRepo, Number: 1, HeadSHA: c1.SHA}
	e.vote(r1, "carol", 1, t0.Add(-4*time.Hour-30*time.Minute), false, "prod is down")
	e.vote(r1, "dave", 2, t0.Add(-4*time.Hour-20*time.Minute), true, "")
	r3 := bot.ChangeRef{Forge: bot.GitHub, Repo: ghRepo, Number: 3, HeadSHA: c3.SHA}
	e.vote(r3, "carol", 3, t0.Add(-150*time.Minute), false, "needless")
	e.vote(r3, "dave", 4, t0.Add(-140*time.Minute), true, "")

	sc, err := e.guard.NewScanner(e.ctx, e.forge, nil, bot.GitHub, ghRepo, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	var fds []release.Finding
	for _, c := range []fakegithub.Commit{c3, c2, c1} {
		fd, err := sc.Judge(e.ctx, bot.PushCommit{SHA: c.SHA, Message: c.Message, Time: c.Committer.Date, Author: bot.User{Login: c.Author.Login}})
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, fd)
	}
	if fds[0].Reason != "" || fds[1].Reason != release.UnapprovedMerge || fds[2].Reason != release.Override ||
		!strings.Contains(fds[2].Detail, "prod is down") {
		t.Errorf("findings: %+v", fds)
	}
	s := release.SummarizeScan(fds)
	if s.Reviewed != 1 || s.ByReason["override"] != 1 || s.ByReason["unapproved-merge"] != 1 ||
		s.Line() != "1 of 3 commits independently reviewed (33.3 %), 0 direct pushes, 1 unapproved merge, 0 stale approvals, 1 override" {
		t.Errorf("summary %+v: %s", s, s.Line())
	}
	// A scan reads: no finding is stored for a later push or report.
	facts, err := e.db.Facts(e.ctx, "github/acme/app/release-commit/"+c1.SHA)
	if err != nil || len(facts) != 0 {
		t.Errorf("the scan stored findings: %v %v", facts, err)
	}
	for _, r := range e.fake.Requests() {
		if r.Method != "GET" && !strings.HasSuffix(r.Path, "/access_tokens") {
			t.Errorf("scan wrote: %s %s", r.Method, r.Path)
		}
	}
}
