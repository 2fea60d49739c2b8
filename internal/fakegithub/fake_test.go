package fakegithub

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/internal/testfixtures"
)

var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, _, err := GenerateKey()
	if err != nil {
		panic(err)
	}
	return k
})

func signJWT(t *testing.T, key *rsa.PrivateKey, alg string, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	head := enc(map[string]string{"alg": alg, "typ": "JWT"}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(head))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return head + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func do(t *testing.T, f *Fake, method, path, auth string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(f.URL(), "/")+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := f.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func claims(iss any, iat, exp time.Time) map[string]any {
	return map[string]any{"iss": iss, "iat": iat.Unix(), "exp": exp.Unix()}
}

func newToken(t *testing.T, f *Fake, inst int64) string {
	t.Helper()
	now := time.Now()
	resp, b := do(t, f, "POST", fmt.Sprintf("/app/installations/%d/access_tokens", inst),
		"Bearer "+signJWT(t, testKey(), "RS256", claims("77", now.Add(-30*time.Second), now.Add(2*time.Minute))), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("token: %d %s", resp.StatusCode, b)
	}
	var out struct{ Token string }
	_ = json.Unmarshal(b, &out)
	return "token " + out.Token
}

func TestJWTIsVerified(t *testing.T) {
	f := New(77, &testKey().PublicKey)
	defer f.Close()
	other, _, _ := GenerateKey()
	now := time.Now()
	good := claims("77", now.Add(-30*time.Second), now.Add(2*time.Minute))
	for name, c := range map[string]struct {
		jwt  string
		want int
	}{
		"valid, iss string": {signJWT(t, testKey(), "RS256", good), 201},
		"valid, iss number": {signJWT(t, testKey(), "RS256", claims(77, now.Add(-30*time.Second), now.Add(2*time.Minute))), 201},
		"other key":         {signJWT(t, other, "RS256", good), 401},
		"other app":         {signJWT(t, testKey(), "RS256", claims("78", now, now.Add(time.Minute))), 401},
		"too long":          {signJWT(t, testKey(), "RS256", claims("77", now.Add(-time.Minute), now.Add(10*time.Minute))), 401},
		"expired":           {signJWT(t, testKey(), "RS256", claims("77", now.Add(-5*time.Minute), now.Add(-time.Minute))), 401},
		"issued in future":  {signJWT(t, testKey(), "RS256", claims("77", now.Add(5*time.Minute), now.Add(7*time.Minute))), 401},
		"wrong alg":         {signJWT(t, testKey(), "RS512", good), 401},
		"garbage":           {"abc.def", 401},
	} {
		resp, b := do(t, f, "POST", "/app/installations/9/access_tokens", "Bearer "+c.jwt, nil)
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d %s", name, resp.StatusCode, b)
		}
	}
	if n := f.TokensIssued(9); n != 2 {
		t.Fatalf("tokens issued = %d", n)
	}
}

func TestTokenRequired(t *testing.T) {
	f := New(77, &testKey().PublicKey)
	defer f.Close()
	f.AddRepo("acme/app")
	for _, auth := range []string{"", "token nope", "Bearer " + signJWT(t, testKey(), "RS256", claims("77", time.Now(), time.Now().Add(time.Minute)))} {
		if resp, _ := do(t, f, "GET", "/repos/acme/app", auth, nil); resp.StatusCode != 401 {
			t.Errorf("auth %q: %d", auth, resp.StatusCode)
		}
	}
	tok := newToken(t, f, 1)
	if resp, _ := do(t, f, "GET", "/repos/acme/app", tok, nil); resp.StatusCode != 200 {
		t.Fatalf("with token: %d", resp.StatusCode)
	}
	if resp, _ := do(t, f, "GET", "/repos/acme/app", "Bearer "+strings.TrimPrefix(tok, "token "), nil); resp.StatusCode != 200 {
		t.Fatalf("Bearer token: %d", resp.StatusCode)
	}
	f.ExpireTokens()
	if resp, _ := do(t, f, "GET", "/repos/acme/app", tok, nil); resp.StatusCode != 401 {
		t.Fatalf("expired token: %d", resp.StatusCode)
	}
	reqs := f.Requests()
	if last := reqs[len(reqs)-1]; last.Status != 401 || last.Path != "/repos/acme/app" {
		t.Fatalf("log = %+v", last)
	}
}

// keysOf returns the sorted keys of a JSON object (of the first element
// for an array; of "check_runs[0]" for a check-run page).
func keysOf(t *testing.T, b []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if a, ok := v.([]any); ok {
		if len(a) == 0 {
			t.Fatalf("empty list")
		}
		v = a[0]
	}
	m := v.(map[string]any)
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestShapesFollowGitHub checks that every key the fake emits exists in
// GitHub's documented example for the endpoint (testdata/fixtures/
// github-api), so clients are tested against real field names.
func TestShapesFollowGitHub(t *testing.T) {
	dir := testfixtures.Path("github-api")
	f := New(77, &testKey().PublicKey)
	defer f.Close()
	head := SHA("h")
	f.AddPR("acme/app", PR{Number: 1, Title: "t", Author: User{Login: "alice"}, BaseSHA: SHA("b"),
		Files:   []File{{Filename: "a.go", Patch: "@@"}},
		Commits: []Commit{{SHA: head, Message: "m", Author: Identity{Name: "A", Email: "a@x", Login: "alice"}, Committer: Identity{Name: "A", Email: "a@x", Login: "alice"}}}})
	f.AddReview("acme/app", 1, Review{User: User{Login: "bob"}, State: "APPROVED"})
	f.PutFile("acme/app", "main", "README.md", "hello")
	f.SetPermission("acme/app", "bob", "maintain")
	f.SetCommitPulls("acme/app", head, 1)
	tok := newToken(t, f, 1)
	_, cr := do(t, f, "POST", "/repos/acme/app/check-runs", tok, map[string]any{"name": "x", "head_sha": head, "conclusion": "success", "output": map[string]string{"title": "t", "summary": "s"}})
	var run struct{ ID int64 }
	_ = json.Unmarshal(cr, &run)

	for _, c := range []struct{ path, method, fixture string }{
		{"/repos/acme/app/pulls/1", "GET", "pulls.get.200.json"},
		{"/repos/acme/app/pulls", "GET", "repos.list-pull-requests-associated-with-commit.200.json"},
		{"/repos/acme/app/commits/" + head + "/pulls", "GET", "repos.list-pull-requests-associated-with-commit.200.json"},
		{"/repos/acme/app/pulls/1/files", "GET", "pulls.list-files.200.json"},
		{"/repos/acme/app/pulls/1/commits", "GET", "pulls.list-commits.200.json"},
		{"/repos/acme/app/pulls/1/reviews", "GET", "pulls.list-reviews.200.json"},
		{"/repos/acme/app/collaborators/bob/permission", "GET", "repos.get-collaborator-permission-level.200.current-docs.json"},
		{"/repos/acme/app/contents/README.md", "GET", "repos.get-content.200.response-if-content-is-a-file.json"},
		{fmt.Sprintf("/repos/acme/app/check-runs/%d", run.ID), "GET", "checks.create.201.example-of-completed-conclusion.json"},
	} {
		resp, b := do(t, f, c.method, c.path, tok, nil)
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", c.path, resp.StatusCode, b)
			continue
		}
		fx, err := os.ReadFile(filepath.Join(dir, c.fixture))
		if err != nil {
			t.Fatal(err)
		}
		want := keysOf(t, fx)
		for _, k := range keysOf(t, b) {
			if !slices.Contains(want, k) {
				t.Errorf("%s: key %q is not in GitHub's %s", c.path, k, c.fixture)
			}
		}
	}
	_, b := do(t, f, "GET", "/repos/acme/app/commits/"+head+"/check-runs", tok, nil)
	var page struct {
		TotalCount int               `json:"total_count"`
		CheckRuns  []json.RawMessage `json:"check_runs"`
	}
	if err := json.Unmarshal(b, &page); err != nil || page.TotalCount != 1 || len(page.CheckRuns) != 1 {
		t.Fatalf("check run page: %s", b)
	}
}

func TestPaginationETagAndRateHeaders(t *testing.T) {
	f := New(77, &testKey().PublicKey, WithPrefix("/api/v3"))
	defer f.Close()
	var files []File
	for i := range 250 {
		files = append(files, File{Filename: fmt.Sprint(i)})
	}
	f.AddPR("acme/app", PR{Number: 1, Files: files, HeadSHA: SHA("h")})
	tok := newToken(t, f, 1)
	resp, b := do(t, f, "GET", "/repos/acme/app/pulls/1/files?per_page=100&page=3", tok, nil)
	var got []any
	_ = json.Unmarshal(b, &got)
	if len(got) != 50 || !strings.Contains(resp.Header.Get("Link"), `/api/v3/repos/acme/app/pulls/1/files?page=2&per_page=100>; rel="prev"`) {
		t.Fatalf("page 3: %d items, Link %s", len(got), resp.Header.Get("Link"))
	}
	etag := resp.Header.Get("ETag")
	used := resp.Header.Get("X-RateLimit-Used")
	req, _ := http.NewRequest("GET", strings.TrimSuffix(f.URL(), "/")+"/repos/acme/app/pulls/1/files?per_page=100&page=3", nil)
	req.Header.Set("Authorization", tok)
	req.Header.Set("If-None-Match", etag)
	r2, err := f.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 304 || r2.Header.Get("X-RateLimit-Used") != used {
		t.Fatalf("conditional: %d, used %s -> %s", r2.StatusCode, used, r2.Header.Get("X-RateLimit-Used"))
	}
	// Outside the prefix there is nothing.
	r3, err := f.Client().Get(f.srv.URL + "/repos/acme/app")
	if err != nil {
		t.Fatal(err)
	}
	r3.Body.Close()
	if r3.StatusCode != 404 {
		t.Fatalf("outside prefix: %d", r3.StatusCode)
	}
}

func TestInjectedFailures(t *testing.T) {
	f := New(77, &testKey().PublicKey)
	defer f.Close()
	f.AddRepo("acme/app")
	tok := newToken(t, f, 1)
	f.Fail(Failure{Path: "/repos/acme/app", RateLimited: true, ResetAfter: time.Minute})
	f.Fail(Failure{Path: "/repos/acme/app", Status: 502, Times: 2, RetryAfter: "2"})
	resp, _ := do(t, f, "GET", "/repos/acme/app", tok, nil)
	if resp.StatusCode != 403 || resp.Header.Get("X-RateLimit-Remaining") != "0" || resp.Header.Get("X-RateLimit-Reset") == "" {
		t.Fatalf("rate limited: %d %v", resp.StatusCode, resp.Header)
	}
	for range 2 {
		if resp, _ := do(t, f, "GET", "/repos/acme/app", tok, nil); resp.StatusCode != 502 || resp.Header.Get("Retry-After") != "2" {
			t.Fatalf("502: %d", resp.StatusCode)
		}
	}
	if resp, _ := do(t, f, "GET", "/repos/acme/app", tok, nil); resp.StatusCode != 200 {
		t.Fatalf("after failures: %d", resp.StatusCode)
	}
}

func TestCheckRunsBelongToTheirApp(t *testing.T) {
	f := New(77, &testKey().PublicKey)
	defer f.Close()
	id := f.AddCheckRun("acme/app", CheckRun{HeadSHA: "s", Name: "foureyes", Conclusion: "success", AppID: 99, AppSlug: "impostor"})
	tok := newToken(t, f, 1)
	if resp, _ := do(t, f, "PATCH", fmt.Sprintf("/repos/acme/app/check-runs/%d", id), tok, map[string]any{"name": "foureyes", "conclusion": "failure"}); resp.StatusCode != 403 {
		t.Fatalf("patching another app's run: %d", resp.StatusCode)
	}
	_, b := do(t, f, "POST", "/repos/acme/app/check-runs", tok, map[string]any{"name": "foureyes", "head_sha": "s", "status": "in_progress"})
	var run struct {
		ID  int64
		App struct{ ID int64 }
	}
	_ = json.Unmarshal(b, &run)
	if run.App.ID != 77 {
		t.Fatalf("created by app %d", run.App.ID)
	}
	// Completed runs stay completed, as on GitHub.
	do(t, f, "PATCH", fmt.Sprintf("/repos/acme/app/check-runs/%d", run.ID), tok, map[string]any{"name": "foureyes", "conclusion": "success"})
	do(t, f, "PATCH", fmt.Sprintf("/repos/acme/app/check-runs/%d", run.ID), tok, map[string]any{"name": "foureyes", "status": "in_progress"})
	runs := f.CheckRuns("acme/app", "s")
	if len(runs) != 2 || runs[1].Status != "completed" || runs[1].Conclusion != "success" || runs[1].AppID != 77 {
		t.Fatalf("runs = %+v", runs)
	}
}

func TestManifestConversion(t *testing.T) {
	f := New(77, &testKey().PublicKey)
	defer f.Close()
	resp, b := do(t, f, "POST", "/app-manifests/code123/conversions", "", nil)
	if resp.StatusCode != 201 {
		t.Fatalf("conversion: %d %s", resp.StatusCode, b)
	}
	var app struct {
		ID            int64  `json:"id"`
		Slug          string `json:"slug"`
		PEM           string `json:"pem"`
		WebhookSecret string `json:"webhook_secret"`
		ClientID      string `json:"client_id"`
		ClientSecret  string `json:"client_secret"`
	}
	if err := json.Unmarshal(b, &app); err != nil || app.ID == 0 || app.Slug == "" || app.WebhookSecret == "" || app.ClientID == "" || app.ClientSecret == "" {
		t.Fatalf("app = %+v, %v", app, err)
	}
	block, _ := pem.Decode([]byte(app.PEM))
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	resp, _ = do(t, f, "POST", "/app/installations/3/access_tokens", "Bearer "+signJWT(t, key, "RS256", claims(app.ID, now.Add(-time.Second), now.Add(time.Minute))), nil)
	if resp.StatusCode != 201 {
		t.Fatalf("new app's token: %d", resp.StatusCode)
	}
	if resp, _ := do(t, f, "POST", "/app-manifests/code123/conversions", "", nil); resp.StatusCode != 404 {
		t.Fatalf("code reused: %d", resp.StatusCode)
	}
}

func TestIssuesAndStatuses(t *testing.T) {
	f := New(77, &testKey().PublicKey)
	defer f.Close()
	f.AddRepo("acme/app")
	tok := newToken(t, f, 1)
	resp, _ := do(t, f, "POST", "/repos/acme/app/issues", tok, map[string]any{"title": "alert", "body": "b", "labels": []string{"foureyes"}})
	if resp.StatusCode != 201 {
		t.Fatalf("create issue: %d", resp.StatusCode)
	}
	do(t, f, "PATCH", "/repos/acme/app/issues/1", tok, map[string]any{"state": "closed"})
	_, b := do(t, f, "GET", "/repos/acme/app/issues?state=all&labels=foureyes", tok, nil)
	var list []struct{ Number int }
	_ = json.Unmarshal(b, &list)
	if len(list) != 1 || f.Issues("acme/app")[0].State != "closed" {
		t.Fatalf("issues = %s", b)
	}
	if resp, _ := do(t, f, "POST", "/repos/acme/app/statuses/s", tok, map[string]any{"state": "failure", "context": "foureyes"}); resp.StatusCode != 201 {
		t.Fatalf("status: %d", resp.StatusCode)
	}
	if st := f.Statuses("acme/app", "s"); len(st) != 1 || st[0].Context != "foureyes" || st[0].Creator != "foureyes[bot]" {
		t.Fatalf("statuses = %+v", st)
	}
}

// A check run lists the open pull requests whose head is its SHA, as
// GitHub's does: after a push, the old head's runs no longer name the pull
// request, and a closed pull request is not named.
func TestCheckRunPullRequestsFollowTheHead(t *testing.T) {
	f := New(77, &testKey().PublicKey)
	defer f.Close()
	f.AddPR("acme/app", PR{Number: 1, HeadSHA: "a"})
	f.AddPR("acme/app", PR{Number: 2, HeadSHA: "a"})
	f.AddPR("acme/app", PR{Number: 3, HeadSHA: "a", State: "closed"})
	tok := newToken(t, f, 1)
	pulls := func(sha string) []int {
		t.Helper()
		_, b := do(t, f, "POST", "/repos/acme/app/check-runs", tok, map[string]any{"name": "foureyes", "head_sha": sha})
		var run struct {
			PullRequests []struct{ Number int } `json:"pull_requests"`
		}
		if err := json.Unmarshal(b, &run); err != nil {
			t.Fatal(err)
		}
		var ns []int
		for _, p := range run.PullRequests {
			ns = append(ns, p.Number)
		}
		return ns
	}
	if got := pulls("a"); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("runs on a name %v, want [1 2]", got)
	}
	f.UpdatePR("acme/app", 2, func(p *PR) { p.HeadSHA = "b" })
	if got := pulls("a"); !slices.Equal(got, []int{1}) {
		t.Errorf("after #2 moved to b, runs on a name %v, want [1]", got)
	}
	if got := pulls("b"); !slices.Equal(got, []int{2}) {
		t.Errorf("runs on b name %v, want [2]", got)
	}
}
