package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/internal/fakegithub"
	"github.com/foureyes-dev/foureyes/internal/testfixtures"
	"github.com/foureyes-dev/foureyes/store"
)

// These tests drive the real server (handlers, durable queue on SQLite,
// service, GitHub adapter through go-github and ghinstallation) with the
// real payload examples from testdata/fixtures/github, signed with real
// HMAC, against the fake GitHub; the check run the fake receives is the
// assertion.

const (
	e2eRepo = "Codertocat/Hello-World" // the repository of the fixtures
	e2eBase = "master"
)

// fixture loads a GitHub webhook payload example as a generic document.
func fixture(t testing.TB, name string) map[string]any {
	t.Helper()
	raw := testfixtures.Read(t, "github", name)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

func obj(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m = m[p].(map[string]any)
	}
	return m
}

// prFixture is pull_request.opened.json patched to describe pr.
func prFixture(t testing.TB, action string, pr fakegithub.PR, sender string) map[string]any {
	m := fixture(t, "pull_request.opened.json")
	patchPR(m, pr, sender)
	m["action"] = action
	return m
}

func patchPR(m map[string]any, pr fakegithub.PR, sender string) {
	m["number"] = pr.Number
	m["installation"] = map[string]any{"id": sandboxInstallation}
	p := obj(m, "pull_request")
	p["number"] = pr.Number
	obj(p, "user")["login"] = pr.Author.Login
	obj(p, "head")["sha"] = pr.HeadSHA
	obj(p, "head")["ref"] = pr.HeadRef
	obj(p, "base")["sha"] = pr.BaseSHA
	obj(p, "base")["ref"] = e2eBase
	obj(m, "sender")["login"] = sender
	obj(m, "sender")["type"] = "User"
	if strings.HasSuffix(sender, "[bot]") {
		obj(m, "sender")["type"] = "Bot"
	}
}

// reviewFixture is pull_request_review.submitted.json patched to a review
// of pr (the genuine examples are "commented"; state is set here).
func reviewFixture(t testing.TB, pr fakegithub.PR, id int64, reviewer, state, commit string) map[string]any {
	m := fixture(t, "pull_request_review.submitted.json")
	patchPR(m, pr, reviewer)
	r := obj(m, "review")
	r["id"] = id
	r["state"] = state
	r["commit_id"] = commit
	obj(r, "user")["login"] = reviewer
	return m
}

type e2e struct {
	t  *testing.T
	sb *sandbox
	n  int
}

func newE2E(t *testing.T, env map[string]string) *e2e {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	sb, err := newSandbox(ctx, t.TempDir(), logger, env, withoutReconcileLoop)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	f := sb.Fake
	f.AddRepo(e2eRepo)
	f.SetDefaultBranch(e2eRepo, e2eBase)
	for user, role := range map[string]string{
		"alice": "write", "bob": "write", "carol": "write", "dave": "write", "erin": "write",
		"frank": "maintain", "grace": "write", "rita": "read", "renovate[bot]": "write", "sam": "write", "sue": "write",
	} {
		f.SetPermission(e2eRepo, user, role)
	}
	f.AddTeamMember("Codertocat", "sre", "sam")
	f.AddTeamMember("Codertocat", "sre", "sue")
	return &e2e{t: t, sb: sb}
}

// basePolicy puts the policy file on the base branch (and on its SHA: the
// fake has no git graph).
func (e *e2e) basePolicy(content string) {
	e.sb.Fake.PutFile(e2eRepo, e2eBase, ".github/foureyes.yml", content)
	e.sb.Fake.PutFile(e2eRepo, fakegithub.SHA(e2eBase), ".github/foureyes.yml", content)
}

func ident(login string) fakegithub.Identity {
	return fakegithub.Identity{Name: login, Email: login + "@example.com", Login: login}
}

// openPR adds a pull request by alice and sends "opened" (alice pushed it).
func (e *e2e) openPR(files []string, commits ...fakegithub.Commit) fakegithub.PR {
	e.t.Helper()
	e.n++
	if len(commits) == 0 {
		commits = []fakegithub.Commit{{SHA: fakegithub.SHA(fmt.Sprintf("%s-%d-1", e.t.Name(), e.n)), Message: "change", Author: ident("alice"), Committer: ident("alice")}}
	}
	pr := fakegithub.PR{Number: e.n, Title: "change", Author: fakegithub.User{Login: "alice"}, BaseRef: e2eBase, BaseSHA: fakegithub.SHA(e2eBase), Commits: commits}
	for _, p := range files {
		pr.Files = append(pr.Files, fakegithub.File{Filename: p, Patch: "@@ -1 +1 @@\n-a\n+b " + p})
	}
	e.sb.Fake.AddPR(e2eRepo, pr)
	pr, _ = e.sb.Fake.PR(e2eRepo, pr.Number)
	e.send("pull_request", prFixture(e.t, "opened", pr, "alice"))
	return pr
}

// push adds a commit as the new head and sends "synchronize" from pusher.
func (e *e2e) push(pr fakegithub.PR, pusher string, samePatch bool) fakegithub.PR {
	e.t.Helper()
	c := fakegithub.Commit{SHA: fakegithub.SHA(fmt.Sprintf("%s-%d-%d", e.t.Name(), pr.Number, len(pr.Commits)+1)), Message: "more", Author: ident(pusher), Committer: ident(pusher)}
	e.sb.Fake.UpdatePR(e2eRepo, pr.Number, func(p *fakegithub.PR) {
		p.Commits = append(p.Commits, c)
		p.HeadSHA = c.SHA
		p.PushedBy = fakegithub.User{Login: pusher}
		if !samePatch {
			p.Files[0].Patch += "\n+more"
		}
	})
	pr, _ = e.sb.Fake.PR(e2eRepo, pr.Number)
	e.send("pull_request", prFixture(e.t, "synchronize", pr, pusher))
	return pr
}

func (e *e2e) review(pr fakegithub.PR, reviewer, state string) {
	e.t.Helper()
	id := e.sb.Fake.AddReview(e2eRepo, pr.Number, fakegithub.Review{User: fakegithub.User{Login: reviewer}, State: strings.ToUpper(state), CommitID: pr.HeadSHA})
	e.send("pull_request_review", reviewFixture(e.t, pr, id, reviewer, state, pr.HeadSHA))
}

func (e *e2e) send(event string, payload map[string]any) {
	e.t.Helper()
	status, id, err := e.sb.Send(context.Background(), event, payload)
	if err != nil || status != http.StatusAccepted {
		e.t.Fatalf("delivery %s (%s): status %d, err %v; want 202", id, event, status, err)
	}
}

// check waits for the queue to drain and returns the head's foureyes run.
func (e *e2e) check(pr fakegithub.PR) fakegithub.CheckRun {
	e.t.Helper()
	if err := e.sb.Drain(context.Background(), 30*time.Second); err != nil {
		e.t.Fatal(err)
	}
	var runs []fakegithub.CheckRun
	for _, r := range e.sb.Fake.CheckRuns(e2eRepo, pr.HeadSHA) {
		if r.Name == "foureyes" {
			runs = append(runs, r)
		}
	}
	if len(runs) == 0 {
		e.t.Fatalf("no foureyes check run on %s", pr.HeadSHA[:7])
	}
	return runs[len(runs)-1]
}

func conclusion(r fakegithub.CheckRun) string {
	if r.Status != "completed" {
		return r.Status
	}
	return r.Conclusion
}

func TestGitHubEndToEnd(t *testing.T) {
	const teamPolicy = `version: 1
categories:
  infra:
    paths: ["deploy/**"]
    approvals: 2
    reviewers: { teams: ["Codertocat/sre"] }
  code:
    paths: ["**"]
    approvals: 1
`
	cases := []struct {
		name       string
		policy     string
		run        func(e *e2e) fakegithub.PR
		conclusion string   // success, failure or in_progress
		want       []string // substrings of the title + summary
	}{
		{"independent writer approves", "", func(e *e2e) fakegithub.PR {
			pr := e.openPR([]string{"src/app.go"})
			e.review(pr, "bob", "approved")
			return pr
		}, "success", []string{"@bob"}},
		{"author approves", "", func(e *e2e) fakegithub.PR {
			pr := e.openPR([]string{"src/app.go"})
			e.review(pr, "alice", "approved")
			return pr
		}, "in_progress", []string{"needs 1 more", "author of the change"}},
		{"committer approves", "", func(e *e2e) fakegithub.PR {
			pr := e.openPR([]string{"src/app.go"}, fakegithub.Commit{SHA: fakegithub.SHA("committer-1"), Message: "x", Author: ident("alice"), Committer: ident("carol")})
			e.review(pr, "carol", "approved")
			return pr
		}, "in_progress", []string{"committed to the change"}},
		{"co-author approves", "", func(e *e2e) fakegithub.PR {
			pr := e.openPR([]string{"src/app.go"}, fakegithub.Commit{SHA: fakegithub.SHA("coauthor-1"), Author: ident("alice"), Committer: ident("alice"),
				Message: "Pair on it\n\nCo-authored-by: Dave <4242+dave@users.noreply.github.com>"})
			e.review(pr, "dave", "approved")
			return pr
		}, "in_progress", []string{"co-author"}},
		{"last pusher approves", "", func(e *e2e) fakegithub.PR {
			pr := e.openPR([]string{"src/app.go"})
			// erin pushes a commit authored by alice (a rebase on her behalf).
			c := fakegithub.Commit{SHA: fakegithub.SHA("pushed-by-erin"), Message: "rebase", Author: ident("alice"), Committer: ident("alice")}
			e.sb.Fake.UpdatePR(e2eRepo, pr.Number, func(p *fakegithub.PR) { p.Commits = append(p.Commits, c); p.HeadSHA = c.SHA })
			pr, _ = e.sb.Fake.PR(e2eRepo, pr.Number)
			e.send("pull_request", prFixture(e.t, "synchronize", pr, "erin"))
			e.review(pr, "erin", "approved")
			return pr
		}, "in_progress", []string{"pushed the current head"}},
		{"bot approves", "", func(e *e2e) fakegithub.PR {
			pr := e.openPR([]string{"src/app.go"})
			e.review(pr, "renovate[bot]", "approved")
			return pr
		}, "in_progress", []string{"bot account"}},
		{"read-only user approves", "", func(e *e2e) fakegithub.PR {
			pr := e.openPR([]string{"src/app.go"})
			e.review(pr, "rita", "approved")
			return pr
		}, "in_progress", []string{"permission below write"}},
		{"approval made stale by a push with a new diff", "", func(e *e2e) fakegithub.PR {
			pr := e.openPR([]string{"src/app.go"})
			e.review(pr, "bob", "approved")
			e.check(pr)
			return e.push(pr, "alice", false)
		}, "in_progress", []string{"stale"}},
		{"approval survives a merge of the base branch", "", func(e *e2e) fakegithub.PR {
			pr := e.openPR([]string{"src/app.go"})
			e.review(pr, "bob", "approved")
			e.check(pr)
			return e.push(pr, "alice", true)
		}, "success", []string{"@bob"}},
		{"changes requested by an eligible reviewer", "", func(e *e2e) fakegithub.PR {
			pr := e.openPR([]string{"src/app.go"})
			e.review(pr, "bob", "approved")
			e.review(pr, "frank", "changes_requested")
			return pr
		}, "failure", []string{"changes requested", "@frank"}},
		{"infra needs two approvals from the team: one is not enough", teamPolicy, func(e *e2e) fakegithub.PR {
			pr := e.openPR([]string{"deploy/app.yaml"})
			e.review(pr, "sam", "approved")
			e.review(pr, "bob", "approved")
			return pr
		}, "in_progress", []string{"infra needs 1 more approval from @Codertocat/sre", "not in"}},
		{"infra needs two approvals from the team: two members approve", teamPolicy, func(e *e2e) fakegithub.PR {
			pr := e.openPR([]string{"deploy/app.yaml"})
			e.review(pr, "sam", "approved")
			e.review(pr, "sue", "approved")
			return pr
		}, "success", []string{"@sam", "@sue"}},
		{"a policy weakened on the head branch is ignored", teamPolicy, func(e *e2e) fakegithub.PR {
			pr := e.openPR([]string{"deploy/app.yaml", ".github/foureyes.yml"})
			e.sb.Fake.PutFile(e2eRepo, pr.HeadSHA, ".github/foureyes.yml", "version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    approvals: 0\n")
			e.review(pr, "bob", "approved")
			return pr
		}, "in_progress", []string{"infra needs 2 more"}},
		{"an invalid base policy fails closed naming the key", "version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    aprovals: 1\n", func(e *e2e) fakegithub.PR {
			pr := e.openPR([]string{"src/app.go"})
			e.review(pr, "bob", "approved")
			return pr
		}, "failure", []string{".github/foureyes.yml:5:5", `"aprovals"`, `did you mean "approvals"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newE2E(t, nil)
			if tc.policy != "" {
				e.basePolicy(tc.policy)
			}
			pr := tc.run(e)
			run := e.check(pr)
			if got := conclusion(run); got != tc.conclusion {
				t.Errorf("check run %s, want %s\ntitle: %s\n%s", got, tc.conclusion, run.Title, run.Summary)
			}
			text := run.Title + "\n" + run.Summary
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("check run does not say %q\ntitle: %s\n%s", w, run.Title, run.Summary)
				}
			}
			if run.AppID != e.sb.AppID {
				t.Errorf("check run created by app %d, want foureyes (%d)", run.AppID, e.sb.AppID)
			}
		})
	}
}

func TestGitHubBadSignatureStoresNothing(t *testing.T) {
	e := newE2E(t, nil)
	e.n++
	pr := fakegithub.PR{Number: e.n, Author: fakegithub.User{Login: "alice"}, BaseSHA: fakegithub.SHA(e2eBase),
		Commits: []fakegithub.Commit{{SHA: fakegithub.SHA("unsigned"), Author: ident("alice"), Committer: ident("alice")}}}
	pr.Files = []fakegithub.File{{Filename: "a.go", Patch: "+x"}}
	e.sb.Fake.AddPR(e2eRepo, pr)
	pr, _ = e.sb.Fake.PR(e2eRepo, pr.Number)
	body, _ := json.Marshal(prFixture(t, "opened", pr, "alice"))
	status, err := sendGitHub(context.Background(), e.sb.URL, []byte("not the secret"), "pull_request", "forged-1", body)
	if err != nil || status != http.StatusUnauthorized {
		t.Fatalf("forged delivery: status %d, err %v; want 401", status, err)
	}
	if err := e.sb.Drain(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if runs := e.sb.Fake.CheckRuns(e2eRepo, pr.HeadSHA); len(runs) != 0 {
		t.Fatalf("a forged delivery produced %d check runs", len(runs))
	}
	st, _ := e.sb.srv.db.QueueStats(context.Background(), time.Now())
	if st.Pending+st.Leased+st.Done+st.Dead != 0 {
		t.Fatalf("a forged delivery was stored: %+v", st)
	}
}

func TestGitHubSameDeliveryTwiceIsOneEvaluation(t *testing.T) {
	e := newE2E(t, nil)
	pr := e.openPR([]string{"src/app.go"})
	e.check(pr)
	id := e.sb.Fake.AddReview(e2eRepo, pr.Number, fakegithub.Review{User: fakegithub.User{Login: "bob"}, State: "APPROVED", CommitID: pr.HeadSHA})
	body, _ := json.Marshal(reviewFixture(t, pr, id, "bob", "approved", pr.HeadSHA))
	for i, want := range []int{http.StatusAccepted, http.StatusOK} {
		status, err := sendGitHub(context.Background(), e.sb.URL, e.sb.Secret, "pull_request_review", "same-delivery", body)
		if err != nil || status != want {
			t.Fatalf("delivery %d: status %d, err %v; want %d", i+1, status, err, want)
		}
	}
	run := e.check(pr)
	if conclusion(run) != "success" {
		t.Fatalf("check run %s: %s", conclusion(run), run.Title)
	}
	if n := len(e.sb.Fake.CheckRuns(e2eRepo, pr.HeadSHA)); n != 1 {
		t.Fatalf("%d check runs on the head, want exactly 1", n)
	}
	recs, err := e.sb.srv.db.AuditRecords(context.Background(), storeFilter(e2eRepo))
	if err != nil {
		t.Fatal(err)
	}
	evals, deliveries := 0, 0
	for _, r := range recs {
		switch r.Kind {
		case "evaluation":
			evals++
		case "delivery":
			deliveries++
		}
	}
	// opened + one review: the duplicate is neither stored nor evaluated.
	if evals != 2 || deliveries != 2 {
		t.Fatalf("audit has %d evaluations and %d deliveries, want 2 and 2", evals, deliveries)
	}
}

func storeFilter(repo string) store.AuditFilter { return store.AuditFilter{Repo: repo} }

// TestGitHubForeignCheckRunIsAuditedAndCalledOut replays check_run.created
// (a check run of another App) renamed "foureyes", as a workflow job or
// another App could.
func TestGitHubForeignCheckRunIsAuditedAndCalledOut(t *testing.T) {
	e := newE2E(t, nil)
	pr := e.openPR([]string{"src/app.go"})
	e.check(pr)
	m := fixture(t, "check_run.created.json")
	m["installation"] = map[string]any{"id": sandboxInstallation}
	cr := obj(m, "check_run")
	cr["name"] = "foureyes"
	cr["head_sha"] = pr.HeadSHA
	cr["conclusion"] = "success"
	prs := cr["pull_requests"].([]any)
	p0 := prs[0].(map[string]any)
	p0["number"] = pr.Number
	obj(p0, "head")["sha"] = pr.HeadSHA
	obj(p0, "base")["ref"] = e2eBase
	e.send("check_run", m)
	run := e.check(pr)
	if conclusion(run) == "success" {
		t.Fatalf("a foreign success made foureyes' own check succeed: %s", run.Title)
	}
	if !strings.Contains(run.Summary, "not by foureyes") || !strings.Contains(run.Summary, "octocoders-linter") {
		t.Errorf("foureyes' check does not call out the foreign check:\n%s", run.Summary)
	}
	recs, err := e.sb.srv.db.AuditRecords(context.Background(), storeFilter(e2eRepo))
	if err != nil {
		t.Fatal(err)
	}
	tamper := 0
	for _, r := range recs {
		if r.Kind == "tamper" && r.HeadSHA == pr.HeadSHA {
			tamper++
		}
	}
	if tamper != 1 {
		t.Fatalf("%d tamper records, want 1", tamper)
	}
}
