package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/internal/fakegithub"
)

// Issue 11 on GitHub, end to end through the real server and the fake.

const strictInfraPolicy = `version: 1
categories:
  infra:
    paths: ["**"]
    approvals: 1
    reviewers: { teams: ["Codertocat/sre"] }
`

// pushFixture is push.json patched to a push to the base branch of
// before..after whose one commit modifies files.
func (e *e2e) pushFixture(before, after string, files []string) map[string]any {
	m := fixture(e.t, "push.json")
	m["ref"] = "refs/heads/" + e2eBase
	m["before"], m["after"] = before, after
	m["created"], m["deleted"], m["forced"] = false, false, false
	m["installation"] = map[string]any{"id": sandboxInstallation}
	mod := make([]any, len(files))
	for i, f := range files {
		mod[i] = f
	}
	c := map[string]any{
		"id": after, "tree_id": after, "distinct": true, "message": "big change", "timestamp": "2026-12-01T00:00:00Z",
		"url":    "https://github.com/" + e2eRepo + "/commit/" + after,
		"author": map[string]any{"name": "dave", "email": "dave@example.com", "username": "dave"}, "committer": map[string]any{"name": "dave", "email": "dave@example.com", "username": "dave"},
		"added": []any{}, "removed": []any{}, "modified": mod,
	}
	m["commits"] = []any{c}
	m["head_commit"] = c
	obj(m, "sender")["login"] = "dave"
	return m
}

// The attack: a policy file edit hidden in a commit whose file list GitHub
// cut at 3,000 paths. The open pull request must be re-judged by the new
// policy all the same.
func TestGitHubPolicyEditHiddenInCappedPushReevaluates(t *testing.T) {
	e := newE2E(t, nil)
	e.basePolicy("version: 1\n")
	pr := e.openPR([]string{"app/main.go"})
	e.review(pr, "bob", "approved")
	if got := conclusion(e.check(pr)); got != "success" {
		t.Fatalf("before the push: %s", got)
	}
	before, after := fakegithub.SHA(e2eBase), fakegithub.SHA("capped-push")
	// The new base tip carries a stricter policy; the payload lists 3,000
	// other files of the commit and not the policy file.
	e.sb.Fake.PutFile(e2eRepo, before, ".github/foureyes.yml", "version: 1\n")
	e.sb.Fake.PutFile(e2eRepo, after, ".github/foureyes.yml", strictInfraPolicy)
	e.sb.Fake.PutFile(e2eRepo, e2eBase, ".github/foureyes.yml", strictInfraPolicy)
	files := make([]string, 3000)
	for i := range files {
		files[i] = fmt.Sprintf("vendor/f%04d.go", i)
	}
	e.send("push", e.pushFixture(before, after, files))
	if got := e.check(pr); conclusion(got) == "success" {
		t.Fatalf("the policy edit hidden past the 3,000-file cap left the old verdict: %s (%s)", conclusion(got), got.Title)
	}
}

// The honest path: a capped push that did not touch the policy leaves the
// verdict, and judging that costs two policy reads, not a re-evaluation.
func TestGitHubCappedPushWithoutPolicyEditKeepsVerdict(t *testing.T) {
	e := newE2E(t, nil)
	e.basePolicy("version: 1\n")
	pr := e.openPR([]string{"app/main.go"})
	e.review(pr, "bob", "approved")
	first := e.check(pr)
	before, after := fakegithub.SHA(e2eBase), fakegithub.SHA("capped-push")
	e.sb.Fake.PutFile(e2eRepo, after, ".github/foureyes.yml", "version: 1\n")
	files := make([]string, 3000)
	for i := range files {
		files[i] = fmt.Sprintf("vendor/f%04d.go", i)
	}
	e.sb.Fake.ResetRequests()
	e.send("push", e.pushFixture(before, after, files))
	got := e.check(pr)
	if conclusion(got) != "success" || got.ID != first.ID {
		t.Fatalf("after a capped push without a policy edit: %s (run %d, was %d)", conclusion(got), got.ID, first.ID)
	}
	for _, r := range e.sb.Fake.Requests() {
		if r.Method == "GET" && r.Path == "/repos/"+e2eRepo+"/pulls" {
			t.Fatalf("open pull requests were re-judged although the policy did not change: %s %s", r.Method, r.Path)
		}
	}
}

// A pull request from a fork: GitHub's check_run.rerequested and
// check_suite.rerequested for its head carry an empty pull_requests. "Re-run"
// on its foureyes check must still judge it (here: an approval whose
// webhook was lost is picked up).
func TestGitHubRerunOnForkPullRequestFindsItByHead(t *testing.T) {
	for _, event := range []string{"check_run", "check_suite"} {
		t.Run(event, func(t *testing.T) {
			e := newE2E(t, nil)
			e.n++
			head := fakegithub.SHA(t.Name() + "-head")
			pr := fakegithub.PR{Number: e.n, Title: "from a fork", Author: fakegithub.User{Login: "alice"}, HeadRef: "patch-1", HeadSHA: head,
				HeadRepo: "alice/Hello-World", BaseRef: e2eBase, BaseSHA: fakegithub.SHA(e2eBase),
				Commits: []fakegithub.Commit{{SHA: head, Message: "fix", Author: ident("alice"), Committer: ident("alice")}},
				Files:   []fakegithub.File{{Filename: "app/main.go", Patch: "@@ -1 +1 @@\n-a\n+b"}}}
			// foureyes can read the fork, so it learns who pushed there
			// (issue 10: an unreadable fork leaves the pusher unknown).
			e.sb.Fake.AddRepo("alice/Hello-World")
			e.sb.Fake.AddPR(e2eRepo, pr)
			// Another open pull request, not of this head: left alone.
			other := e.openPR([]string{"app/other.go"})
			e.send("pull_request", prFixture(t, "opened", pr, "alice"))
			if got := conclusion(e.check(pr)); got != "in_progress" {
				t.Fatalf("before: %s", got)
			}
			otherRun := e.check(other)
			// bob approves; the review delivery never arrives.
			e.sb.Fake.AddReview(e2eRepo, pr.Number, fakegithub.Review{User: fakegithub.User{Login: "bob"}, State: "APPROVED", CommitID: head})
			m := fixture(t, event+".rerequested.json")
			m["installation"] = map[string]any{"id": sandboxInstallation}
			m["repository"] = fixture(t, "pull_request.opened.json")["repository"]
			obj(m, event)["head_sha"] = head
			obj(m, event)["pull_requests"] = []any{}
			e.send(event, m)
			if got := e.check(pr); conclusion(got) != "success" {
				t.Fatalf("after Re-run: %s (%s)", conclusion(got), got.Title)
			}
			if got := e.check(other); got.ID != otherRun.ID || conclusion(got) != conclusion(otherRun) {
				t.Fatalf("the other pull request changed: %+v", got)
			}
		})
	}
}

// A push GitHub never delivered (more than three tags at once, a lost
// delivery): reconciliation compares the guarded branch's tip with the
// last one judged and queues the push, which the guard flags as
// "reconciled" — check, issue, audit record and metric.
func TestGitHubReconcileFindsUndeliveredPush(t *testing.T) {
	e := newE2E(t, nil)
	ctx := context.Background()
	a0, a1, a2 := fakegithub.SHA("a0"), fakegithub.SHA("a1"), fakegithub.SHA("a2")
	// A delivered push to master, reviewed (no new commits to judge): its
	// tip is the last one foureyes judged.
	e.sb.Fake.SetCompare(e2eRepo, a0, a1, nil)
	m := e.pushFixture(a0, a1, nil)
	m["commits"], m["head_commit"] = []any{}, nil
	e.send("push", m)
	if err := e.sb.Drain(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	e.sb.Fake.SetBranch(e2eRepo, e2eBase, a1)
	e.sb.Fake.SetBranch(e2eRepo, "feature", fakegithub.SHA("unguarded"))
	if n, err := e.sb.srv.reconciler.Run(ctx); err != nil || n != 0 {
		t.Fatalf("nothing moved, yet reconcile queued %d (%v)", n, err)
	}

	// mallory pushes a commit straight to master; GitHub sends nothing.
	direct := fakegithub.Commit{SHA: a2, Message: "direct", Author: ident("mallory"), Committer: ident("mallory")}
	e.sb.Fake.SetCompare(e2eRepo, a1, a2, []fakegithub.Commit{direct})
	e.sb.Fake.SetBranch(e2eRepo, e2eBase, a2)
	n, err := e.sb.srv.reconciler.Run(ctx)
	if err != nil || n != 1 {
		t.Fatalf("reconcile queued %d pushes (%v), want 1", n, err)
	}
	if err := e.sb.Drain(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	var run fakegithub.CheckRun
	for _, r := range e.sb.Fake.CheckRuns(e2eRepo, a2) {
		if r.Name == "foureyes" {
			run = r
		}
	}
	if run.Conclusion != "failure" || !strings.Contains(run.Title, "reconciled") || !strings.Contains(run.Summary, "direct-push") {
		t.Fatalf("check run on the undelivered push: %+v", run)
	}
	is := e.sb.Fake.Issues(e2eRepo)
	if len(is) != 1 || !strings.Contains(is[0].Body, "reconciled") {
		t.Fatalf("issues: %+v", is)
	}
	recs, err := e.sb.srv.db.AuditRecords(ctx, storeFilter(e2eRepo))
	if err != nil {
		t.Fatal(err)
	}
	flagged := false
	for _, r := range recs {
		if r.Kind == "flag" && r.HeadSHA == a2 && strings.Contains(string(r.Data), `"reconciled":true`) {
			flagged = true
		}
	}
	if !flagged {
		t.Fatal("no flag audit record naming the push reconciled")
	}
	if body := scrape(t, e.sb.URL); !strings.Contains(body, `foureyes_reconciled_pushes_total{forge="github"} 1`) {
		t.Fatalf("metrics do not count the reconciled push:\n%s", body)
	}
	// Judged now: the next run finds nothing.
	if n, err := e.sb.srv.reconciler.Run(ctx); err != nil || n != 0 {
		t.Fatalf("second run queued %d (%v)", n, err)
	}
}

// scrape reads the server's /metrics page.
func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Installing foureyes on a repository judges its open pull requests at
// once (queued, one delivery each), not after their next push.
func TestGitHubInstallationJudgesOpenPullRequests(t *testing.T) {
	for _, fx := range []string{"installation_repositories.added.json", "installation.created.json"} {
		t.Run(fx, func(t *testing.T) {
			e := newE2E(t, nil)
			var open []fakegithub.PR
			for i := 1; i <= 3; i++ {
				head := fakegithub.SHA(fmt.Sprintf("%s-%d", t.Name(), i))
				pr := fakegithub.PR{Number: i, Title: "before install", Author: fakegithub.User{Login: "alice"}, HeadRef: fmt.Sprintf("b%d", i), HeadSHA: head,
					BaseRef: e2eBase, BaseSHA: fakegithub.SHA(e2eBase),
					Commits: []fakegithub.Commit{{SHA: head, Message: "x", Author: ident("alice"), Committer: ident("alice")}},
					Files:   []fakegithub.File{{Filename: "app/x.go", Patch: "@@ -1 +1 @@\n-a\n+b"}}}
				if i == 3 {
					pr.State = "closed"
				}
				e.sb.Fake.AddPR(e2eRepo, pr)
				open = append(open, pr)
			}
			e.sb.Fake.AddReview(e2eRepo, 1, fakegithub.Review{User: fakegithub.User{Login: "bob"}, State: "APPROVED", CommitID: open[0].HeadSHA})
			m := fixture(t, fx)
			obj(m, "installation")["id"] = sandboxInstallation
			list := []any{map[string]any{"id": 1296269, "node_id": "R_1", "name": "Hello-World", "full_name": e2eRepo, "private": false}}
			if _, ok := m["repositories_added"]; ok {
				m["repositories_added"] = list
			} else {
				m["repositories"] = list
			}
			e.send(strings.SplitN(fx, ".", 2)[0], m)
			if err := e.sb.Drain(context.Background(), 30*time.Second); err != nil {
				t.Fatal(err)
			}
			for _, pr := range open[:2] {
				if runs := e.sb.Fake.CheckRuns(e2eRepo, pr.HeadSHA); len(runs) == 0 {
					t.Errorf("open pull request #%d has no foureyes check after the installation", pr.Number)
				}
			}
			if runs := e.sb.Fake.CheckRuns(e2eRepo, open[2].HeadSHA); len(runs) != 0 {
				t.Errorf("the closed pull request was judged: %+v", runs)
			}
		})
	}
}

// Issues turned off (410 Gone on create): the flag is permanent work done,
// not retried forever; the failing check says no issue could be opened,
// and the audit record and metric are there all the same.
func TestGitHubIssuesDisabledStillFlags(t *testing.T) {
	e := newE2E(t, nil)
	ctx := context.Background()
	e.sb.Fake.SetIssuesDisabled(e2eRepo, true)
	before, after := fakegithub.SHA("b0"), fakegithub.SHA("direct-1")
	e.send("push", e.pushFixture(before, after, []string{"app/main.go"}))
	if err := e.sb.Drain(ctx, 10*time.Second); err != nil {
		t.Fatalf("the push is retried although issues are disabled for good: %v", err)
	}
	var run fakegithub.CheckRun
	for _, r := range e.sb.Fake.CheckRuns(e2eRepo, after) {
		if r.Name == "foureyes" {
			run = r
		}
	}
	if run.Conclusion != "failure" || !strings.Contains(run.Summary, "no issue could be opened") {
		t.Fatalf("check run: %+v", run)
	}
	posts := 0
	for _, r := range e.sb.Fake.Requests() {
		if r.Method == http.MethodPost && r.Path == "/repos/"+e2eRepo+"/issues" {
			posts++
		}
	}
	if posts != 1 {
		t.Fatalf("%d attempts to open the issue, want 1", posts)
	}
	recs, err := e.sb.srv.db.AuditRecords(ctx, storeFilter(e2eRepo))
	if err != nil {
		t.Fatal(err)
	}
	flagged := false
	for _, r := range recs {
		flagged = flagged || (r.Kind == "flag" && r.HeadSHA == after)
	}
	if !flagged {
		t.Fatal("no flag audit record")
	}
	if body := scrape(t, e.sb.URL); !strings.Contains(body, `foureyes_unreviewed_commits_total{forge="github",reason="direct-push"} 1`) {
		t.Fatalf("metric missing:\n%s", body)
	}
}

// The org's .github repository holds a stricter policy, but it is not in
// the App's installation: GitHub answers 404 as for a missing file. The
// check must say where foureyes looked and that .github is out of reach.
func TestGitHubOrgPolicyOutsideInstallationIsCalledOut(t *testing.T) {
	e := newE2E(t, nil)
	const org = "Codertocat/.github"
	e.sb.Fake.AddRepo(org)
	e.sb.Fake.PutFile(org, "main", "foureyes.yml", strictInfraPolicy)
	e.sb.Fake.HideFromInstallation(org)
	pr := e.openPR([]string{"app/main.go"})
	e.review(pr, "bob", "approved")
	run := e.check(pr)
	if !strings.Contains(run.Summary, "the installation cannot read Codertocat/.github") || !strings.Contains(run.Summary, ".github/foureyes.yml") {
		t.Fatalf("the check does not say the org policy repository is out of reach:\n%s", run.Summary)
	}
}
