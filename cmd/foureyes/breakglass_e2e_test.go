package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
	"github.com/foureyes-dev/foureyes/release"
)

const breakGlassPolicy = `version: 1
release:
  alert:
    labels: ["foureyes", "incident"]
break_glass:
  approvers: { teams: ["Codertocat/sre"], users: ["alice", "carol", "rita", "renovate[bot]"] }
  required: 2
`

// commentFixture is issue_comment.created.with-installation.json turned
// into a comment on pull request pr: GitHub marks an issue that is a pull
// request with an "issue.pull_request" object (REST "Issues" docs: "pull
// request ... identified by the pull_request key"); the example payload is
// a plain issue, so that key is added here.
func commentFixture(t testing.TB, pr fakegithub.PR, id int64, login, body string, at time.Time) map[string]any {
	m := fixture(t, "issue_comment.created.with-installation.json")
	m["installation"] = map[string]any{"id": sandboxInstallation}
	is := obj(m, "issue")
	is["number"] = pr.Number
	is["pull_request"] = map[string]any{
		"url":      fmt.Sprintf("https://api.github.com/repos/%s/pulls/%d", e2eRepo, pr.Number),
		"html_url": fmt.Sprintf("https://github.com/%s/pull/%d", e2eRepo, pr.Number),
	}
	c := obj(m, "comment")
	c["id"] = id
	c["body"] = body
	c["created_at"] = at.UTC().Format(time.RFC3339)
	typ := "User"
	if strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	obj(c, "user")["login"] = login
	obj(c, "user")["type"] = typ
	obj(m, "sender")["login"] = login
	obj(m, "sender")["type"] = typ
	return m
}

func (e *e2e) comment(pr fakegithub.PR, id int64, login, body string) map[string]any {
	e.t.Helper()
	// Stamped now, as GitHub stamps a comment when it is written: after
	// the head it is about was pushed.
	m := commentFixture(e.t, pr, id, login, body, time.Now())
	e.send("issue_comment", m)
	return m
}

func (e *e2e) auditKinds(kind string) []audit.Record {
	e.t.Helper()
	recs, err := e.sb.srv.db.AuditRecords(context.Background(), storeFilter(e2eRepo))
	if err != nil {
		e.t.Fatal(err)
	}
	var out []audit.Record
	for _, r := range recs {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

func (e *e2e) metric(line string) bool { e.t.Helper(); return hasMetric(e.t, e.sb.URL, line) }

// hasMetric reports whether the server's /metrics holds line exactly.
func hasMetric(t *testing.T, base, line string) bool {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return slices.Contains(strings.Split(string(b), "\n"), line)
}

func TestGitHubBreakGlass(t *testing.T) {
	e := newE2E(t, nil)
	e.basePolicy(breakGlassPolicy)
	// alice authors, carol committed the commit: neither may hold a key.
	pr := e.openPR([]string{"src/app.go"}, fakegithub.Commit{SHA: fakegithub.SHA("bg-1"), Message: "hotfix", Author: ident("alice"), Committer: ident("carol")})
	if run := e.check(pr); conclusion(run) != "in_progress" {
		t.Fatalf("before any comment: %s %q", conclusion(run), run.Title)
	}

	// One approver alone does nothing.
	opening := e.comment(pr, 1, "sam", "Payments are down.\n/foureyes break-glass payments outage INC-7")
	run := e.check(pr)
	if conclusion(run) != "in_progress" || strings.HasPrefix(run.Title, "break-glass") || !strings.Contains(run.Summary, "1 of 2 agreed") {
		t.Fatalf("one key: %s %q\n%s", conclusion(run), run.Title, run.Summary)
	}

	// The author, a committer, a bot and a reader cannot take part; each
	// is told why.
	for i, who := range []string{"alice", "carol", "renovate[bot]", "rita"} {
		e.comment(pr, int64(10+i), who, "/foureyes break-glass confirm")
	}
	run = e.check(pr)
	if conclusion(run) != "in_progress" {
		t.Fatalf("ineligible people made the override: %q", run.Title)
	}
	replies := e.sb.Fake.Comments(e2eRepo, pr.Number)
	for _, want := range []string{"@alice, your break-glass comment did not count: author of the change", "@carol, your break-glass comment did not count: committed",
		"@renovate[bot], your break-glass comment did not count: bot account", "@rita, your break-glass comment did not count: permission read"} {
		if !slices.ContainsFunc(replies, func(c fakegithub.Comment) bool { return strings.HasPrefix(c.Body, want) }) {
			t.Errorf("no reply %q among %d replies", want, len(replies))
		}
	}
	if len(replies) != 4 {
		t.Errorf("%d replies, want 4 (eligible people get none)", len(replies))
	}

	// A redelivered opening comment (a new delivery ID, the same comment)
	// counts once: sam is still one key.
	e.send("issue_comment", opening)
	if run = e.check(pr); conclusion(run) != "in_progress" {
		t.Fatalf("a redelivered comment made a second key: %q", run.Title)
	}

	// Two eligible people succeed.
	confirm := e.comment(pr, 20, "sue", "/foureyes break-glass confirm")
	run = e.check(pr)
	if conclusion(run) != "success" || run.Title != "break-glass: @sam and @sue overrode review — payments outage INC-7" {
		t.Fatalf("two keys: %s %q", conclusion(run), run.Title)
	}
	if !strings.Contains(run.Summary, "uncategorized: 1 more approval of 1") {
		t.Errorf("summary does not list what was missing:\n%s", run.Summary)
	}
	e.send("issue_comment", confirm) // redelivered: no second record, issue or count
	e.check(pr)

	ov := e.auditKinds(audit.KindOverride)
	if len(ov) != 1 || ov[0].HeadSHA != pr.HeadSHA || ov[0].Change != pr.Number {
		t.Fatalf("override records: %+v", ov)
	}
	var data struct {
		By      []string `json:"by"`
		Reason  string   `json:"reason"`
		Missing []string `json:"missing"`
		Commits []string `json:"commits"`
		At      time.Time
	}
	if err := json.Unmarshal(ov[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(data.By, []string{"sam", "sue"}) || data.Reason != "payments outage INC-7" || len(data.Missing) != 1 ||
		!slices.Equal(data.Commits, []string{pr.HeadSHA}) || data.At.IsZero() || time.Since(data.At) > time.Minute {
		t.Errorf("override record data: %+v", data)
	}
	if !e.metric(`foureyes_overrides_total{forge="github"} 1`) {
		t.Error("foureyes_overrides_total{forge=\"github\"} is not 1")
	}
	var judged bool
	for _, r := range e.auditKinds(audit.KindEvaluation) {
		if r.HeadSHA == pr.HeadSHA && r.Verdict == "success" && strings.Contains(string(r.Data), `"applied":true`) && strings.Contains(string(r.Data), `"agreed":["sam","sue"]`) {
			judged = true
		}
	}
	if !judged {
		t.Error("no evaluation record carries the applied break-glass judgement")
	}
	issues := e.sb.Fake.Issues(e2eRepo)
	if len(issues) != 1 {
		t.Fatalf("%d issues, want 1 post-incident issue", len(issues))
	}
	is := issues[0]
	if !slices.Equal(is.Labels, []string{"foureyes", "incident", "break-glass"}) || !strings.Contains(is.Title, "@sam and @sue") ||
		!strings.Contains(is.Body, pr.HeadSHA[:7]) || !strings.Contains(is.Body, "payments outage INC-7") || !strings.Contains(is.Body, "hotfix") {
		t.Errorf("issue %q %v:\n%s", is.Title, is.Labels, is.Body)
	}

	// A push after the override ends it.
	pr = e.push(pr, "alice", false)
	if run = e.check(pr); conclusion(run) != "in_progress" || strings.HasPrefix(run.Title, "break-glass") {
		t.Fatalf("after a push: %s %q", conclusion(run), run.Title)
	}
	if n := len(e.auditKinds(audit.KindOverride)); n != 1 {
		t.Errorf("%d override records after the push, want 1", n)
	}
}

// A later normal approval makes the override unnecessary.
func TestGitHubBreakGlassNotNeededOnceApproved(t *testing.T) {
	e := newE2E(t, nil)
	e.basePolicy(breakGlassPolicy)
	pr := e.openPR([]string{"src/app.go"})
	e.review(pr, "bob", "approved")
	e.comment(pr, 1, "sam", "/foureyes break-glass db down")
	e.comment(pr, 2, "sue", "/foureyes break-glass confirm")
	run := e.check(pr)
	if conclusion(run) != "success" || strings.HasPrefix(run.Title, "break-glass") || !strings.Contains(run.Summary, "no override was needed") {
		t.Fatalf("%s %q\n%s", conclusion(run), run.Title, run.Summary)
	}
	if n := len(e.auditKinds(audit.KindOverride)); n != 0 || len(e.sb.Fake.Issues(e2eRepo)) != 0 {
		t.Errorf("an unneeded override left %d records and %d issues", n, len(e.sb.Fake.Issues(e2eRepo)))
	}
}

// The race on GitHub, whose comment event names no head: sam writes the
// opening comment about the head he saw, alice pushes another before
// foureyes processes it. The comment must not count for code sam never
// saw, and he is told to comment again.
func TestGitHubBreakGlassCommentOlderThanTheHead(t *testing.T) {
	e := newE2E(t, nil)
	e.basePolicy(breakGlassPolicy)
	pr := e.openPR([]string{"src/app.go"})
	e.check(pr)
	written := time.Now().Add(-30 * time.Second)
	pr = e.push(pr, "alice", false)
	e.check(pr)
	e.send("issue_comment", commentFixture(t, pr, 1, "sam", "/foureyes break-glass outage", written))
	e.comment(pr, 2, "sue", "/foureyes break-glass confirm")
	run := e.check(pr)
	if conclusion(run) == "success" {
		t.Fatalf("a comment written before the head was pushed made a key: %q", run.Title)
	}
	replies := e.sb.Fake.Comments(e2eRepo, pr.Number)
	if len(replies) != 2 || !strings.Contains(replies[0].Body, "@sam") || !strings.Contains(replies[0].Body, "written before head "+pr.HeadSHA[:7]) ||
		!strings.Contains(replies[1].Body, "@sue") || !strings.Contains(replies[1].Body, "no override was open") {
		t.Fatalf("replies: %+v", replies)
	}
	// Commenting again, now, counts.
	e.comment(pr, 3, "sam", "/foureyes break-glass outage")
	e.comment(pr, 4, "sue", "/foureyes break-glass confirm")
	if run := e.check(pr); conclusion(run) != "success" {
		t.Fatalf("fresh comments: %s %q", conclusion(run), run.Title)
	}
}

// A queue that is behind must not cost an honest key: sam and sue write
// their comments right after the pull request was opened, and foureyes
// gets to them seconds later. The head was known from the opened delivery's
// receipt, before the comments were written, so both count.
func TestGitHubBreakGlassCountsWhenTheQueueIsBehind(t *testing.T) {
	e := newE2E(t, nil)
	e.basePolicy(breakGlassPolicy)
	pr := e.openPR([]string{"src/app.go"})
	written := time.Now()
	e.check(pr)
	time.Sleep(2500 * time.Millisecond) // the worker reaches the comments well after they were written
	e.send("issue_comment", commentFixture(t, pr, 1, "sam", "/foureyes break-glass payments outage", written))
	e.send("issue_comment", commentFixture(t, pr, 2, "sue", "/foureyes break-glass confirm", written))
	if run := e.check(pr); conclusion(run) != "success" || !strings.HasPrefix(run.Title, "break-glass: @sam and @sue") {
		t.Fatalf("override after a queue delay: %s %q", conclusion(run), run.Title)
	}
}

// The override reaches the release: the pull request is merged on it and
// tagged; the tag report (push.ghes-35.tag-created.json, retargeted at the
// new tag) lists the commit as `override` with both names and counts it.
func TestGitHubBreakGlassInTagReport(t *testing.T) {
	e := newE2E(t, nil)
	e.basePolicy(breakGlassPolicy)
	pr := e.openPR([]string{"src/app.go"})
	e.comment(pr, 1, "sam", "/foureyes break-glass payments outage")
	e.comment(pr, 2, "sue", "/foureyes break-glass confirm")
	if run := e.check(pr); conclusion(run) != "success" {
		t.Fatalf("override: %s %q", conclusion(run), run.Title)
	}
	f := e.sb.Fake
	f.UpdatePR(e2eRepo, pr.Number, func(p *fakegithub.PR) {
		p.State, p.Merged, p.MergedAt = "closed", true, time.Now().Add(time.Second)
	})
	f.SetCommitPulls(e2eRepo, pr.HeadSHA, pr.Number)
	prev := fakegithub.SHA("v1.0.0")
	f.AddTag(e2eRepo, "v1.0.0", prev)
	f.AddTag(e2eRepo, "v1.1.0", pr.HeadSHA)
	f.SetCompare(e2eRepo, prev, pr.HeadSHA, pr.Commits)
	f.PutFile(e2eRepo, "v1.1.0", ".github/foureyes.yml", breakGlassPolicy)

	m := fixture(t, "push.ghes-35.tag-created.json")
	m["ref"], m["after"] = "refs/tags/v1.1.0", pr.HeadSHA
	m["installation"] = map[string]any{"id": sandboxInstallation}
	obj(m, "repository")["full_name"] = e2eRepo
	e.send("push", m)
	if err := e.sb.Drain(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	rep, err := release.Load(context.Background(), e.sb.srv.db, "github", e2eRepo, "v1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Overridden != 1 || rep.Summary.Unreviewed != 0 || len(rep.Commits) != 1 {
		t.Fatalf("summary %+v, %d commits", rep.Summary, len(rep.Commits))
	}
	if c := rep.Commits[0]; c.Reason != release.Override || !slices.Equal(c.OverriddenBy, []string{"sam", "sue"}) {
		t.Errorf("commit %+v", c)
	}
}

// Opening the post-incident issue fails once (GitHub answers 502, which is
// not retried blindly: the issue may exist). The delivery is retried; the
// override still ends with one issue, one audit record and one count.
func TestGitHubBreakGlassIssueFailureIsRetriedOnce(t *testing.T) {
	e := newE2E(t, nil)
	e.basePolicy(breakGlassPolicy)
	pr := e.openPR([]string{"src/app.go"})
	e.comment(pr, 1, "sam", "/foureyes break-glass outage")
	e.check(pr)
	e.sb.Fake.Fail(fakegithub.Failure{Method: http.MethodPost, Path: "/repos/" + e2eRepo + "/issues", Status: http.StatusBadGateway})
	e.comment(pr, 2, "sue", "/foureyes break-glass confirm")
	if run := e.check(pr); conclusion(run) != "success" {
		t.Fatalf("%s %q", conclusion(run), run.Title)
	}
	failed := 0
	for _, r := range e.sb.Fake.Requests() {
		if r.Method == http.MethodPost && r.Path == "/repos/"+e2eRepo+"/issues" && r.Status == http.StatusBadGateway {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d failed issue requests, want the 1 injected", failed)
	}
	if n := len(e.sb.Fake.Issues(e2eRepo)); n != 1 {
		t.Fatalf("%d issues, want 1", n)
	}
	if n := len(e.auditKinds(audit.KindOverride)); n != 1 {
		t.Errorf("%d override records, want 1", n)
	}
	if !e.metric(`foureyes_overrides_total{forge="github"} 1`) {
		t.Error("override not counted exactly once")
	}
}

// An invalid policy is never overridden, and the commenter is told why.
func TestGitHubBreakGlassInvalidPolicy(t *testing.T) {
	e := newE2E(t, nil)
	e.basePolicy("version: 1\nbreak_glass:\n  approvers: { users: [sam, sue] }\n  required: 1\n")
	pr := e.openPR([]string{"src/app.go"})
	e.comment(pr, 1, "sam", "/foureyes break-glass outage")
	e.comment(pr, 2, "sue", "/foureyes break-glass confirm")
	if run := e.check(pr); conclusion(run) != "failure" {
		t.Fatalf("%s %q", conclusion(run), run.Title)
	}
	replies := e.sb.Fake.Comments(e2eRepo, pr.Number)
	if len(replies) != 2 || !strings.Contains(replies[0].Body, "cannot be judged: invalid policy file") {
		t.Fatalf("replies: %+v", replies)
	}
	if n := len(e.auditKinds(audit.KindOverride)); n != 0 {
		t.Errorf("%d override records", n)
	}
}
