package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	ghforge "github.com/foureyes-dev/foureyes/forge/github"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
	"github.com/foureyes-dev/foureyes/release"
	"github.com/foureyes-dev/foureyes/store"
)

// `foureyes scan` and a live `foureyes explain`, end to end: the command
// as a user runs it (flags, configuration from the environment, the real
// SQLite store holding what the server recorded) against the fake GitHub
// through go-github and ghinstallation, with the App found through its JWT.

const (
	scanRepo = "acme/app"
	scanInst = 77
	scanApp  = 5150
)

// scanT0 is "now": real time, because ghinstallation judges the fake's
// installation tokens by the real clock.
var scanT0 = time.Now().UTC().Truncate(time.Second)

type scanEnv struct {
	t    *testing.T
	fake *fakegithub.Fake
	db   *store.DB
	vars map[string]string
	dir  string
	pem  []byte

	mu     sync.Mutex
	sleeps []time.Duration
	low    int
}

func newScanGitHub(t *testing.T) *scanEnv {
	t.Helper()
	k, p, err := fakegithub.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	fake := fakegithub.New(scanApp, &k.PublicKey)
	t.Cleanup(fake.Close)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(keyFile, p, 0o600); err != nil {
		t.Fatal(err)
	}
	dbURL := "sqlite:" + filepath.Join(dir, "foureyes.db")
	db, err := store.Open(context.Background(), dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	fake.AddRepo(scanRepo)
	fake.SetInstallation(scanRepo, scanInst)
	for login, role := range map[string]string{"alice": "write", "bob": "write", "carol": "write", "dave": "admin", "erin": "write", "mallory": "write"} {
		fake.SetPermission(scanRepo, login, role)
	}
	return &scanEnv{t: t, fake: fake, db: db, dir: dir, pem: p, vars: map[string]string{
		"FOUREYES_DATABASE":                dbURL,
		"FOUREYES_STATE_DIR":               filepath.Join(dir, "state"),
		"FOUREYES_GITHUB_APP_ID":           strconv.Itoa(scanApp),
		"FOUREYES_GITHUB_PRIVATE_KEY_FILE": keyFile,
		"FOUREYES_GITHUB_WEBHOOK_SECRET":   "s3cret",
		"FOUREYES_GITHUB_API_URL":          fake.URL(),
	}}
}

func (e *scanEnv) env() liveEnv {
	return liveEnv{
		getenv:    func(k string) string { return e.vars[k] },
		lowBudget: e.low,
		sleep: func(_ context.Context, d time.Duration) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.sleeps = append(e.sleeps, d)
			return nil
		},
		now:   time.Now,
		isTTY: func(io.Writer) bool { return false },
	}
}

// exitCode maps a command's error as main does.
func exitCode(err error) int {
	var ee exitError
	switch {
	case err == nil:
		return 0
	case asExitError(err, &ee):
		return int(ee)
	}
	return 2
}

func asExitError(err error, ee *exitError) bool {
	e, ok := err.(exitError)
	if ok {
		*ee = e
	}
	return ok
}

func (e *scanEnv) scan(args ...string) (int, string, string) {
	e.t.Helper()
	var out, errs bytes.Buffer
	err := asExit2(runScan(context.Background(), e.env(), args, &out, &errs), &errs)
	if errors.Is(err, errUsage) {
		fmt.Fprintln(&errs, err) // as main does
	}
	return exitCode(err), out.String(), errs.String()
}

func (e *scanEnv) explain(args ...string) (int, string, string) {
	e.t.Helper()
	var out, errs bytes.Buffer
	err := asExit2(runExplainLive(context.Background(), e.env(), args, &out, &errs), &errs)
	if errors.Is(err, errUsage) {
		fmt.Fprintln(&errs, err) // as main does
	}
	return exitCode(err), out.String(), errs.String()
}

// fact records what bot.Service would have stored about a change.
func (e *scanEnv) fact(number int, kind, key, value string) {
	e.t.Helper()
	ref := bot.ChangeRef{Forge: bot.GitHub, Repo: bot.Repo{FullName: scanRepo}, Number: number}
	if err := e.db.PutFact(context.Background(), bot.FactScope(ref, kind), key, value); err != nil {
		e.t.Fatal(err)
	}
}

// writes lists the requests that could change something on the fake:
// anything but a GET, except asking for an installation token.
func writes(reqs []fakegithub.Request) []string {
	var out []string
	for _, r := range reqs {
		if r.Method != "GET" && !(r.Method == "POST" && strings.HasSuffix(r.Path, "/access_tokens")) {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

func scanIdent(login string, at time.Time) fakegithub.Identity {
	return fakegithub.Identity{Name: strings.ToUpper(login[:1]) + login[1:], Email: login + "@example.com", Login: login, Date: at}
}

func scanCommit(name, author string, at time.Time, parents ...string) fakegithub.Commit {
	ps := make([]string, len(parents))
	for i, p := range parents {
		ps[i] = fakegithub.SHA(p)
	}
	return fakegithub.Commit{SHA: fakegithub.SHA(name), Message: name + ": change " + name + "\n\nbody", Author: scanIdent(author, at), Committer: scanIdent(author, at), Parents: ps}
}

type mergedSpec struct {
	number   int
	author   string
	base     string
	commits  []fakegithub.Commit // oldest first; the last is the final head
	reviews  []fakegithub.Review
	pushers  map[string]string // head name -> pusher (default: the final head by the author)
	mergedAt time.Time
	landed   string // the commit on the base branch that carries it: squash or merge commit
}

// merged adds a merged pull request, the commits/{sha}/pulls associations
// GitHub keeps for its commits and its squash or merge commit, and the
// facts the server would have recorded.
func (e *scanEnv) merged(s mergedSpec) {
	e.t.Helper()
	if s.base == "" {
		s.base = "main"
	}
	head := s.commits[len(s.commits)-1].SHA
	e.fake.AddPR(scanRepo, fakegithub.PR{
		Number: s.number, Title: fmt.Sprintf("Change %d", s.number), Author: fakegithub.User{Login: s.author},
		State: "closed", Merged: true, MergedAt: s.mergedAt, BaseRef: s.base, HeadRef: fmt.Sprintf("topic-%d", s.number),
		MergeCommitSHA: fakegithub.SHA(s.landed), HeadSHA: head,
		Files:   []fakegithub.File{{Filename: fmt.Sprintf("pkg/f%d.go", s.number), Patch: fmt.Sprintf("@@ -1 +1 @@\n-a\n+b%d", s.number)}},
		Commits: s.commits, CreatedAt: s.mergedAt.Add(-48 * time.Hour), UpdatedAt: s.mergedAt,
	})
	for _, r := range s.reviews {
		e.fake.AddReview(scanRepo, s.number, r)
	}
	if s.pushers == nil {
		e.fact(s.number, "pusher", head, s.author)
	}
	for sha, who := range s.pushers {
		e.fact(s.number, "pusher", fakegithub.SHA(sha), who)
	}
}

func approval(by, commitName string, at time.Time) fakegithub.Review {
	return fakegithub.Review{User: fakegithub.User{Login: by}, State: "APPROVED", CommitID: fakegithub.SHA(commitName), SubmittedAt: at}
}

// history builds a main branch with every kind of commit (newest first):
//
//	S6  squash of #6: bob approved f1, alice pushed f2 and merged: stale-approval
//	S5  squash of #5: merged by an admin with no approval: unapproved-merge
//	D1  pushed directly by mallory: direct-push
//	M4  merge of #4 (feature -> main), approved by bob; it brings
//	M3  the merge of #3 (topic -> feature, approved by carol) and
//	c1  #3's commit: a merge of merges
//	M2  merge commit of #2, approved by bob, with its commits b2, b1
//	S1  squash of #1, approved by bob
//	r0  an old root commit, outside a 90-day window
func (e *scanEnv) history() []fakegithub.Commit {
	d := func(days float64) time.Time { return scanT0.Add(-time.Duration(days * 24 * float64(time.Hour))) }
	a1 := scanCommit("a1", "alice", d(11))
	b1, b2 := scanCommit("b1", "carol", d(10)), scanCommit("b2", "carol", d(9.5))
	c1 := scanCommit("c1", "erin", d(8.5))
	m3 := scanCommit("M3", "carol", d(8), "M2", "c1")
	e1 := scanCommit("e1", "dave", d(5.5))
	f1, f2 := scanCommit("f1", "alice", d(4.5)), scanCommit("f2", "alice", d(4.1))

	e.merged(mergedSpec{number: 1, author: "alice", commits: []fakegithub.Commit{a1}, landed: "S1", mergedAt: d(10.5),
		reviews: []fakegithub.Review{approval("bob", "a1", d(10.6))}})
	e.merged(mergedSpec{number: 2, author: "carol", commits: []fakegithub.Commit{b1, b2}, landed: "M2", mergedAt: d(9),
		reviews: []fakegithub.Review{approval("bob", "b2", d(9.2))}})
	e.merged(mergedSpec{number: 3, author: "erin", base: "feature", commits: []fakegithub.Commit{c1}, landed: "M3", mergedAt: d(8),
		reviews: []fakegithub.Review{approval("carol", "c1", d(8.2))}})
	e.merged(mergedSpec{number: 4, author: "carol", commits: []fakegithub.Commit{c1, m3}, landed: "M4", mergedAt: d(7),
		reviews: []fakegithub.Review{approval("bob", "M3", d(7.2))}, pushers: map[string]string{"M3": "carol"}})
	e.merged(mergedSpec{number: 5, author: "dave", commits: []fakegithub.Commit{e1}, landed: "S5", mergedAt: d(5)})
	e.merged(mergedSpec{number: 6, author: "alice", commits: []fakegithub.Commit{f1, f2}, landed: "S6", mergedAt: d(4),
		reviews: []fakegithub.Review{approval("bob", "f1", d(4.3))}, pushers: map[string]string{"f1": "alice", "f2": "alice"}})

	main := []fakegithub.Commit{
		scanCommit("S6", "alice", d(4), "S5"),
		scanCommit("S5", "dave", d(5), "D1"),
		scanCommit("D1", "mallory", d(6), "M4"),
		scanCommit("M4", "carol", d(7), "M2", "M3"),
		m3, c1,
		scanCommit("M2", "carol", d(9), "S1", "b2"),
		b2, b1,
		scanCommit("S1", "alice", d(10.5), "r0"),
		scanCommit("r0", "dave", d(200)),
	}
	// GitHub associates a commit with the pull requests that contain it
	// and with the one its squash or merge commit landed.
	pulls := map[string][]int{"S6": {6}, "S5": {5}, "M4": {4}, "M3": {3, 4}, "c1": {3, 4}, "M2": {2}, "b2": {2}, "b1": {2}, "S1": {1}}
	for name, ns := range pulls {
		e.fake.SetCommitPulls(scanRepo, fakegithub.SHA(name), ns...)
	}
	e.fake.SetHistory(scanRepo, "main", main)
	return main
}

func sha7(name string) string { return fakegithub.SHA(name)[:7] }

func TestScanGitHubEveryKindOfCommit(t *testing.T) {
	e := newScanGitHub(t)
	e.history()

	code, out, errs := e.scan("--repo", scanRepo, "--since", "90d", "--format", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (unreviewed commits)\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	var rep scanReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := map[string]string{}
	var order []string
	for _, fd := range rep.Commits {
		v := verdictLabel(fd)
		if fd.Change != nil {
			v += fmt.Sprintf(" #%d", fd.Change.Number)
		}
		got[fd.SHA[:7]] = v
		order = append(order, fd.SHA[:7])
	}
	want := map[string]string{
		sha7("S6"): "stale-approval #6", sha7("S5"): "unapproved-merge #5", sha7("D1"): "direct-push",
		sha7("M4"): "reviewed #4", sha7("M3"): "reviewed #4", sha7("c1"): "reviewed #4",
		sha7("M2"): "reviewed #2", sha7("b2"): "reviewed #2", sha7("b1"): "reviewed #2", sha7("S1"): "reviewed #1",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("verdicts:\n got %v\nwant %v", got, want)
	}
	if order[0] != sha7("S6") || order[len(order)-1] != sha7("S1") {
		t.Errorf("commits not newest first: %v", order)
	}
	wantLine := "7 of 10 commits independently reviewed (70.0 %), 1 direct push, 1 unapproved merge, 1 stale approval, 0 overrides"
	if rep.SummaryLine != wantLine {
		t.Errorf("summary line %q, want %q", rep.SummaryLine, wantLine)
	}
	var landers []string
	for _, l := range rep.Summary.Landers {
		landers = append(landers, l.Who)
	}
	if !slices.Equal(landers, []string{"@alice", "@dave", "@mallory"}) {
		t.Errorf("landers %v", landers)
	}
	if rep.Policy.WhatIf || rep.Policy.Source == "" || rep.Branch != "main" || rep.Window.Since.IsZero() {
		t.Errorf("report header: %+v", rep)
	}
	for _, fd := range rep.Commits {
		switch fd.SHA[:7] {
		case sha7("M4"):
			c := fd.Change
			if len(c.Categories) != 1 || c.Categories[0].Name != "code" || !slices.Equal(c.Categories[0].Counted, []string{"bob"}) || c.Categories[0].Required != 1 {
				t.Errorf("per-category evidence of #4: %+v", c.Categories)
			}
		case sha7("S6"):
			if !strings.Contains(fd.Detail, "@bob approved "+sha7("f1")) {
				t.Errorf("stale-approval detail does not say who approved what: %q", fd.Detail)
			}
		}
	}
	if w := writes(e.fake.Requests()); len(w) != 0 {
		t.Errorf("scan wrote to the forge: %v", w)
	}
	// The App was found through its JWT, and the rest read with the
	// installation's token.
	var jwt, inst int
	for _, r := range e.fake.Requests() {
		switch {
		case r.Path == "/repos/"+scanRepo+"/installation":
			jwt++
		case r.Installation == scanInst:
			inst++
		}
	}
	if jwt != 1 || inst == 0 {
		t.Errorf("installation lookups %d, requests with its token %d", jwt, inst)
	}
	// Every change is read once, whatever the number of its commits.
	for _, n := range []int{2, 4} {
		if c := countPath(e.fake.Requests(), fmt.Sprintf("/pulls/%d/files", n)); c != 1 {
			t.Errorf("#%d files read %d times", n, c)
		}
	}
	if c := countPath(e.fake.Requests(), "/commits/"+fakegithub.SHA("c1")+"/pulls"); c != 0 {
		t.Errorf("c1 came in with #4 yet was looked up %d times", c)
	}
}

func countPath(reqs []fakegithub.Request, suffix string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasSuffix(r.Path, suffix) {
			n++
		}
	}
	return n
}

func TestScanGitHubTableWindowsAndWhatIf(t *testing.T) {
	e := newScanGitHub(t)
	e.history()

	code, out, errs := e.scan("--repo", scanRepo, "--last", "3")
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{
		"github acme/app, branch main, the last 3 commits",
		sha7("S6") + " ", "stale-approval", "#6",
		"0 of 3 commits independently reviewed (0.0 %), 1 direct push, 1 unapproved merge, 1 stale approval, 0 overrides",
		"unreviewed changes landed by: @alice (1: stale-approval); @dave (1: unapproved-merge); @mallory (1: direct-push)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, sha7("M4")) {
		t.Errorf("--last 3 listed a fourth commit:\n%s", out)
	}

	// A window of only reviewed commits exits 0: it can gate a job.
	code, out, errs = e.scan("--repo", scanRepo, "--since", scanT0.Add(-11*24*time.Hour).Format(time.RFC3339), "--branch", "main", "--format", "csv")
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if lines := strings.Count(out, "\n"); lines != 11 { // header + 10 commits: r0 is outside
		t.Errorf("csv has %d lines:\n%s", lines, out)
	}
	if !strings.HasPrefix(out, "sha,landed_at,committed_at,author,title,reviewed,reason,change") || !strings.Contains(errs, "7 of 10 commits") {
		t.Errorf("csv:\n%s\nstderr:\n%s", out, errs)
	}

	e.fake.SetHistory(scanRepo, "release/1", e.history()[6:10]) // M2, b2, b1, S1: all reviewed
	code, out, errs = e.scan("--repo", scanRepo, "--branch", "release/1", "--last", "10")
	if code != 0 || !strings.Contains(out, "4 of 4 commits independently reviewed (100.0 %)") {
		t.Errorf("a reviewed branch: exit %d\n%s\n%s", code, out, errs)
	}

	// What if the repository had required two approvals?
	strict := filepath.Join(e.dir, "strict.yml")
	if err := os.WriteFile(strict, []byte("version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    approvals: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = e.scan("--repo", scanRepo, "--branch", "release/1", "--last", "10", "--policy", strict, "--format", "json")
	var rep scanReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 {
		t.Fatalf("what-if: exit %d, %v\n%s\n%s", code, err, out, errs)
	}
	if !rep.Policy.WhatIf || rep.Policy.Source != strict || rep.Summary.Reviewed != 0 || rep.Summary.ByReason["unapproved-merge"] != 4 {
		t.Errorf("what-if report: %+v", rep.Policy)
		t.Log(rep.SummaryLine)
	}
	if w := writes(e.fake.Requests()); len(w) != 0 {
		t.Errorf("scan wrote to the forge: %v", w)
	}
}

func TestScanUsageAndErrorsExit2(t *testing.T) {
	e := newScanGitHub(t)
	e.history()
	for _, args := range [][]string{
		{"--since", "90d"},
		{"--repo", scanRepo},
		{"--repo", scanRepo, "--since", "90d", "--last", "3"},
		{"--repo", scanRepo, "--since", "ninety days"},
		{"--repo", scanRepo, "--last", "3", "--format", "xml"},
		{"--repo", "acme/not-installed", "--last", "3"},
		{"--repo", scanRepo, "--last", "3", "--policy", filepath.Join(e.dir, "missing.yml")},
	} {
		code, out, errs := e.scan(args...)
		if code != 2 || errs == "" {
			t.Errorf("scan %v: exit %d, stderr %q, stdout %q", args, code, errs, out)
		}
	}
	e.fake.AddRepo("acme/not-installed")
	if code, _, errs := e.scan("--repo", "acme/not-installed", "--last", "3"); code != 2 || !strings.Contains(errs, "not installed") {
		t.Errorf("uninstalled repository: exit %d: %s", code, errs)
	}
}

// An interrupted scan leaves its progress in the state directory; --resume
// judges only what is left and reports the whole window.
func TestScanResumeAfterInterruption(t *testing.T) {
	e := newScanGitHub(t)
	e.history()
	// #2's reviews keep failing: the scan stops at M2 (the 7th commit).
	e.fake.Fail(fakegithub.Failure{Method: "GET", Path: "/pulls/2/reviews", Status: 502, Times: 4})
	code, out, errs := e.scan("--repo", scanRepo, "--since", "90d", "--format", "json")
	if code != 2 || !strings.Contains(errs, "scan interrupted after 6 of 10 commits") || !strings.Contains(errs, "--resume") {
		t.Fatalf("interrupted scan: exit %d\n%s\n%s", code, out, errs)
	}
	state := scanStatePath(e.vars["FOUREYES_STATE_DIR"], bot.GitHub, scanRepo, "main")
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("no progress file: %v", err)
	}
	e.fake.ResetRequests()
	code, out, errs = e.scan("--repo", scanRepo, "--since", "90d", "--format", "json", "--resume")
	if code != 1 || !strings.Contains(errs, "resuming the scan of acme/app@main: 6 of 10 commits already judged") {
		t.Fatalf("resumed scan: exit %d\n%s", code, errs)
	}
	var rep scanReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Commits) != 10 || rep.SummaryLine != "7 of 10 commits independently reviewed (70.0 %), 1 direct push, 1 unapproved merge, 1 stale approval, 0 overrides" {
		t.Errorf("resumed report: %d commits, %q", len(rep.Commits), rep.SummaryLine)
	}
	if rep.Commits[0].SHA[:7] != sha7("S6") {
		t.Errorf("resumed report is not in history order: %s first", rep.Commits[0].SHA[:7])
	}
	// The judged commits were not looked up again; the history was not
	// listed again either (the saved list is the window).
	for _, name := range []string{"S6", "S5", "D1", "M4"} {
		if c := countPath(e.fake.Requests(), "/commits/"+fakegithub.SHA(name)+"/pulls"); c != 0 {
			t.Errorf("%s looked up again on resume", name)
		}
	}
	if c := countPath(e.fake.Requests(), "/repos/"+scanRepo+"/commits"); c != 0 {
		t.Errorf("history listed again on resume: %d", c)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("progress file left after a complete scan: %v", err)
	}
	// Nothing to resume now: a new scan, said so.
	code, _, errs = e.scan("--repo", scanRepo, "--since", "90d", "--resume")
	if code != 1 || !strings.Contains(errs, "no interrupted scan of acme/app@main to resume") {
		t.Errorf("resume without progress: exit %d: %s", code, errs)
	}
}

// When the rate limit is spent the scan says so, waits for the reset and
// goes on; when it runs low it waits before spending the rest.
func TestScanWaitsForRateLimitReset(t *testing.T) {
	e := newScanGitHub(t)
	e.history()
	e.fake.Fail(fakegithub.Failure{Method: "GET", Path: "/pulls/4/files", RateLimited: true, ResetAfter: 30 * time.Second})
	code, out, errs := e.scan("--repo", scanRepo, "--since", "90d")
	if code != 1 || !strings.Contains(errs, "rate limit spent: waiting") || !strings.Contains(out, "7 of 10 commits") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if len(e.sleeps) != 1 || e.sleeps[0] < 29*time.Second || e.sleeps[0] > 32*time.Second {
		t.Errorf("waits: %v, want one of about 31s", e.sleeps)
	}
	if !strings.Contains(errs, "waited 1 time(s)") {
		t.Errorf("no account of the wait:\n%s", errs)
	}

	e.sleeps = nil
	e.low = 5000 // every answer of the fake leaves fewer than this
	code, _, errs = e.scan("--repo", scanRepo, "--last", "2")
	if code != 1 || !strings.Contains(errs, "rate limit budget low (") || len(e.sleeps) == 0 {
		t.Errorf("low budget: exit %d, waits %v\n%s", code, e.sleeps, errs)
	}
	for _, d := range e.sleeps {
		if d < 59*time.Minute || d > 61*time.Minute { // the fake resets an hour from now
			t.Errorf("waited %v, not until the reset", d)
		}
	}
}

// The read-only transport refuses anything but reads, whatever asks.
func TestLiveTransportRefusesWrites(t *testing.T) {
	ct := &countingTransport{next: nil}
	for _, m := range []string{"POST", "PATCH", "PUT", "DELETE"} {
		req, _ := newRequest(m, "https://api.github.com/repos/acme/app/check-runs")
		if _, err := ct.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "only reads") {
			t.Errorf("%s let through: %v", m, err)
		}
	}
	if ct.requests.Load() != 0 {
		t.Errorf("refused requests counted")
	}
}

// explain on live changes judges as the server does and publishes nothing.
func TestExplainLiveGitHub(t *testing.T) {
	e := newScanGitHub(t)
	g1, h1 := scanCommit("g1", "alice", scanT0.Add(-time.Hour)), scanCommit("h1", "dave", scanT0.Add(-time.Hour))
	e.fake.AddPR(scanRepo, fakegithub.PR{Number: 7, Title: "Reviewed", Author: fakegithub.User{Login: "alice"}, HeadSHA: g1.SHA,
		Files: []fakegithub.File{{Filename: "pkg/g.go", Patch: "@@ -1 +1 @@\n-a\n+g"}}, Commits: []fakegithub.Commit{g1}})
	e.fake.AddReview(scanRepo, 7, fakegithub.Review{User: fakegithub.User{Login: "bob"}, State: "APPROVED", CommitID: g1.SHA})
	e.fact(7, "pusher", g1.SHA, "alice")
	e.fake.AddPR(scanRepo, fakegithub.PR{Number: 8, Title: "Unreviewed", Author: fakegithub.User{Login: "dave"}, HeadSHA: h1.SHA,
		Files: []fakegithub.File{{Filename: "deploy/prod.tf", Patch: "@@ -1 +1 @@\n-a\n+h"}}, Commits: []fakegithub.Commit{h1}})
	e.fact(8, "pusher", h1.SHA, "dave")

	code, out, errs := e.explain("--repo", scanRepo, "--pr", "7")
	if code != 0 || !strings.HasPrefix(out, "SUCCESS: ") {
		t.Fatalf("explain #7: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = e.explain("--repo", scanRepo, "--pr", "8", "--format", "json")
	var v bot.Verdict
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 1 || v.State != bot.PendingState {
		t.Fatalf("explain #8: exit %d, %v\n%s", code, err, out)
	}
	code, out, _ = e.explain("--repo", scanRepo, "--all-open")
	if code != 1 || !strings.Contains(out, "#7 "+g1.SHA[:7]+" SUCCESS: ") || !strings.Contains(out, "#8 "+h1.SHA[:7]+" PENDING: 2 categories need approvals: infra (1 more), code (1 more)") {
		t.Errorf("--all-open: exit %d\n%s", code, out)
	}
	// A candidate policy: what would requiring two approvals do?
	strict := filepath.Join(e.dir, "strict.yml")
	if err := os.WriteFile(strict, []byte("version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    approvals: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = e.explain("--repo", scanRepo, "--pr", "7", "--policy", strict, "--format", "markdown")
	if code != 1 || !strings.Contains(out, "**Pending** — code needs 1 more independent approval") {
		t.Errorf("candidate policy: exit %d\n%s", code, out)
	}
	if w := writes(e.fake.Requests()); len(w) != 0 {
		t.Errorf("explain wrote to the forge: %v", w)
	}
	if runs := e.fake.CheckRuns(scanRepo, g1.SHA); len(runs) != 0 {
		t.Errorf("explain published: %+v", runs)
	}

	// The server, evaluating the same change with the same store, publishes
	// the verdict explain printed.
	code, out, _ = e.explain("--repo", scanRepo, "--pr", "8", "--format", "json")
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 1 {
		t.Fatal(err)
	}
	ls, err := openLive(context.Background(), e.env(), "", "", "", &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	defer ls.close()
	gh := newPublishingForge(t, e)
	repo := bot.Repo{FullName: scanRepo, Installation: scanInst, DefaultBranch: "main"}
	svc := &bot.Service{Forges: map[bot.ForgeName]bot.Forge{bot.GitHub: gh}, Store: ls.db}
	served, err := svc.Evaluate(context.Background(), bot.ChangeRef{Forge: bot.GitHub, Repo: repo, Number: 8, HeadSHA: h1.SHA}, "main", "")
	if err != nil {
		t.Fatal(err)
	}
	runs := e.fake.CheckRuns(scanRepo, h1.SHA)
	if len(runs) != 1 || runs[0].Title != v.Title || served.State != v.State || served.DiffDigest != v.DiffDigest {
		t.Errorf("server published %+v (%s), explain said %q (%s)", runs, served.State, v.Title, v.State)
	}

	// Errors are exit 2, not a verdict.
	if code, _, errs := e.explain("--repo", scanRepo, "--pr", "99"); code != 2 || !strings.Contains(errs, "99") {
		t.Errorf("unknown PR: exit %d: %s", code, errs)
	}
	if code, _, _ := e.explain("--repo", scanRepo, "--pr", "7", "--all-open"); code != 2 {
		t.Errorf("--pr with --all-open: exit %d", code)
	}
}

func newRequest(method, url string) (*http.Request, error) {
	return http.NewRequest(method, url, nil)
}

// newPublishingForge is the adapter as `serve` wires it: it publishes.
func newPublishingForge(t *testing.T, e *scanEnv) *ghforge.Forge {
	t.Helper()
	f, err := ghforge.New(ghforge.Config{AppID: scanApp, PrivateKey: e.pem, APIURL: e.fake.URL()})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var _ = release.MaxScanCommits

// A pusher writes commit titles and names: an escape sequence must not
// redraw the terminal (making a direct push read as reviewed), and a
// formula must not run in the auditor's spreadsheet.
func TestScanOutputResistsHostileCommitText(t *testing.T) {
	e := newScanGitHub(t)
	evil := scanCommit("X1", "mallory", scanT0.Add(-time.Hour))
	evil.Message = "=HYPERLINK(\"http://evil\")\x1b[1A\x1b[2K\r" + sha7("S1") + "  reviewed \u202e"
	evil.Author.Name = "\x1b]0;owned\x07Mallory"
	evil.Author.Login = ""
	e.fake.SetHistory(scanRepo, "main", []fakegithub.Commit{evil})

	code, out, errs := e.scan("--repo", scanRepo, "--last", "1")
	if code != 1 || !strings.Contains(out, "0 of 1 commits independently reviewed") {
		t.Fatalf("exit %d\n%q\n%s", code, out, errs)
	}
	for _, bad := range []string{"\x1b", "\r", "\u202e", "\x07"} {
		if strings.Contains(out, bad) {
			t.Errorf("table output carries %q:\n%q", bad, out)
		}
	}
	code, out, _ = e.scan("--repo", scanRepo, "--last", "1", "--format", "csv")
	if code != 1 {
		t.Fatalf("csv: exit %d", code)
	}
	row := strings.Split(strings.TrimSpace(out), "\n")[1]
	if !strings.Contains(row, `'=HYPERLINK`) || strings.Contains(row, "\x1b") {
		t.Errorf("csv row: %q", row)
	}
}

// On a terminal a long scan draws a progress bar on stderr; the report on
// stdout is the same as without one.
func TestScanProgressBarOnTerminalOnly(t *testing.T) {
	e := newScanGitHub(t)
	var main []fakegithub.Commit
	for i := range 25 {
		main = append(main, scanCommit(fmt.Sprintf("P%d", i), "mallory", scanT0.Add(-time.Duration(i+1)*time.Hour)))
	}
	e.fake.SetHistory(scanRepo, "main", main)
	_, plain, plainErr := e.scan("--repo", scanRepo, "--last", "25")
	if strings.Contains(plainErr, "scanning") {
		t.Errorf("a bar without a terminal:\n%q", plainErr)
	}
	env := e.env()
	env.isTTY = func(io.Writer) bool { return true }
	var out, errs bytes.Buffer
	err := runScan(context.Background(), env, []string{"--repo", scanRepo, "--last", "25"}, &out, &errs)
	if exitCode(err) != 1 || !strings.Contains(errs.String(), "scanning") || !strings.Contains(errs.String(), "/25)") {
		t.Errorf("exit %d, stderr %q", exitCode(err), errs.String())
	}
	// The only difference is the generation time, which the table does not show.
	if out.String() != plain {
		t.Errorf("the bar changed the report:\n%s\n---\n%s", out.String(), plain)
	}
}

// GitLab's rate-limit headers are read as GitHub's are: a 429 with nothing
// remaining is waited out until RateLimit-Reset and sent again.
// https://docs.gitlab.com/ee/administration/settings/user_and_ip_rate_limits.html#response-headers
func TestBudgetTransportReadsGitLabHeaders(t *testing.T) {
	var calls int
	reset := time.Now().Add(40 * time.Second).Unix()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("RateLimit-Limit", "600")
		w.Header().Set("RateLimit-Reset", strconv.FormatInt(reset, 10))
		if calls == 1 {
			w.Header().Set("RateLimit-Remaining", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Header().Set("RateLimit-Remaining", "599")
		_, _ = w.Write([]byte(`[]`))
	}))
	defer srv.Close()
	var said bytes.Buffer
	var waits []time.Duration
	bt := &budgetTransport{next: http.DefaultTransport, low: 10, out: &said, now: time.Now,
		sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
	resp, err := (&http.Client{Transport: bt}).Get(srv.URL + "/api/v4/projects/1/repository/commits")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || calls != 2 || len(waits) != 1 || waits[0] < 35*time.Second || waits[0] > 42*time.Second ||
		!strings.Contains(said.String(), "rate limit spent: waiting") {
		t.Errorf("status %d after %d calls, waits %v, said %q", resp.StatusCode, calls, waits, said.String())
	}
}

// --all-open: a change that cannot be read is reported and makes the run
// exit 2; the others are still judged.
func TestExplainAllOpenReportsUnreadableChange(t *testing.T) {
	e := newScanGitHub(t)
	for _, n := range []int{1, 2} {
		c := scanCommit(fmt.Sprintf("o%d", n), "alice", scanT0.Add(-time.Hour))
		e.fake.AddPR(scanRepo, fakegithub.PR{Number: n, Title: "Open", Author: fakegithub.User{Login: "alice"}, HeadSHA: c.SHA,
			Files: []fakegithub.File{{Filename: "pkg/o.go", Patch: "@@ -1 +1 @@\n-a\n+o"}}, Commits: []fakegithub.Commit{c}})
		e.fake.AddReview(scanRepo, n, fakegithub.Review{User: fakegithub.User{Login: "bob"}, State: "APPROVED", CommitID: c.SHA})
		e.fact(n, "pusher", c.SHA, "alice")
	}
	e.fake.Fail(fakegithub.Failure{Method: "GET", Path: "/pulls/2/files", Status: 502, Times: 8})
	code, out, _ := e.explain("--repo", scanRepo, "--all-open")
	if code != 2 || !strings.Contains(out, "#1 ") || !strings.Contains(out, "SUCCESS") || !strings.Contains(out, "#2 error: ") {
		t.Errorf("exit %d\n%s", code, out)
	}
}
