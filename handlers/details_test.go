package handlers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/handlers"
)

var detailsKey = []byte("details-key-for-tests-0123456789")

// soon is an expiry in the future for links that should work.
func soon() time.Time { return time.Now().Add(time.Hour) }

func sampleRef() bot.ChangeRef {
	return bot.ChangeRef{
		Forge:   bot.GitHub,
		Repo:    bot.Repo{FullName: "acme/app", URL: "https://github.com/acme/app"},
		Number:  42,
		HeadSHA: "8f2d1c0b9a7e6f5d4c3b2a1908f7e6d5c4b3a291",
	}
}

// sampleVerdict is a realistic pending verdict: infra lacks an approval
// from its team, a self-approval and an outsider's approval did not count.
func sampleVerdict(ref bot.ChangeRef) bot.Verdict {
	var codeFiles []string
	for i := range 22 {
		codeFiles = append(codeFiles, fmt.Sprintf("internal/billing/file%02d.go", i))
	}
	return bot.Verdict{
		State:        bot.PendingState,
		Ref:          ref,
		Title:        "infra needs 1 more approval from @acme/sre",
		PolicySource: ".github/foureyes.yml@main",
		PolicyDigest: "3b1f0c9e5a7d2f4b6c8e0a1d3f5b7c9e1a3d5f7b9c1e3a5d7f9b1c3e5a7d9f1b",
		DiffDigest:   "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d",
		Categories: []bot.CategoryResult{
			{
				Name:     "infra",
				Files:    []string{"deploy/prod/values.yaml", "terraform/main.tf"},
				Required: 2,
				Counted:  []string{"carol"},
				Missing:  1,
				Teams:    []string{"acme/sre"},
				Rejected: []bot.Rejection{
					{Reviewer: "bob", ReviewID: 11, CommitSHA: ref.HeadSHA, Reasons: []bot.Reason{bot.ReasonAuthor}, Detail: "author of the change"},
					{Reviewer: "dave", ReviewID: 12, CommitSHA: ref.HeadSHA, Reasons: []bot.Reason{bot.ReasonNotInTeam}},
				},
			},
			{
				Name:     "code",
				Files:    codeFiles,
				Required: 1,
				Counted:  []string{"carol", "dave"},
				Rejected: []bot.Rejection{
					{Reviewer: "bob", ReviewID: 11, CommitSHA: ref.HeadSHA, Reasons: []bot.Reason{bot.ReasonAuthor}, Detail: "author of the change"},
				},
			},
		},
		Exempt:     []string{"README.md"},
		Notices:    []string{"approvals of eve were given on an earlier head with an identical diff"},
		Unverified: []string{"ci@build.example"},
		Ignored: []bot.Rejection{
			{Reviewer: "bob", ReviewID: 11, CommitSHA: ref.HeadSHA, Reasons: []bot.Reason{bot.ReasonAuthor}, Detail: "author of the change"},
		},
	}
}

// memVerdicts is an in-memory VerdictSource.
type memVerdicts struct {
	mu  sync.Mutex
	m   map[string]bot.Verdict
	err error
}

func (s *memVerdicts) put(ref bot.ChangeRef, v bot.Verdict) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]bot.Verdict{}
	}
	s.m[ref.Key()+"@"+ref.HeadSHA] = v
}

func (s *memVerdicts) StoredVerdict(_ context.Context, ref bot.ChangeRef) (bot.Verdict, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return bot.Verdict{}, false, s.err
	}
	v, ok := s.m[ref.Key()+"@"+ref.HeadSHA]
	return v, ok, nil
}

// linkOnly shows every verdict to whoever holds a valid link: the page's
// rendering tests need no sign-in (signin_test.go tests who may see it).
var linkOnly = map[bot.ForgeName]handlers.DetailsAccess{bot.GitHub: {LinkOnly: true}, bot.GitLab: {LinkOnly: true}}

// detailsServer mounts the details page the way the server does.
func detailsServer(t testing.TB, src handlers.VerdictSource) *httptest.Server {
	t.Helper()
	mount, err := handlers.Details(handlers.DetailsConfig{Key: detailsKey, Verdicts: src, Forges: linkOnly})
	if err != nil {
		t.Fatal(err)
	}
	h := handlers.New(handlers.Config{Extra: mount})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func get(t testing.TB, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestDetailsTokenRoundTrip(t *testing.T) {
	for _, ref := range []bot.ChangeRef{
		sampleRef(),
		{Forge: bot.GitLab, Repo: bot.Repo{FullName: "group/sub/project", URL: "https://gitlab.example.com/group/sub/project"}, Number: 7, HeadSHA: "abc123"},
		{Forge: bot.GitHub, Repo: bot.Repo{FullName: "acme/app"}, Number: 1, HeadSHA: "def"},
	} {
		tok := handlers.SignDetails(detailsKey, ref, soon())
		if strings.ContainsAny(tok, "/+=?#&% ") {
			t.Errorf("token %q is not URL-safe", tok)
		}
		got, err := handlers.VerifyDetails(detailsKey, tok, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", ref.Key(), err)
		}
		if got.Forge != ref.Forge || got.Repo.FullName != ref.Repo.FullName || got.Repo.URL != ref.Repo.URL || got.Number != ref.Number || got.HeadSHA != ref.HeadSHA {
			t.Errorf("round trip: %+v != %+v", got, ref)
		}
	}
	// Fields that do not name the change stay out of the token.
	ref := sampleRef()
	ref.Repo.ID, ref.Repo.Installation = 99, 7
	if handlers.SignDetails(detailsKey, ref, soon()) != handlers.SignDetails(detailsKey, sampleRef(), soon()) {
		t.Error("token depends on fields it does not carry")
	}
}

func TestDetailsTokenRefusesTampering(t *testing.T) {
	tok := handlers.SignDetails(detailsKey, sampleRef(), soon())
	payload, mac, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		t.Fatal(err)
	}
	alter := func(field string, value any) string {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m[field]; !ok {
			t.Fatalf("payload has no field %q: %s", field, raw)
		}
		m[field] = value
		b, _ := json.Marshal(m)
		return base64.RawURLEncoding.EncodeToString(b) + "." + mac
	}
	flip := func(s string) string {
		b := []byte(s)
		if b[len(b)/2] == 'A' {
			b[len(b)/2] = 'B'
		} else {
			b[len(b)/2] = 'A'
		}
		return string(b)
	}
	cases := map[string]string{
		"forge":         alter("f", "gitlab"),
		"repo":          alter("r", "acme/other"),
		"repo url":      alter("u", "https://evil.example/acme/app"),
		"number":        alter("n", 43),
		"sha":           alter("h", "0000000000000000000000000000000000000000"),
		"mac":           payload + "." + flip(mac),
		"mac truncated": payload + "." + mac[:len(mac)-2],
		"no mac":        payload,
		"empty mac":     payload + ".",
		"extra part":    tok + ".x",
		"bad base64":    "!!!." + mac,
		"empty":         "",
		"dot":           ".",
		"long":          strings.Repeat("a", 5000) + "." + mac,
		"other key":     handlers.SignDetails([]byte("another key"), sampleRef(), soon()),
	}
	for name, bad := range cases {
		if _, err := handlers.VerifyDetails(detailsKey, bad, time.Now()); !errors.Is(err, handlers.ErrDetailsToken) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// An empty key would let anybody sign: nothing verifies under it.
	if _, err := handlers.VerifyDetails(nil, handlers.SignDetails(nil, sampleRef(), soon()), time.Now()); err == nil {
		t.Error("a token verified under an empty key")
	}
	// Signed but incomplete payloads are refused too.
	ref := sampleRef()
	ref.Number = 0
	if _, err := handlers.VerifyDetails(detailsKey, handlers.SignDetails(detailsKey, ref, soon()), time.Now()); err == nil {
		t.Error("number 0 verified")
	}
	ref = sampleRef()
	ref.Forge = "bitbucket"
	if _, err := handlers.VerifyDetails(detailsKey, handlers.SignDetails(detailsKey, ref, soon()), time.Now()); err == nil {
		t.Error("unknown forge verified")
	}
}

func TestDetailsPage(t *testing.T) {
	src := &memVerdicts{}
	ref := sampleRef()
	v := sampleVerdict(ref)
	// Names come from the forge and the repo: they must render as text.
	v.Categories[1].Files = append(v.Categories[1].Files, `<script>alert("x")</script>.go`)
	v.Title = `<b>infra</b> needs 1 more approval from @acme/sre`
	v.Failures = []string{".github/foureyes.yml:3:5: unknown key \"revewers\""}
	src.put(ref, v)
	srv := detailsServer(t, src)

	resp, body := get(t, srv.URL+"/details/"+handlers.SignDetails(detailsKey, ref, soon()))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
		"Content-Type":            "text/html; charset=utf-8",
	} {
		if got := resp.Header.Get(k); !strings.HasPrefix(got, want) {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, want := range []string{
		"Pending",
		"&lt;b&gt;infra&lt;/b&gt; needs 1 more approval",
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;.go",
		`href="https://github.com/acme/app/pull/42"`,
		`href="https://github.com/acme/app/commit/` + ref.HeadSHA + `"`,
		"infra", "code", "deploy/prod/values.yaml",
		"Needs 1 more", "acme/sre",
		"@carol", "@dave", "@bob",
		"author of the change",
		"not among this category&#39;s reviewers (acme/sre)",
		"<details><summary>8 more files</summary>",
		"<pre>.github/foureyes.yml:3:5: unknown key &#34;revewers&#34;",
		"README.md", "ci@build.example", "identical diff",
		".github/foureyes.yml@main", v.PolicyDigest,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script") || strings.Contains(body, "<b>infra") {
		t.Error("forge-controlled text was not escaped")
	}
	// bob is rejected in both categories and ignored overall: he is listed
	// per category, not a third time.
	if strings.Contains(body, "Approvals that counted nowhere") {
		t.Error("an approval listed in the categories is repeated")
	}

	// Forged, altered and unknown all get the same 404 page.
	unknown := ref
	unknown.HeadSHA = "1111111111111111111111111111111111111111"
	respU, bodyU := get(t, srv.URL+"/details/"+handlers.SignDetails(detailsKey, unknown, soon()))
	if respU.StatusCode != http.StatusNotFound || !strings.Contains(bodyU, "No verdict here") {
		t.Fatalf("unknown verdict: %d %s", respU.StatusCode, bodyU)
	}
	forged := handlers.SignDetails([]byte("attacker"), ref, soon())
	tok := handlers.SignDetails(detailsKey, ref, soon())
	for _, bad := range []string{forged, tok[:len(tok)-3] + "AAA", "x", "a.b"} {
		resp, body := get(t, srv.URL+"/details/"+bad)
		if resp.StatusCode != http.StatusNotFound || body != bodyU {
			t.Errorf("token %q: %d, same page as unknown: %v", bad, resp.StatusCode, body == bodyU)
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Error("404 page without CSP")
		}
	}

	src.err = errors.New("database is down")
	resp, body = get(t, srv.URL+"/details/"+handlers.SignDetails(detailsKey, ref, soon()))
	if resp.StatusCode != http.StatusInternalServerError || strings.Contains(body, "database is down") {
		t.Errorf("store error: %d %s", resp.StatusCode, body)
	}
}

func TestDetailsPageGitLabAndStates(t *testing.T) {
	src := &memVerdicts{}
	srv := detailsServer(t, src)
	ref := bot.ChangeRef{Forge: bot.GitLab, Repo: bot.Repo{FullName: "group/project", URL: "https://gitlab.example.com/group/project"}, Number: 7, HeadSHA: "abc"}
	for state, word := range map[bot.State]string{bot.Success: "Success", bot.Failure: "Failure", "weird": "Failure"} {
		v := bot.Verdict{State: state, Ref: ref, Title: "t", Categories: []bot.CategoryResult{{Name: "code", Required: 1, Counted: []string{"x"}}}}
		src.put(ref, v)
		resp, body := get(t, srv.URL+"/details/"+handlers.SignDetails(detailsKey, ref, soon()))
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<span class="state `+strings.ToLower(word)+`">`+word+`</span>`) {
			t.Errorf("state %s: %d, want %s", state, resp.StatusCode, word)
		}
		if !strings.Contains(body, `href="https://gitlab.example.com/group/project/-/merge_requests/7"`) || !strings.Contains(body, "merge request !7") {
			t.Errorf("state %s: no merge request link", state)
		}
	}
	// A GitLab repo without a known URL gets no link rather than a wrong one.
	ref.Repo.URL = ""
	src.put(ref, bot.Verdict{State: bot.Success, Ref: ref})
	_, body := get(t, srv.URL+"/details/"+handlers.SignDetails(detailsKey, ref, soon()))
	if strings.Contains(body, "merge_requests") {
		t.Error("GitLab link without a repo URL")
	}
}

// An override is a success, but the page must not claim the approvals are in.
func TestDetailsPageBreakGlass(t *testing.T) {
	src := &memVerdicts{}
	srv := detailsServer(t, src)
	ref := sampleRef()
	v := bot.Verdict{State: bot.Success, Ref: ref, Title: "break-glass: @sam and @sue overrode review — outage <b>",
		Categories: []bot.CategoryResult{{Name: "code", Required: 1, Missing: 1, Counted: []string{}}},
		BreakGlass: &bot.BreakGlassResult{Required: 2, OpenedBy: "sam", Reason: "outage <b>", Agreed: []string{"sam", "sue"}, Applied: true,
			Missing: []string{"code: 1 more approval of 1"}, Rejected: []bot.Rejection{{Reviewer: "alice", Reasons: []bot.Reason{bot.ReasonAuthor}, Detail: "author of the change"}}}}
	src.put(ref, v)
	_, body := get(t, srv.URL+"/details/"+handlers.SignDetails(detailsKey, ref, soon()))
	if strings.Contains(body, "has its independent approvals") {
		t.Error("an overridden change is described as approved")
	}
	for _, want := range []string{"Review was overridden by break glass", "Overridden by @sam, @sue — outage &lt;b&gt;", "Missing: code: 1 more approval of 1", "Did not count: @alice — author of the change"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestDetailsHandlerWithoutMux(t *testing.T) {
	src := &memVerdicts{}
	ref := sampleRef()
	src.put(ref, sampleVerdict(ref))
	h, err := handlers.DetailsHandler(handlers.DetailsConfig{Key: detailsKey, Verdicts: src, Forges: linkOnly})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/details/"+handlers.SignDetails(detailsKey, ref, soon()), nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/details/x", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
}

func TestDetailsLinksExpire(t *testing.T) {
	ref := sampleRef()
	now := time.Now()
	tok := handlers.SignDetails(detailsKey, ref, now.Add(time.Hour))
	if _, err := handlers.VerifyDetails(detailsKey, tok, now.Add(59*time.Minute)); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	for _, at := range []time.Time{now.Add(time.Hour), now.Add(24 * time.Hour)} {
		if _, err := handlers.VerifyDetails(detailsKey, tok, at); !errors.Is(err, handlers.ErrDetailsExpired) || !errors.Is(err, handlers.ErrDetailsToken) {
			t.Errorf("at %s: %v, want expired", at.Sub(now), err)
		}
	}
	// A forged token is not "expired" (that would confirm it names
	// something): the MAC is checked first.
	forged := handlers.SignDetails([]byte("attacker"), ref, now.Add(-time.Hour))
	if _, err := handlers.VerifyDetails(detailsKey, forged, now); errors.Is(err, handlers.ErrDetailsExpired) {
		t.Error("a forged expired token reads as expired")
	}
	// Moving the expiry breaks the MAC.
	payload, mac, _ := strings.Cut(handlers.SignDetails(detailsKey, ref, now.Add(-time.Hour)), ".")
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	m["x"] = now.Add(1000 * time.Hour).Unix()
	b, _ := json.Marshal(m)
	if _, err := handlers.VerifyDetails(detailsKey, base64.RawURLEncoding.EncodeToString(b)+"."+mac, now); err == nil || errors.Is(err, handlers.ErrDetailsExpired) {
		t.Errorf("extended expiry: %v", err)
	}

	src := &memVerdicts{}
	src.put(ref, sampleVerdict(ref))
	srv := detailsServer(t, src)
	resp, body := get(t, srv.URL+"/details/"+handlers.SignDetails(detailsKey, ref, now.Add(-time.Minute)))
	if resp.StatusCode != http.StatusGone || !strings.Contains(body, "This link has expired") || strings.Contains(body, "deploy/prod") {
		t.Errorf("expired link: %d", resp.StatusCode)
	}
}
