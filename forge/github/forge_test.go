package github_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/forge/github"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
	"github.com/foureyes-dev/foureyes/policies"
	"github.com/foureyes-dev/foureyes/store"
)

func TestPolicyLookupOrderNeverReadsHead(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.fake.AddRepo(repo.FullName)
	// The head carries a weakened policy at the first location; the base
	// has one only at the second.
	e.fake.PutFile(repo.FullName, headSHA, ".github/foureyes.yml", "version: 1 # weakened")
	e.fake.PutFile(repo.FullName, baseSHA, ".foureyes.yml", "version: 1 # base")
	e.fake.PutFile(repo.FullName, baseSHA, ".gitlab/foureyes.yml", "version: 1 # gitlab")

	pf, err := e.forge.Policy(e.ctx, repo, baseSHA)
	if err != nil {
		t.Fatal(err)
	}
	if !pf.Found || string(pf.Data) != "version: 1 # base" || pf.Source != "acme/app@"+baseSHA+":.foureyes.yml" {
		t.Fatalf("policy = %+v %q", pf, pf.Data)
	}
	for _, r := range e.fake.Requests() {
		if strings.Contains(r.Query, headSHA) {
			t.Fatalf("the head was read: %v", e.requests())
		}
	}
	// By SHA the answer (404s included) is immutable: no second request.
	e.fake.ResetRequests()
	if _, err := e.forge.Policy(e.ctx, repo, baseSHA); err != nil {
		t.Fatal(err)
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Fatalf("cached policy cost %d requests: %v", n, e.requests())
	}
}

func TestPolicyThirdLocationThenOrgThenNone(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.fake.AddRepo(repo.FullName)
	e.fake.PutFile(repo.FullName, "main", ".gitlab/foureyes.yml", "gitlab")
	pf, err := e.forge.Policy(e.ctx, repo, "main")
	if err != nil || !pf.Found || string(pf.Data) != "gitlab" {
		t.Fatalf("policy = %+v, %v", pf, err)
	}

	// Removing the file is a new commit on main: the branch moves.
	e.fake.SetBranch(repo.FullName, "main", fakegithub.SHA("main without a policy"))
	pf, err = e.forge.Policy(e.ctx, repo, "main")
	if err != nil || pf.Found {
		t.Fatalf("no org repo: policy = %+v, %v", pf, err)
	}

	e.fake.AddRepo("acme/.github")
	e.fake.PutFile("acme/.github", "main", "foureyes.yml", "org")
	e.clock.Advance(2 * time.Minute) // the org answer is cached for PermissionTTL
	pf, err = e.forge.Policy(e.ctx, repo, "main")
	if err != nil || !pf.Found || string(pf.Data) != "org" || pf.Source != "acme/.github@default:foureyes.yml" {
		t.Fatalf("org policy = %+v, %v", pf, err)
	}
	if got := e.requests(); !slices.Contains(got, "GET /repos/acme/.github/contents/foureyes.yml 200") {
		t.Fatalf("org lookup missing: %v", got)
	}
}

func TestPolicyErrorIsReturned(t *testing.T) {
	e := newEnv(t, envOpt{maxAttempts: 2})
	e.fake.AddRepo(repo.FullName)
	e.fake.Fail(fakegithub.Failure{Path: "/contents/.foureyes.yml", Status: 500, Times: 5})
	if _, err := e.forge.Policy(e.ctx, repo, baseSHA); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("err = %v, want a 500 after retries", err)
	}
}

func TestPolicyOnBranchIsConditional(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.fake.AddRepo(repo.FullName)
	e.fake.PutFile(repo.FullName, "main", ".github/foureyes.yml", "v1")
	for range 2 {
		if pf, err := e.forge.Policy(e.ctx, repo, "main"); err != nil || string(pf.Data) != "v1" {
			t.Fatalf("policy = %+v, %v", pf, err)
		}
	}
	got := e.requests()
	if last := got[len(got)-1]; !strings.HasSuffix(last, " 304") {
		t.Fatalf("second read of a branch was not a 304: %v", got)
	}
}

func TestFilesPaginationAndDigests(t *testing.T) {
	e := newEnv(t, envOpt{})
	var files []fakegithub.File
	for i := range 249 {
		files = append(files, fakegithub.File{Filename: fmt.Sprintf("f%03d.go", i), Patch: fmt.Sprintf("@@ +%d @@", i), SHA: fmt.Sprintf("blob%03d", i)})
	}
	files = append(files, fakegithub.File{Filename: "logo.png", Status: "added", SHA: "abc123"})
	e.fake.AddPR(repo.FullName, fakegithub.PR{Number: 1, Author: user("alice"), BaseSHA: baseSHA, Files: files,
		Commits: []fakegithub.Commit{{SHA: headSHA, Author: ident("A", "a@x", "alice"), Committer: ident("A", "a@x", "alice")}}})
	ch := mustChange(t, e, prRef(1, headSHA))
	if len(ch.Files) != 250 {
		t.Fatalf("files = %d", len(ch.Files))
	}
	if n := e.countPath("GET", "/pulls/1/files"); n != 3 {
		t.Fatalf("file pages = %d, want 3: %v", n, e.requests())
	}
	// The patch and the blob: a patch shows neither binaries nor modes.
	sum := sha256.Sum256([]byte("@@ +0 @@\x00blob:blob000"))
	if ch.Files[0].PatchDigest != hex.EncodeToString(sum[:]) {
		t.Fatalf("digest of f000.go = %s", ch.Files[0].PatchDigest)
	}
	bin := sha256.Sum256([]byte("added:abc123"))
	if ch.Files[249].Path != "logo.png" || ch.Files[249].PatchDigest != hex.EncodeToString(bin[:]) {
		t.Fatalf("binary file = %+v", ch.Files[249])
	}
	if ch.EvalError != "" {
		t.Fatalf("EvalError = %q", ch.EvalError)
	}
}

func TestMoreThan250CommitsFailsClosed(t *testing.T) {
	e := newEnv(t, envOpt{})
	var commits []fakegithub.Commit
	for i := range 300 {
		commits = append(commits, fakegithub.Commit{SHA: fakegithub.SHA(fmt.Sprint("c", i)), Author: ident("A", "a@x", "alice"), Committer: ident("A", "a@x", "alice")})
	}
	e.fake.AddPR(repo.FullName, fakegithub.PR{Number: 1, Author: user("alice"), Files: []fakegithub.File{{Filename: "a"}}, Commits: commits})
	head := commits[299].SHA
	ch := mustChange(t, e, prRef(1, head))
	if !strings.Contains(ch.EvalError, "more than 250 commits") || !strings.Contains(ch.EvalError, "cannot verify") {
		t.Fatalf("EvalError = %q", ch.EvalError)
	}
	if ch.Ref.HeadSHA != head {
		t.Fatalf("head = %s (the 250th listed commit is not the head)", ch.Ref.HeadSHA)
	}
}

func TestMoreThan250CommitsFromReviewHint(t *testing.T) {
	// A review payload carries no commit count: at the limit the adapter
	// must ask the pull request rather than assume the list is complete.
	e := newEnv(t, envOpt{})
	var commits []fakegithub.Commit
	for i := range 260 {
		commits = append(commits, fakegithub.Commit{SHA: fakegithub.SHA(fmt.Sprint("c", i))})
	}
	head := commits[259].SHA
	e.fake.AddPR(repo.FullName, fakegithub.PR{Number: 1, Author: user("alice"), Commits: commits})
	p := prPayload(t, "pull_request_review.submitted.json", head, baseSHA, -1, -1)
	if _, err := e.forge.Decode("pull_request_review", encode(t, p)); err != nil {
		t.Fatal(err)
	}
	ch := mustChange(t, e, prRef(1, head))
	if !strings.Contains(ch.EvalError, "more than 250 commits (260)") {
		t.Fatalf("EvalError = %q", ch.EvalError)
	}
}

func TestCoAuthorsAndIdentities(t *testing.T) {
	e := newEnv(t, envOpt{})
	msg := "Add feature\n\nSome text.\n\nCo-authored-by: Bob <123+bob@users.noreply.github.com>\n" +
		"co-authored-by: Carol <carol@users.noreply.github.com>\n" +
		"CO-AUTHORED-BY: Dave Linked <dave@corp.example>\n" +
		"Co-authored-by: Alice Again <alice@example.com>\n" +
		"Co-authored-by: Mallory <mallory@elsewhere.example>\n"
	e.fake.AddPR(repo.FullName, fakegithub.PR{Number: 1, Author: user("alice"), Files: []fakegithub.File{{Filename: "a"}},
		Commits: []fakegithub.Commit{
			{SHA: fakegithub.SHA("c1"), Message: "by dave", Author: ident("Dave", "dave@corp.example", "dave"), Committer: ident("GitHub", "noreply@github.com", "web-flow")},
			{SHA: fakegithub.SHA("c2"), Message: "unlinked", Author: ident("Eve", "eve@laptop.local", ""), Committer: ident("Eve", "eve@laptop.local", "")},
			{SHA: headSHA, Message: msg, Author: ident("Alice", "alice@example.com", "alice"), Committer: ident("Alice", "alice@example.com", "alice")},
		}})
	ch := mustChange(t, e, prRef(1, headSHA))
	if len(ch.Commits) != 3 {
		t.Fatalf("commits = %d", len(ch.Commits))
	}
	if c := ch.Commits[0]; c.Author.Login != "dave" || c.Committer != (bot.User{}) {
		t.Fatalf("web-flow commit = %+v", c)
	}
	if c := ch.Commits[1]; c.Author.Known() || c.Author.Email != "eve@laptop.local" {
		t.Fatalf("unlinked commit = %+v", c)
	}
	var got []string
	for _, u := range ch.Commits[2].CoAuthors {
		got = append(got, u.Login+"|"+u.Email)
	}
	want := []string{
		"bob|123+bob@users.noreply.github.com",
		"carol|carol@users.noreply.github.com",
		"dave|dave@corp.example",     // linked on another commit of the change
		"alice|alice@example.com",    // the commit's own author account
		"|mallory@elsewhere.example", // unverifiable: kept, not dropped
	}
	if !slices.Equal(got, want) {
		t.Fatalf("co-authors = %q\nwant %q", got, want)
	}
	if !slices.Equal(ch.Unverified, []string{"eve@laptop.local", "mallory@elsewhere.example"}) {
		t.Fatalf("unverified = %q", ch.Unverified)
	}
}

func TestParseCoAuthorsAnywhere(t *testing.T) {
	got := github.ParseCoAuthors("x\nCo-authored-by: A B <a@b>\nmore text\n  co-authored-by:C<c@d>  \nCo-authored-by: no email\n")
	if len(got) != 2 || got[0] != (github.CoAuthor{Name: "A B", Email: "a@b"}) || got[1] != (github.CoAuthor{Name: "C", Email: "c@d"}) {
		t.Fatalf("got %+v", got)
	}
}

func TestReviewerPermissionsAndTeams(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.smallPR()
	for login, role := range map[string]string{"mia": "maintain", "tom": "triage", "wes": "write", "ada": "admin", "cus": "security-reviewer"} {
		e.fake.SetPermission(repo.FullName, login, role)
	}
	for _, login := range []string{"mia", "tom", "wes", "ada", "cus", "nob"} {
		e.fake.AddReview(repo.FullName, 1, fakegithub.Review{User: user(login), State: "APPROVED"})
	}
	e.fake.AddReview(repo.FullName, 1, fakegithub.Review{User: user("com"), State: "COMMENTED"})
	e.fake.AddReview(repo.FullName, 1, fakegithub.Review{User: fakegithub.User{Login: "renovate[bot]", Type: "Bot"}, State: "CHANGES_REQUESTED"})
	e.fake.AddTeamMember("acme", "sre", "mia")
	e.fake.SetTeamMembership("acme", "sre", "tom", "pending")
	e.fake.AddTeamMember("acme", "dba", "tom")

	ch := mustChange(t, e, prRef(1, headSHA), "acme/sre", "acme/dba")
	want := map[string]policies.Permission{
		"mia": policies.PermissionMaintain, "tom": policies.PermissionTriage, "wes": policies.PermissionWrite,
		"ada": policies.PermissionAdmin, "cus": policies.PermissionRead, "nob": policies.PermissionNone, "renovate[bot]": policies.PermissionNone,
	}
	for login, p := range want {
		if got := ch.Facts(login).Permission; got != p {
			t.Errorf("%s: permission %v, want %v", login, got, p)
		}
	}
	if _, ok := ch.Reviewers["com"]; ok {
		t.Errorf("a commenter's permission was looked up")
	}
	if !slices.Equal(ch.Facts("mia").Teams, []string{"acme/sre"}) || !slices.Equal(ch.Facts("tom").Teams, []string{"acme/dba"}) || len(ch.Facts("wes").Teams) != 0 {
		t.Errorf("teams: mia %v tom %v wes %v", ch.Facts("mia").Teams, ch.Facts("tom").Teams, ch.Facts("wes").Teams)
	}
	if !ch.Facts("renovate[bot]").Bot || ch.Reviews[len(ch.Reviews)-1].State != bot.ChangesRequested || !ch.Reviews[len(ch.Reviews)-1].Reviewer.Bot {
		t.Errorf("bot review: %+v %+v", ch.Facts("renovate[bot]"), ch.Reviews[len(ch.Reviews)-1])
	}
	if r := ch.Reviews[0]; r.State != bot.Approved || r.CommitSHA != headSHA || r.At.IsZero() || r.ID == 0 {
		t.Errorf("review = %+v", r)
	}

	// Within PermissionTTL nothing is asked again; after it, it is.
	e.fake.ResetRequests()
	mustChange(t, e, prRef(1, headSHA), "acme/sre", "acme/dba")
	if n := e.countPath("GET", "/permission") + e.countPath("GET", "/memberships/"); n != 0 {
		t.Fatalf("cached answers re-fetched: %v", e.requests())
	}
	e.clock.Advance(61 * time.Second)
	e.fake.SetPermission(repo.FullName, "wes", "read")
	ch = mustChange(t, e, prRef(1, headSHA), "acme/sre", "acme/dba")
	if ch.Facts("wes").Permission != policies.PermissionRead {
		t.Fatalf("after TTL wes = %v", ch.Facts("wes").Permission)
	}
}

func TestTokensCachedPerInstallation(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.smallPR()
	for range 5 {
		mustChange(t, e, prRef(1, headSHA))
	}
	if n := e.fake.TokensIssued(1); n != 1 {
		t.Fatalf("installation 1 got %d tokens", n)
	}
	other := repo
	other.Installation = 2
	if _, err := e.forge.Change(e.ctx, bot.ChangeRef{Forge: bot.GitHub, Repo: other, Number: 1, HeadSHA: headSHA}, nil); err != nil {
		t.Fatal(err)
	}
	if n1, n2 := e.fake.TokensIssued(1), e.fake.TokensIssued(2); n1 != 1 || n2 != 1 {
		t.Fatalf("tokens: installation 1 %d, installation 2 %d", n1, n2)
	}
}

func TestGHESBaseURL(t *testing.T) {
	e := newEnv(t, envOpt{prefix: "/api/v3"})
	if !strings.HasSuffix(e.fake.URL(), "/api/v3/") {
		t.Fatalf("fake URL %s", e.fake.URL())
	}
	e.smallPR()
	ch := mustChange(t, e, prRef(1, headSHA))
	if len(ch.Files) != 1 {
		t.Fatalf("files = %+v", ch.Files)
	}
	// Every request was served under the prefix (the fake answers 404 to
	// anything else), the token request included.
	got := e.requests()
	if !slices.Contains(got, "POST /app/installations/1/access_tokens 201") {
		t.Fatalf("no token request under /api/v3: %v", got)
	}
	for _, r := range e.fake.Requests() {
		if r.Status == 404 {
			t.Fatalf("request outside the prefix: %v", got)
		}
	}
}

func TestRetryOn502ThenSuccess(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.smallPR()
	e.fake.Fail(fakegithub.Failure{Path: "/pulls/1/files", Status: 502, Times: 2})
	ch := mustChange(t, e, prRef(1, headSHA))
	if len(ch.Files) != 1 {
		t.Fatalf("files = %+v", ch.Files)
	}
	if got := e.Sleeps(); !slices.Equal(got, []time.Duration{time.Second, 2 * time.Second}) {
		t.Fatalf("backoff = %v", got)
	}
	if n := e.countPath("GET", "/pulls/1/files"); n != 3 {
		t.Fatalf("attempts = %d", n)
	}
}

func TestRetryAfterAndRateLimitReset(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.smallPR()
	e.fake.Fail(fakegithub.Failure{Path: "/pulls/1/commits", Secondary: true, RetryAfter: "7"})
	e.fake.Fail(fakegithub.Failure{Path: "/pulls/1/reviews", RateLimited: true, ResetAfter: 30 * time.Second})
	e.fake.Fail(fakegithub.Failure{Path: "/pulls/1/files", Status: 429, RetryAfter: "3"})
	mustChange(t, e, prRef(1, headSHA))
	if got := e.Sleeps(); !slices.Equal(got, []time.Duration{3 * time.Second, 7 * time.Second, 31 * time.Second}) {
		t.Fatalf("waits = %v (want Retry-After 3s, 7s and reset+1s)", got)
	}
}

// A secondary rate limit without Retry-After: GitHub's advice is at least
// a minute, then exponentially longer while it persists — not a flat 60 s
// that keeps hitting the limit.
func TestSecondaryRateLimitBacksOffExponentially(t *testing.T) {
	e := newEnv(t, envOpt{maxWait: 10 * time.Minute})
	e.smallPR()
	e.fake.Fail(fakegithub.Failure{Path: "/pulls/1/files", Secondary: true, Times: 3})
	mustChange(t, e, prRef(1, headSHA))
	if got := e.Sleeps(); !slices.Equal(got, []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute}) {
		t.Fatalf("waits = %v, want 1m, 2m, 4m", got)
	}
}

func TestRateLimitResetTooFarFailsAtOnce(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.smallPR()
	e.fake.Fail(fakegithub.Failure{Path: "/pulls/1/files", RateLimited: true, ResetAfter: time.Hour})
	if _, err := e.forge.Change(e.ctx, prRef(1, headSHA), nil); err == nil {
		t.Fatal("no error")
	}
	if len(e.Sleeps()) != 0 {
		t.Fatalf("waited %v for an hour-away reset", e.Sleeps())
	}
}

func TestFailAfterMaxAttempts(t *testing.T) {
	e := newEnv(t, envOpt{maxAttempts: 3})
	e.smallPR()
	e.fake.Fail(fakegithub.Failure{Path: "/pulls/1/reviews", Status: 503, Times: 100})
	_, err := e.forge.Change(e.ctx, prRef(1, headSHA), nil)
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v", err)
	}
	if n := e.countPath("GET", "/pulls/1/reviews"); n != 3 {
		t.Fatalf("attempts = %d, want 3", n)
	}
}

func TestTokenRequestIsRetried(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.smallPR()
	e.fake.Fail(fakegithub.Failure{Path: "/access_tokens", Status: 502})
	mustChange(t, e, prRef(1, headSHA))
	if n := e.fake.TokensIssued(1); n != 1 {
		t.Fatalf("tokens = %d", n)
	}
}

func TestETagNotModified(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.smallPR()
	e.fake.AddReview(repo.FullName, 1, fakegithub.Review{User: user("bob"), State: "APPROVED"})
	first := mustChange(t, e, prRef(1, headSHA))
	e.fake.ResetRequests()
	second := mustChange(t, e, prRef(1, headSHA))
	got := e.requests()
	if !slices.Contains(got, "GET /repos/acme/app/pulls/1/reviews?per_page=100 304") {
		t.Fatalf("reviews not conditional: %v", got)
	}
	if len(second.Reviews) != 1 || second.Reviews[0] != first.Reviews[0] {
		t.Fatalf("replayed reviews = %+v", second.Reviews)
	}
	// A new review changes the ETag: a 200 with the new list.
	e.fake.AddReview(repo.FullName, 1, fakegithub.Review{User: user("carol"), State: "COMMENTED"})
	if third := mustChange(t, e, prRef(1, headSHA)); len(third.Reviews) != 2 {
		t.Fatalf("reviews after a new one = %d", len(third.Reviews))
	}
}

func TestChangeNoticesMovedHead(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.smallPR()
	// A synchronize payload for headSHA was seen, but the PR has moved on.
	if _, err := e.forge.Decode("pull_request", encode(t, prPayload(t, "pull_request.synchronize.json", headSHA, baseSHA, 1, 1))); err != nil {
		t.Fatal(err)
	}
	newHead := fakegithub.SHA("newer")
	e.fake.UpdatePR(repo.FullName, 1, func(p *fakegithub.PR) {
		p.Commits = append(p.Commits, fakegithub.Commit{SHA: newHead, Author: ident("A", "a@x", "alice"), Committer: ident("A", "a@x", "alice")})
		p.HeadSHA = newHead
	})
	ch := mustChange(t, e, prRef(1, headSHA))
	if ch.Ref.HeadSHA != newHead || !strings.Contains(ch.EvalError, "moved") {
		t.Fatalf("head %s, EvalError %q", ch.Ref.HeadSHA, ch.EvalError)
	}
	// Nothing was cached under the old head: asking again reads again.
	e.fake.ResetRequests()
	mustChange(t, e, prRef(1, headSHA))
	if e.countPath("GET", "/pulls/1/files") != 1 {
		t.Fatalf("stale lists were cached: %v", e.requests())
	}
}

func TestPublishCreateThenUpdate(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.smallPR()
	ref := prRef(1, headSHA)
	rep := bot.Report{Ref: ref, Verdict: bot.Verdict{State: bot.PendingState}, Title: "code needs 1 more approval\nsecond line",
		Markdown: strings.Repeat("x", 70000), DetailsURL: "https://foureyes.example/details/abc"}
	id, err := e.forge.Publish(e.ctx, rep)
	if err != nil {
		t.Fatal(err)
	}
	runs := e.fake.CheckRuns(repo.FullName, headSHA)
	if len(runs) != 1 || runs[0].Status != "in_progress" || runs[0].Conclusion != "" || runs[0].Name != "foureyes" ||
		runs[0].Title != "code needs 1 more approval" || len(runs[0].Summary) > 65535 || runs[0].DetailsURL != rep.DetailsURL ||
		runs[0].ExternalID != ref.Key() || runs[0].AppID != appID {
		t.Fatalf("run = %+v (summary %d bytes)", runs[0], len(runs[0].Summary))
	}
	if id != fmt.Sprint(runs[0].ID) {
		t.Fatalf("id = %q", id)
	}

	rep.PriorID, rep.Verdict.State, rep.Title, rep.Markdown = id, bot.Success, "all approvals present", "ok"
	id2, err := e.forge.Publish(e.ctx, rep)
	if err != nil {
		t.Fatal(err)
	}
	runs = e.fake.CheckRuns(repo.FullName, headSHA)
	if len(runs) != 1 || runs[0].Status != "completed" || runs[0].Conclusion != "success" || runs[0].Updates != 1 {
		t.Fatalf("runs after update = %+v", runs)
	}
	if id2 != id+":completed" {
		t.Fatalf("id2 = %q", id2)
	}

	rep.PriorID, rep.Verdict.State = id2, bot.Failure
	id3, err := e.forge.Publish(e.ctx, rep)
	if err != nil || id3 != id2 {
		t.Fatalf("id3 = %q, %v", id3, err)
	}
	if runs = e.fake.CheckRuns(repo.FullName, headSHA); len(runs) != 1 || runs[0].Conclusion != "failure" {
		t.Fatalf("runs = %+v", runs)
	}

	// Back to pending: GitHub cannot reopen a completed run, so a new run
	// supersedes it (branch protection reads the newest).
	rep.PriorID, rep.Verdict.State = id3, bot.PendingState
	id4, err := e.forge.Publish(e.ctx, rep)
	if err != nil {
		t.Fatal(err)
	}
	runs = e.fake.CheckRuns(repo.FullName, headSHA)
	if len(runs) != 2 || runs[1].Status != "in_progress" || id4 != fmt.Sprint(runs[1].ID) {
		t.Fatalf("runs = %+v, id4 = %q", runs, id4)
	}
}

func TestPublishRecoversCreatedRunAfter502(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.smallPR()
	// GitHub creates the run, then answers 502.
	e.fake.Fail(fakegithub.Failure{Method: "POST", Path: "/check-runs", Status: 502, AfterHandling: true})
	id, err := e.forge.Publish(e.ctx, bot.Report{Ref: prRef(1, headSHA), Verdict: bot.Verdict{State: bot.Success}, Title: "ok", Markdown: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	runs := e.fake.CheckRuns(repo.FullName, headSHA)
	if len(runs) != 1 || runs[0].Conclusion != "success" || id != fmt.Sprint(runs[0].ID)+":completed" {
		t.Fatalf("runs = %+v, id = %q\n%v", runs, id, e.requests())
	}
}

func TestPublishCommit(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.fake.AddRepo(repo.FullName)
	sha := fakegithub.SHA("pushed")
	id, err := e.forge.PublishCommit(e.ctx, repo, "refs/heads/main", sha, "direct push", "unreviewed", "", bot.Failure, "")
	if err != nil {
		t.Fatal(err)
	}
	if runs := e.fake.CheckRuns(repo.FullName, sha); len(runs) != 1 || runs[0].Conclusion != "failure" {
		t.Fatalf("runs = %+v", runs)
	}
	// An attempt that died before recording id: the run is found again
	// and updated, not duplicated.
	again, err := e.forge.PublishCommit(e.ctx, repo, "refs/heads/main", sha, "direct push", "unreviewed (2)", "", bot.Failure, bot.ReportInFlight)
	if err != nil || again != id {
		t.Fatalf("in-flight publish = %q, %v; want %q", again, err, id)
	}
	// A tag report on the same commit is a run of its own.
	if _, err := e.forge.PublishCommit(e.ctx, repo, "refs/tags/v1", sha, "report", "ok", "", bot.Success, bot.ReportInFlight); err != nil {
		t.Fatal(err)
	}
	runs := e.fake.CheckRuns(repo.FullName, sha)
	if len(runs) != 2 || runs[0].Summary != "unreviewed (2)" || runs[1].Conclusion != "success" {
		t.Fatalf("runs = %+v", runs)
	}
}

func TestOpenChangesPaginated(t *testing.T) {
	e := newEnv(t, envOpt{})
	for n := 1; n <= 130; n++ {
		base := "main"
		if n%10 == 0 {
			base = "release/1"
		}
		e.fake.AddPR(repo.FullName, fakegithub.PR{Number: n, BaseRef: base, HeadSHA: fakegithub.SHA(fmt.Sprint(n)), Author: user("alice")})
	}
	e.fake.UpdatePR(repo.FullName, 5, func(p *fakegithub.PR) { p.State = "closed" })
	refs, err := e.forge.OpenChanges(e.ctx, repo, "main")
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 116 || e.countPath("GET", "/repos/acme/app/pulls") != 2 {
		t.Fatalf("refs = %d, requests %v", len(refs), e.requests())
	}
	for _, r := range refs {
		if r.Number%10 == 0 || r.Number == 5 || r.HeadSHA != fakegithub.SHA(fmt.Sprint(r.Number)) || r.Forge != bot.GitHub {
			t.Fatalf("unexpected %+v", r)
		}
	}
}

func TestReleaseGuardHelpers(t *testing.T) {
	e := newEnv(t, envOpt{})
	merged := time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)
	e.fake.AddPR(repo.FullName, fakegithub.PR{Number: 3, Author: user("alice"), HeadSHA: headSHA, State: "closed", Merged: true, MergedAt: merged, MergeCommitSHA: fakegithub.SHA("merge")})
	e.fake.AddPR(repo.FullName, fakegithub.PR{Number: 4, Author: user("bob"), HeadSHA: fakegithub.SHA("open")})
	e.fake.SetCommitPulls(repo.FullName, fakegithub.SHA("merge"), 3, 4)
	ch, at, err := e.forge.ChangesOfCommit(e.ctx, repo, fakegithub.SHA("merge"))
	if err != nil || len(ch) != 2 || len(at) != 2 || ch[0].State != "merged" || !at[0].Equal(merged) || ch[0].Ref.HeadSHA != headSHA ||
		ch[0].Author.Login != "alice" || ch[0].BaseRef != "main" || ch[1].State != "open" || !at[1].IsZero() {
		t.Fatalf("ChangesOfCommit = %+v, %v, %v", ch, at, err)
	}
	var commits []fakegithub.Commit
	for i := range 150 {
		commits = append(commits, fakegithub.Commit{SHA: fakegithub.SHA(fmt.Sprint("p", i)), Message: "m", Author: ident("Z", "123+zed@users.noreply.github.com", "")})
	}
	e.fake.SetCompare(repo.FullName, baseSHA, headSHA, commits)
	pc, err := e.forge.Compare(e.ctx, repo, baseSHA, headSHA)
	if err != nil || len(pc) != 150 || pc[0].Author.Login != "zed" {
		t.Fatalf("Compare = %d commits, %v", len(pc), err)
	}
	e.fake.SetHistory(repo.FullName, headSHA, commits)
	hist, err := e.forge.History(e.ctx, repo, headSHA, 120)
	if err != nil || len(hist) != 120 || hist[119].SHA != commits[119].SHA {
		t.Fatalf("History = %d commits, %v", len(hist), err)
	}
	for i := range 130 {
		e.fake.AddTag(repo.FullName, fmt.Sprintf("v1.%d.0", i), fakegithub.SHA(fmt.Sprint("t", i)))
	}
	tags, err := e.forge.Tags(e.ctx, repo)
	if err != nil || len(tags) != 130 || tags["v1.7.0"] != fakegithub.SHA("t7") {
		t.Fatalf("Tags = %d, %v", len(tags), err)
	}
	url, err := e.forge.OpenIssue(e.ctx, repo, "Unreviewed push to main", "body <!-- marker-1 -->", []string{"foureyes", "unreviewed-push"})
	if err != nil {
		t.Fatal(err)
	}
	if found, err := e.forge.FindIssue(e.ctx, repo, "<!-- marker-1 -->"); err != nil || found != url {
		t.Fatalf("FindIssue = %q, %v; want %q", found, err, url)
	}
	if found, err := e.forge.FindIssue(e.ctx, repo, "<!-- marker-2 -->"); err != nil || found != "" {
		t.Fatalf("FindIssue of an unknown marker = %q, %v", found, err)
	}
	n, ok := github.IssueNumber(url)
	if !ok {
		t.Fatalf("no number in %q", url)
	}
	closed := "closed"
	if err := e.forge.UpdateIssue(e.ctx, repo, n, github.IssueUpdate{State: &closed}); err != nil {
		t.Fatal(err)
	}
	is := e.fake.Issues(repo.FullName)
	if len(is) != 1 || is[0].Number != n || is[0].State != "closed" || !slices.Equal(is[0].Labels, []string{"foureyes", "unreviewed-push"}) {
		t.Fatalf("issues = %+v", is)
	}
}

// TestRequestBudget measures the API cost of a small pull request (1 file,
// 1 commit) that foureyes never saw opened, judged by the real service on
// a review event in a fresh process (issue 10): at most 8 billable
// requests (token, policy, files, commits, reviews, one permission, who
// pushed the head, check run), and at most 3 for a second review on the
// same head. A conditional request answered 304 is free and not counted.
func TestRequestBudget(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.smallPR()
	e.fake.PutFile(repo.FullName, "main", ".github/foureyes.yml", "version: 1\n")
	e.fake.SetPermission(repo.FullName, "carol", "write")
	e.fake.SetPermission(repo.FullName, "bob", "write")
	db, err := store.Open(e.ctx, "sqlite:"+filepath.Join(t.TempDir(), "foureyes.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := &bot.Service{Forges: map[bot.ForgeName]bot.Forge{bot.GitHub: e.forge}, Store: db}

	review := func(reviewer string) (bot.Verdict, int) {
		t.Helper()
		id := e.fake.AddReview(repo.FullName, 1, fakegithub.Review{User: user(reviewer), State: "APPROVED", CommitID: headSHA})
		p := prPayload(t, "pull_request_review.submitted.json", headSHA, baseSHA, -1, -1)
		set(t, p, "review.id", id)
		set(t, p, "review.state", "approved")
		set(t, p, "review.commit_id", headSHA)
		set(t, p, "review.user.login", reviewer)
		set(t, p, "sender.login", reviewer)
		evs, err := e.forge.Decode("pull_request_review", encode(t, p))
		if err != nil {
			t.Fatal(err)
		}
		e.fake.ResetRequests()
		if err := svc.Handle(e.ctx, evs[0]); err != nil {
			t.Fatal(err)
		}
		v, ok, err := svc.StoredVerdict(e.ctx, prRef(1, headSHA))
		if err != nil || !ok {
			t.Fatalf("no verdict: %v", err)
		}
		return v, billable(e.fake.Requests())
	}

	v, cold := review("carol")
	t.Logf("first event (review, never saw the PR opened), fresh process: %d billable requests: %v", cold, e.requests())
	if v.State != bot.Success {
		t.Fatalf("verdict = %s %q: alice pushed, carol approved", v.State, v.Title)
	}
	if cold > 8 {
		t.Fatalf("first evaluation cost %d requests, budget 8: %v", cold, e.requests())
	}
	v, warm := review("bob")
	t.Logf("second review on the same head: %d billable requests: %v", warm, e.requests())
	if v.State != bot.Success {
		t.Fatalf("verdict = %s %q", v.State, v.Title)
	}
	if warm > 3 {
		t.Fatalf("second review cost %d requests, budget 3: %v", warm, e.requests())
	}
}

// billable counts the requests GitHub charges against the rate limit: a
// conditional request answered 304 is free ("Conditional requests" in
// GitHub's REST API best practices).
func billable(reqs []fakegithub.Request) int {
	n := 0
	for _, r := range reqs {
		if r.Status != http.StatusNotModified {
			n++
		}
	}
	return n
}

func TestRequestCounter(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.smallPR()
	ctx, c := github.CountRequests(e.ctx)
	if _, err := e.forge.Change(ctx, prRef(1, headSHA), nil); err != nil {
		t.Fatal(err)
	}
	if c.Total() != int64(len(e.fake.Requests())) {
		t.Fatalf("counted %d, fake saw %d", c.Total(), len(e.fake.Requests()))
	}
}

func TestNewValidatesConfig(t *testing.T) {
	_, pemBytes := testKey()
	for name, cfg := range map[string]github.Config{
		"no app id": {PrivateKey: pemBytes},
		"bad key":   {AppID: 1, PrivateKey: []byte("nope")},
		"bad url":   {AppID: 1, PrivateKey: pemBytes, APIURL: "not a url"},
	} {
		if _, err := github.New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	f, err := github.New(github.Config{AppID: 1, PrivateKey: pemBytes})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Change(t.Context(), bot.ChangeRef{Repo: bot.Repo{FullName: "a/b"}}, nil); err == nil || !strings.Contains(err.Error(), "installation") {
		t.Fatalf("no installation: %v", err)
	}
}

// TestPublishAdoptsRunOfInterruptedAttempt: the service marks a publish as
// in flight before calling the forge; after a crash between the POST and
// recording its ID, the next attempt must find that run, not add one.
func TestPublishAdoptsRunOfInterruptedAttempt(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.smallPR()
	rep := bot.Report{Ref: prRef(1, headSHA), Verdict: bot.Verdict{State: bot.PendingState}, Title: "waiting", Markdown: "m"}
	if _, err := e.forge.Publish(e.ctx, rep); err != nil {
		t.Fatal(err)
	}
	rep.PriorID, rep.Verdict.State, rep.Title = bot.ReportInFlight, bot.Success, "approved"
	id, err := e.forge.Publish(e.ctx, rep)
	if err != nil {
		t.Fatal(err)
	}
	runs := e.fake.CheckRuns(repo.FullName, headSHA)
	if len(runs) != 1 || runs[0].Conclusion != "success" || id != fmt.Sprint(runs[0].ID)+":completed" {
		t.Fatalf("runs = %+v, id = %q: want the one run adopted and updated", runs, id)
	}
	// With nothing to adopt, the marker creates the run.
	rep.Ref = prRef(1, "0000000000000000000000000000000000000001")
	e.fake.UpdatePR(repo.FullName, 1, func(p *fakegithub.PR) { p.HeadSHA = rep.Ref.HeadSHA })
	if _, err := e.forge.Publish(e.ctx, rep); err != nil {
		t.Fatal(err)
	}
	if n := len(e.fake.CheckRuns(repo.FullName, rep.Ref.HeadSHA)); n != 1 {
		t.Fatalf("%d runs on the new head, want 1", n)
	}
}
