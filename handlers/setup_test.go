package handlers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/foureyes-dev/foureyes/handlers"
)

// appManifest is the repository's app.yml: the flow must work with the
// manifest that ships.
func appManifest(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../app.yml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeConverter records conversions and answers with fixed credentials.
type fakeConverter struct {
	mu    sync.Mutex
	calls []string // apiURL + " " + code
	creds handlers.AppCredentials
	err   error
}

func (c *fakeConverter) Convert(_ context.Context, apiURL, code string) (handlers.AppCredentials, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, apiURL+" "+code)
	return c.creds, c.err
}

func (c *fakeConverter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

const testPEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----\n"

func testCreds() handlers.AppCredentials {
	return handlers.AppCredentials{
		AppID:         314159,
		Slug:          "foureyes-acme",
		HTMLURL:       "https://github.com/apps/foureyes-acme",
		PEM:           testPEM,
		WebhookSecret: "wh'sec $ret",
		ClientID:      "Iv1.0123456789abcdef",
		ClientSecret:  "client-secret-never-shown",
	}
}

type setupEnv struct {
	srv  *httptest.Server
	conv *fakeConverter
	dir  string
	file string
	now  *time.Time
	gh   bool
}

func newSetupEnv(t *testing.T, edit func(*handlers.SetupConfig)) *setupEnv {
	t.Helper()
	e := &setupEnv{conv: &fakeConverter{creds: testCreds()}, dir: t.TempDir()}
	e.file = filepath.Join(e.dir, "foureyes.env")
	now := time.Now()
	e.now = &now
	var mu sync.Mutex
	cfg := handlers.SetupConfig{
		PublicURL:       "https://foureyes.acme.example/",
		Manifest:        appManifest(t),
		Converter:       e.conv,
		CredentialsFile: e.file,
		Configured: func() (bool, bool) {
			mu.Lock()
			defer mu.Unlock()
			return e.gh, false
		},
		StateKey:  []byte("state-key"),
		SetupCode: testSetupCode,
		Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return *e.now
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	mount, err := handlers.SetupHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(handlers.New(handlers.Config{Extra: mount}))
	t.Cleanup(e.srv.Close)
	return e
}

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// testSetupCode is the setup code of newSetupEnv; post adds it to every
// form that does not name one.
const testSetupCode = "TESTSETUPCODE234567"

func (e *setupEnv) post(t *testing.T, form url.Values) (*http.Response, string) {
	t.Helper()
	if !form.Has("setup_code") {
		form = maps.Clone(form)
		if form == nil {
			form = url.Values{}
		}
		form.Set("setup_code", testSetupCode)
	}
	resp, err := noFollow.PostForm(e.srv.URL+"/setup/github", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var (
	formAction    = regexp.MustCompile(`<form class="setup" method="post" action="([^"]+)">`)
	manifestField = regexp.MustCompile(`<input type="hidden" name="manifest" value="([^"]+)">`)
)

// startFlow posts the home page's form and returns GitHub's URL with the
// state, and the manifest the page would post there.
func (e *setupEnv) startFlow(t *testing.T, form url.Values) (*url.URL, map[string]any) {
	t.Helper()
	resp, body := e.post(t, form)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /setup/github: %d %s", resp.StatusCode, body)
	}
	a := formAction.FindStringSubmatch(body)
	m := manifestField.FindStringSubmatch(body)
	if a == nil || m == nil {
		t.Fatalf("no manifest form in %s", body)
	}
	u, err := url.Parse(html.UnescapeString(a[1]))
	if err != nil {
		t.Fatal(err)
	}
	var manifest map[string]any
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &manifest); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	return u, manifest
}

func (e *setupEnv) callback(t *testing.T, code, state string) (int, string) {
	t.Helper()
	resp, body := get(t, e.srv.URL+"/setup/github/callback?"+url.Values{"code": {code}, "state": {state}}.Encode())
	return resp.StatusCode, body
}

func TestSetupHomeUnconfigured(t *testing.T) {
	e := newSetupEnv(t, nil)
	resp, body := get(t, e.srv.URL+"/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, want := range []string{"Welcome to foureyes", `action="/setup/github"`, `name="org"`, `name="host"`, "Continue", "four-eyes principle", "Using GitLab?"} {
		if !strings.Contains(body, want) {
			t.Errorf("home lacks %q", want)
		}
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Error("no CSP")
	}
	// A GET of the form's target goes back to the form.
	r, err := noFollow.Get(e.srv.URL + "/setup/github")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Errorf("GET /setup/github: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
}

func TestSetupManifestForm(t *testing.T) {
	e := newSetupEnv(t, nil)
	u, m := e.startFlow(t, url.Values{"org": {"acme"}})
	if u.Scheme != "https" || u.Host != "github.com" || u.Path != "/organizations/acme/settings/apps/new" || u.Query().Get("state") == "" {
		t.Errorf("form action = %s", u)
	}
	hook, _ := m["hook_attributes"].(map[string]any)
	if hook["url"] != "https://foureyes.acme.example/webhooks/github" || hook["active"] != true {
		t.Errorf("hook_attributes = %v", hook)
	}
	if m["redirect_url"] != "https://foureyes.acme.example/setup/github/callback" || m["url"] != "https://foureyes.acme.example" {
		t.Errorf("redirect_url = %v, url = %v", m["redirect_url"], m["url"])
	}
	perms, _ := m["default_permissions"].(map[string]any)
	if perms["checks"] != "write" || perms["contents"] != "read" || m["name"] != "foureyes" || m["public"] != false {
		t.Errorf("manifest = %v", m)
	}
	if evs, _ := m["default_events"].([]any); len(evs) < 6 {
		t.Errorf("default_events = %v", m["default_events"])
	}

	// Personal account.
	if u, _ := e.startFlow(t, url.Values{}); u.String() == "" || u.Path != "/settings/apps/new" {
		t.Errorf("personal: %s", u)
	}
	// GitHub Enterprise Server.
	for _, host := range []string{"github.corp.example", "https://github.corp.example/", "GitHub.Corp.Example:8443"} {
		u, _ := e.startFlow(t, url.Values{"host": {host}})
		if !strings.HasPrefix(u.String(), "https://github.corp.example") || u.Path != "/settings/apps/new" {
			t.Errorf("GHES %q: %s", host, u)
		}
	}
	for _, form := range []url.Values{
		{"org": {"-acme"}}, {"org": {"ac/me"}}, {"org": {strings.Repeat("a", 40)}},
		{"host": {"http://github.corp.example"}}, {"host": {"github.corp.example/path"}}, {"host": {"user@host"}},
		{"host": {"javascript:alert(1)"}}, {"host": {strings.Repeat("İ", 20)}},
	} {
		resp, body := e.post(t, form)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `class="callout failure"`) {
			t.Errorf("%v: %d", form, resp.StatusCode)
		}
	}
}

func TestSetupCallbackWritesCredentials(t *testing.T) {
	e := newSetupEnv(t, nil)
	u, _ := e.startFlow(t, url.Values{"org": {"acme"}})
	state := u.Query().Get("state")
	// A second flow started before the first one ends.
	u2, _ := e.startFlow(t, url.Values{})

	status, body := e.callback(t, "code123", state)
	if status != http.StatusOK {
		t.Fatalf("callback: %d %s", status, body)
	}
	if e.conv.calls[0] != "https://api.github.com/ code123" {
		t.Errorf("converted with %q", e.conv.calls)
	}
	creds := testCreds()
	for _, secret := range []string{"MIIBOgIBAAJBAKj34", "PRIVATE KEY", creds.WebhookSecret, creds.ClientSecret} {
		if strings.Contains(html.UnescapeString(body), secret) {
			t.Errorf("the page shows a secret: %q", secret)
		}
	}
	for _, want := range []string{"foureyes-acme", "https://github.com/apps/foureyes-acme/installations/new", "set -a; . " + e.file + "; set +a; foureyes serve", "Next steps"} {
		if !strings.Contains(html.UnescapeString(body), want) {
			t.Errorf("next-step page lacks %q", want)
		}
	}

	st, err := os.Stat(e.file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	keyPath := filepath.Join(e.dir, "foureyes-github-app-314159.pem")
	kst, err := os.Stat(keyPath)
	if err != nil || kst.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", kst, err)
	}
	if b, _ := os.ReadFile(keyPath); string(b) != testPEM {
		t.Errorf("key file = %q", b)
	}
	content, _ := os.ReadFile(e.file)
	for _, want := range []string{
		"\nFOUREYES_GITHUB_APP_ID=314159\n",
		"\nFOUREYES_GITHUB_WEBHOOK_SECRET='wh'\\''sec $ret'\n",
		"\nFOUREYES_GITHUB_PRIVATE_KEY_FILE=" + keyPath + "\n",
		"\nFOUREYES_PUBLIC_URL=https://foureyes.acme.example\n",
		// The App's OAuth client, for signing viewers in on details pages.
		"\nFOUREYES_GITHUB_CLIENT_ID=Iv1.0123456789abcdef\n",
		"\nFOUREYES_GITHUB_CLIENT_SECRET=" + creds.ClientSecret + "\n",
	} {
		if !strings.Contains(string(content), want) {
			t.Errorf("credentials file lacks %q:\n%s", want, content)
		}
	}
	if strings.Contains(string(content), "FOUREYES_GITHUB_API_URL") {
		t.Errorf("credentials file:\n%s", content)
	}
	// A POSIX shell reads it back exactly, as the next-step page says.
	if sh, err := exec.LookPath("sh"); err == nil {
		out, err := exec.Command(sh, "-c", `set -a; . "$1"; set +a; printf '%s\n%s\n%s' "$FOUREYES_GITHUB_APP_ID" "$FOUREYES_GITHUB_WEBHOOK_SECRET" "$FOUREYES_GITHUB_PRIVATE_KEY_FILE"`, "sh", e.file).Output()
		if err != nil || string(out) != "314159\n"+creds.WebhookSecret+"\n"+keyPath {
			t.Errorf("sh reads %q (%v)", out, err)
		}
	}

	// One App per process: once the credentials exist the setup routes
	// are gone, even for a flow that started before.
	if status, _ := e.callback(t, "code456", u2.Query().Get("state")); status != http.StatusNotFound {
		t.Errorf("second callback: %d", status)
	}
	if r, _ := e.post(t, url.Values{}); r.StatusCode != http.StatusNotFound {
		t.Errorf("form after registration: %d", r.StatusCode)
	}
	if e.conv.count() != 1 {
		t.Errorf("converter called %d times", e.conv.count())
	}
	_, home := get(t, e.srv.URL+"/")
	if !strings.Contains(home, "is registered") || strings.Contains(home, `action="/setup/github"`) {
		t.Error("home page still offers the form after registration")
	}

	// Once GitHub is configured the setup routes are gone.
	e.gh = true
	for _, r := range []func() int{
		func() int { s, _ := e.callback(t, "code789", state); return s },
		func() int { r, _ := e.post(t, url.Values{}); return r.StatusCode },
		func() int { r, _ := get(t, e.srv.URL+"/setup/github"); return r.StatusCode },
	} {
		if s := r(); s != http.StatusNotFound {
			t.Errorf("configured: setup route answered %d", s)
		}
	}
	resp, home := get(t, e.srv.URL+"/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(home, "foureyes is running") || !strings.Contains(home, `href="/metrics"`) || strings.Contains(home, "Register the GitHub App") {
		t.Errorf("status page: %d %s", resp.StatusCode, home)
	}
}

func TestSetupCallbackRefusesBadState(t *testing.T) {
	e := newSetupEnv(t, nil)
	u, _ := e.startFlow(t, url.Values{})
	state := u.Query().Get("state")
	payload, mac, _ := strings.Cut(state, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	var st map[string]any
	_ = json.Unmarshal(raw, &st)
	st["a"] = "https://attacker.example/api/v3/"
	b, _ := json.Marshal(st)
	redirected := base64.RawURLEncoding.EncodeToString(b) + "." + mac

	other := newSetupEnv(t, func(c *handlers.SetupConfig) { c.StateKey = []byte("another key") })
	ou, _ := other.startFlow(t, url.Values{})

	for name, bad := range map[string]string{
		"empty":       "",
		"garbage":     "garbage",
		"altered api": redirected,
		"bad mac":     payload + "." + mac[:len(mac)-2] + "xx",
		"other key":   ou.Query().Get("state"),
	} {
		if status, body := e.callback(t, "code", bad); status != http.StatusBadRequest || !strings.Contains(body, "not valid") {
			t.Errorf("%s: %d", name, status)
		}
	}
	if status, _ := e.callback(t, "../../user", state); status != http.StatusBadRequest {
		t.Errorf("malformed code: %d", status)
	}
	// Expired after an hour.
	*e.now = e.now.Add(61 * time.Minute)
	if status, _ := e.callback(t, "code", state); status != http.StatusBadRequest {
		t.Errorf("expired state: %d", status)
	}
	if e.conv.count() != 0 {
		t.Errorf("converter called for a refused state")
	}
	if _, err := os.Stat(e.file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("credentials file exists: %v", err)
	}
}

func TestSetupNeverOverwrites(t *testing.T) {
	e := newSetupEnv(t, nil)
	if err := os.WriteFile(e.file, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.file+".1", []byte("keep me too\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u, _ := e.startFlow(t, url.Values{})
	status, body := e.callback(t, "code", u.Query().Get("state"))
	if status != http.StatusOK {
		t.Fatalf("callback: %d %s", status, body)
	}
	if b, _ := os.ReadFile(e.file); string(b) != "keep me\n" {
		t.Errorf("existing file overwritten: %q", b)
	}
	if b, _ := os.ReadFile(e.file + ".1"); string(b) != "keep me too\n" {
		t.Errorf("existing file overwritten: %q", b)
	}
	b, err := os.ReadFile(e.file + ".2")
	if err != nil || !strings.Contains(string(b), "FOUREYES_GITHUB_APP_ID=314159") {
		t.Fatalf("new file: %q %v", b, err)
	}
	if !strings.Contains(html.UnescapeString(body), e.file+".2") {
		t.Error("the page does not name the file written")
	}
}

func TestSetupConversionFailure(t *testing.T) {
	e := newSetupEnv(t, nil)
	e.conv.err = errors.New("404 Not Found")
	u, _ := e.startFlow(t, url.Values{"host": {"github.corp.example"}})
	state := u.Query().Get("state")
	if status, body := e.callback(t, "code", state); status != http.StatusBadGateway || strings.Contains(body, "404 Not Found") {
		t.Fatalf("failed conversion: %d %s", status, body)
	}
	if e.conv.calls[0] != "https://github.corp.example/api/v3/ code" {
		t.Errorf("GHES conversion at %q", e.conv.calls[0])
	}
	if _, err := os.Stat(e.file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed conversion left a file: %v", err)
	}
	// The state was spent with the code: a replay is refused.
	e.conv.err = nil
	if status, _ := e.callback(t, "code", state); status != http.StatusBadRequest {
		t.Errorf("replayed state: %d", status)
	}
	// A fresh flow still works, and GHES gets its API URL in the file.
	u, _ = e.startFlow(t, url.Values{"host": {"github.corp.example"}})
	if status, _ := e.callback(t, "code2", u.Query().Get("state")); status != http.StatusOK {
		t.Fatalf("retry: %d", status)
	}
	if b, _ := os.ReadFile(e.file); !strings.Contains(string(b), "\nFOUREYES_GITHUB_API_URL=https://github.corp.example/api/v3/\n") {
		t.Errorf("GHES file:\n%s", b)
	}
}

func TestSetupHandlerRefusesBadConfig(t *testing.T) {
	good := handlers.SetupConfig{PublicURL: "https://x.example", Manifest: appManifest(t), Converter: &fakeConverter{}}
	for name, edit := range map[string]func(*handlers.SetupConfig){
		"relative public URL": func(c *handlers.SetupConfig) { c.PublicURL = "/foureyes" },
		"no manifest":         func(c *handlers.SetupConfig) { c.Manifest = nil },
		"bad manifest":        func(c *handlers.SetupConfig) { c.Manifest = []byte("name: [") },
		"no converter":        func(c *handlers.SetupConfig) { c.Converter = nil },
		"bad web URL":         func(c *handlers.SetupConfig) { c.GitHubWebURL = "github.com" },
	} {
		c := good
		edit(&c)
		if _, err := handlers.SetupHandler(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	mount, err := handlers.SetupHandler(good)
	if err != nil {
		t.Fatal(err)
	}
	mount(mux.NewRouter())
}
