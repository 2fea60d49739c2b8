package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
	"github.com/foureyes-dev/foureyes/store"
)

// The same scan and live explain on GitLab: a real commit graph on the
// fake, squash commits and merge commits associated with their merge
// requests as GitLab does, go-gitlab with the configured token.

const (
	sglProject = 31
	sglPath    = "acme/svc"
)

const (
	sglBot = iota + 900
	sglAlice
	sglBob
	sglDave
	sglMallory
)

type glScanEnv struct {
	*scanEnv
	gl    *fakegitlab.Server
	mu    sync.Mutex
	clock time.Time
}

func newScanGitLab(t *testing.T) *glScanEnv {
	t.Helper()
	gl := fakegitlab.New()
	t.Cleanup(gl.Close)
	e := &glScanEnv{gl: gl, clock: scanT0}
	gl.SetClock(func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.clock })
	for _, u := range []fakegitlab.User{
		{ID: sglBot, Username: "foureyes-bot"},
		{ID: sglAlice, Username: "alice", PublicEmail: "alice@example.com"},
		{ID: sglBob, Username: "bob", PublicEmail: "bob@example.com"},
		{ID: sglDave, Username: "dave", PublicEmail: "dave@example.com"},
		{ID: sglMallory, Username: "mallory", PublicEmail: "mallory@example.com"},
	} {
		gl.AddUser(u)
	}
	gl.AddToken("scan-token", sglBot)
	gl.AddProject(fakegitlab.Project{ID: sglProject, PathWithNamespace: sglPath, DefaultBranch: "main"})
	for _, id := range []int{sglBot, sglAlice, sglBob, sglMallory} {
		gl.SetMember(sglProject, id, fakegitlab.Developer)
	}
	gl.SetMember(sglProject, sglDave, fakegitlab.Maintainer)

	dir := t.TempDir()
	dbURL := "sqlite:" + filepath.Join(dir, "foureyes.db")
	db, err := store.Open(context.Background(), dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.scanEnv = &scanEnv{t: t, db: db, dir: dir, vars: map[string]string{
		"FOUREYES_DATABASE":              dbURL,
		"FOUREYES_STATE_DIR":             filepath.Join(dir, "state"),
		"FOUREYES_GITLAB_URL":            gl.URL(),
		"FOUREYES_GITLAB_TOKEN":          "scan-token",
		"FOUREYES_GITLAB_WEBHOOK_SECRET": "s3cret",
	}}
	return e
}

func (e *glScanEnv) at(t time.Time, f func()) {
	e.mu.Lock()
	saved := e.clock
	e.clock = t
	e.mu.Unlock()
	f()
	e.mu.Lock()
	e.clock = saved
	e.mu.Unlock()
}

func (e *glScanEnv) fact(iid int, kind, key, value string) {
	e.t.Helper()
	ref := bot.ChangeRef{Forge: bot.GitLab, Repo: bot.Repo{FullName: sglPath}, Number: iid}
	if err := e.db.PutFact(context.Background(), bot.FactScope(ref, kind), key, value); err != nil {
		e.t.Fatal(err)
	}
}

func glc(id, author string, at time.Time, parents ...string) fakegitlab.Commit {
	return fakegitlab.Commit{ID: id, Message: id + ": change " + id + "\n", AuthorName: author, AuthorEmail: author + "@example.com", Date: at, ParentIDs: parents}
}

type glMergedSpec struct {
	iid      int
	author   int
	login    string
	target   string
	commits  []fakegitlab.Commit // oldest first
	approver int                 // 0: none
	approved string              // the head the approval event named (default: the final head)
	at       time.Time           // merged at; approved an hour before
	merge    string              // merge commit
	squash   string              // squash commit
}

func (e *glScanEnv) merged(s glMergedSpec) {
	e.t.Helper()
	if s.target == "" {
		s.target = "main"
	}
	head := s.commits[len(s.commits)-1].ID
	newest := make([]fakegitlab.Commit, len(s.commits))
	for i, c := range s.commits {
		newest[len(s.commits)-1-i] = c
	}
	e.gl.AddMergeRequest(sglProject, fakegitlab.MergeRequest{
		IID: s.iid, Title: fmt.Sprintf("Change %d", s.iid), AuthorID: s.author, SourceBranch: fmt.Sprintf("topic-%d", s.iid),
		TargetBranch: s.target, SHA: head, State: "merged", MergedAt: s.at, MergeCommitSHA: s.merge, SquashCommitSHA: s.squash,
		Diffs:   []fakegitlab.Diff{{OldPath: fmt.Sprintf("pkg/f%d.go", s.iid), NewPath: fmt.Sprintf("pkg/f%d.go", s.iid), Diff: fmt.Sprintf("@@ -1 +1 @@\n-a\n+b%d\n", s.iid)}},
		Commits: newest,
	})
	e.fact(s.iid, "pusher", head, s.login)
	if s.approver != 0 {
		e.at(s.at.Add(-time.Hour), func() { e.gl.Approve(sglProject, s.iid, s.approver) })
		if s.approved == "" {
			s.approved = head
		}
		names := map[int]string{sglBob: "bob", sglAlice: "alice", sglDave: "dave"}
		e.fact(s.iid, "approval", names[s.approver], s.approved)
	}
}

// The GitLab history, oldest first, on a real graph:
//
//	r0 (old) <- S1 (squash of !1) <- M2 (merge of !2: b1, b2)
//	  <- M4 (merge of !4 feature -> main, which brings M3: the merge of
//	     !3 topic -> feature with c1) <- D1 (direct) <- S5 (squash of !5,
//	     unapproved) <- S6 (squash of !6: bob approved f1, alice pushed f2)
func (e *glScanEnv) history() {
	d := func(days float64) time.Time { return scanT0.Add(-time.Duration(days * 24 * float64(time.Hour))) }
	r0 := glc("r0", "dave", d(200))
	a1 := glc("a1", "alice", d(11), "r0")
	s1 := glc("S1", "alice", d(10.5), "r0")
	b1, b2 := glc("b1", "alice", d(10), "S1"), glc("b2", "alice", d(9.5), "b1")
	m2 := glc("M2", "alice", d(9), "S1", "b2")
	c1 := glc("c1", "alice", d(8.5), "M2")
	m3 := glc("M3", "dave", d(8), "M2", "c1")
	m4 := glc("M4", "alice", d(7), "M2", "M3")
	d1 := glc("D1", "mallory", d(6), "M4")
	e1 := glc("e1", "dave", d(5.5), "D1")
	s5 := glc("S5", "dave", d(5), "D1")
	f1, f2 := glc("f1", "alice", d(4.5), "S5"), glc("f2", "alice", d(4.2), "f1")
	s6 := glc("S6", "alice", d(4), "S5")
	e.gl.AddCommits(sglProject, r0, a1, s1, b1, b2, m2, c1, m3, m4, d1, e1, s5, f1, f2, s6)
	e.gl.SetBranch(sglProject, "main", "S6")

	e.merged(glMergedSpec{iid: 1, author: sglAlice, login: "alice", commits: []fakegitlab.Commit{a1}, approver: sglBob, at: d(10.5), squash: "S1"})
	e.merged(glMergedSpec{iid: 2, author: sglAlice, login: "alice", commits: []fakegitlab.Commit{b1, b2}, approver: sglBob, at: d(9), merge: "M2"})
	e.merged(glMergedSpec{iid: 3, author: sglAlice, login: "alice", target: "feature", commits: []fakegitlab.Commit{c1}, approver: sglBob, at: d(8), merge: "M3"})
	e.merged(glMergedSpec{iid: 4, author: sglAlice, login: "dave", commits: []fakegitlab.Commit{c1, m3}, approver: sglBob, at: d(7), merge: "M4"})
	e.merged(glMergedSpec{iid: 5, author: sglDave, login: "dave", commits: []fakegitlab.Commit{e1}, at: d(5), squash: "S5"})
	e.merged(glMergedSpec{iid: 6, author: sglAlice, login: "alice", commits: []fakegitlab.Commit{f1, f2}, approver: sglBob, approved: "f1", at: d(4), squash: "S6"})
	e.fact(6, "pusher", "f1", "alice")
}

func TestScanGitLabEveryKindOfCommit(t *testing.T) {
	e := newScanGitLab(t)
	e.history()
	code, out, errs := e.scan("--repo", sglPath, "--forge", "gitlab", "--since", "90d", "--format", "json")
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	var rep scanReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var order []string
	for _, fd := range rep.Commits {
		v := verdictLabel(fd)
		if fd.Change != nil {
			v += fmt.Sprintf(" !%d", fd.Change.Number)
		}
		got[fd.SHA] = v
		order = append(order, fd.SHA)
	}
	want := map[string]string{
		"S6": "stale-approval !6", "S5": "unapproved-merge !5", "D1": "direct-push",
		"M4": "reviewed !4", "M3": "reviewed !4", "c1": "reviewed !4",
		"M2": "reviewed !2", "b2": "reviewed !2", "b1": "reviewed !2", "S1": "reviewed !1",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("verdicts:\n got %v\nwant %v\norder %v", got, want, order)
	}
	if rep.Forge != "gitlab" || rep.Repo != sglPath || rep.Branch != "main" ||
		rep.SummaryLine != "7 of 10 commits independently reviewed (70.0 %), 1 direct push, 1 unapproved merge, 1 stale approval, 0 overrides" {
		t.Errorf("report: %s %s %s %q", rep.Forge, rep.Repo, rep.Branch, rep.SummaryLine)
	}
	for _, r := range e.gl.Requests() {
		if r.Method != "GET" {
			t.Errorf("scan wrote to GitLab: %s %s", r.Method, r.Path)
		}
	}
	if n := e.gl.CountRequests("GET", "/repository/commits/c1/merge_requests"); n != 0 {
		t.Errorf("c1 came in with !4 yet was looked up %d times", n)
	}
}

func TestExplainLiveGitLab(t *testing.T) {
	e := newScanGitLab(t)
	e.gl.AddCommits(sglProject, glc("r0", "dave", scanT0.Add(-48*time.Hour)), glc("g1", "alice", scanT0.Add(-time.Hour), "r0"))
	e.gl.AddMergeRequest(sglProject, fakegitlab.MergeRequest{IID: 7, Title: "Reviewed", AuthorID: sglAlice, SourceBranch: "topic", TargetBranch: "main",
		SHA: "g1", Diffs: []fakegitlab.Diff{{OldPath: "pkg/g.go", NewPath: "pkg/g.go", Diff: "@@ -1 +1 @@\n-a\n+g\n"}},
		Commits: []fakegitlab.Commit{glc("g1", "alice", scanT0.Add(-time.Hour), "r0")}})
	e.fact(7, "pusher", "g1", "alice")
	e.gl.Approve(sglProject, 7, sglBob)
	e.fact(7, "approval", "bob", "g1")

	code, out, errs := e.explain("--repo", sglPath, "--forge", "gitlab", "--pr", "7")
	if code != 0 || !strings.HasPrefix(out, "SUCCESS: ") {
		t.Fatalf("explain !7: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = e.explain("--repo", sglPath, "--forge", "gitlab", "--all-open", "--format", "json")
	var lines []struct {
		Number int       `json:"number"`
		State  bot.State `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &lines); err != nil || code != 0 || len(lines) != 1 || lines[0].Number != 7 || lines[0].State != bot.Success {
		t.Errorf("--all-open: exit %d, %v\n%s", code, err, out)
	}
	for _, r := range e.gl.Requests() {
		if r.Method != "GET" {
			t.Errorf("explain wrote to GitLab: %s %s", r.Method, r.Path)
		}
	}
	if sts := e.gl.Statuses(sglProject, "g1"); len(sts) != 0 {
		t.Errorf("explain published: %+v", sts)
	}
}
