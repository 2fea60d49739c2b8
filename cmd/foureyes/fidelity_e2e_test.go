package main

import (
	"fmt"
	"testing"

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
