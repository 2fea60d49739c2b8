package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/mux"

	"github.com/foureyes-dev/foureyes/handlers"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
)

// These tests drive the pages in a real headless Chromium and check what a
// person sees (rendered text, not markup). They skip when no Chromium is
// installed, except in CI, where a missing browser is a failure.

// chromiumPath finds the browser: $FOUREYES_CHROMIUM, Debian's
// /usr/bin/chromium, or chromium in PATH.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FOUREYES_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("FOUREYES_CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium found (set FOUREYES_CHROMIUM); CI must run the browser tests")
	}
	t.Skip("no Chromium found: set FOUREYES_CHROMIUM to run the browser tests")
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns a
// tab context that ends after timeout.
func browser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // the tests may run as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// Without these Chromium phones home at start; on a closed network
		// those connections are refused and slow everything down.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		// /dev/shm is tiny in many containers.
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1100, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	// Start the browser now so a launch failure is reported as such.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// bodyText is what a person reads on the page (innerText: hidden and
// folded parts left out).
func bodyText(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`body`)))
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	return s
}

// screenshot saves a full-page PNG into dir (and, for a person reviewing
// the look, into $FOUREYES_SCREENSHOTS when set).
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dirs := []string{dir}
	if d := os.Getenv("FOUREYES_SCREENSHOTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(png) < 1000 {
		t.Errorf("screenshot %s is only %d bytes", name, len(png))
	}
}

func TestBrowserDetailsPage(t *testing.T) {
	ctx := browser(t, 20*time.Second)
	src := &memVerdicts{}
	ref := sampleRef()
	src.put(ref, sampleVerdict(ref))
	srv := detailsServer(t, src)

	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/details/"+handlers.SignDetails(detailsKey, ref, soon())),
		chromedp.WaitVisible(chromedp.CSS(`.state`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	text := bodyText(t, ctx)
	collapsed, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`details`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Pending",
		"infra needs 1 more approval from @acme/sre",
		"acme/app", "pull request #42",
		"infra", "code", "Needs 1 more", "Approved",
		"@carol", "@dave", "@bob",
		"author of the change",
		"not among this category's reviewers (acme/sre)",
		"deploy/prod/values.yaml",
		"README.md",
		".github/foureyes.yml@main",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
	// Long file lists are folded: the 22nd file shows only after a click.
	if strings.Contains(text, "file21.go") || !strings.Contains(collapsed, "7 more files") {
		t.Errorf("the long file list is not folded: %q", collapsed)
	}
	screenshot(t, ctx, t.TempDir(), "details.png")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`details > summary`))); err != nil {
		t.Fatal(err)
	}
	expanded, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`details`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(expanded, "internal/billing/file21.go") {
		t.Errorf("unfolded list: %q", expanded)
	}

	// A forged token shows the not-found page, not a verdict.
	err = chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/details/"+handlers.SignDetails([]byte("forger"), ref, soon())),
		chromedp.WaitVisible(chromedp.CSS(`h1`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	forged := bodyText(t, ctx)
	if !strings.Contains(forged, "No verdict here") || strings.Contains(forged, "carol") || strings.Contains(forged, "Pending") {
		t.Errorf("forged token page: %q", forged)
	}
}

// httpConverter converts manifest codes with plain net/http, as the GitHub
// adapter does with go-github (which this package must not import).
type httpConverter struct{ client *http.Client }

func (c httpConverter) Convert(ctx context.Context, apiURL, code string) (handlers.AppCredentials, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"app-manifests/"+code+"/conversions", nil)
	if err != nil {
		return handlers.AppCredentials{}, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return handlers.AppCredentials{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return handlers.AppCredentials{}, fmt.Errorf("conversion: %s", resp.Status)
	}
	var a struct {
		ID            int64  `json:"id"`
		Slug          string `json:"slug"`
		HTMLURL       string `json:"html_url"`
		PEM           string `json:"pem"`
		WebhookSecret string `json:"webhook_secret"`
		ClientID      string `json:"client_id"`
		ClientSecret  string `json:"client_secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return handlers.AppCredentials{}, err
	}
	return handlers.AppCredentials{AppID: a.ID, Slug: a.Slug, HTMLURL: a.HTMLURL, PEM: a.PEM, WebhookSecret: a.WebhookSecret, ClientID: a.ClientID, ClientSecret: a.ClientSecret}, nil
}

func TestBrowserManifestFlow(t *testing.T) {
	ctx := browser(t, 20*time.Second)
	key, _, err := fakegithub.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	// The GHES layout: the API under /api/v3 and the web pages at the root.
	gh := fakegithub.New(1, &key.PublicKey, fakegithub.WithPrefix("/api/v3"))
	defer gh.Close()

	dir := t.TempDir()
	envFile := filepath.Join(dir, "foureyes.env")
	// The handler needs the server's URL, which exists once it listens.
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	defer srv.Close()
	mount, err := handlers.SetupHandler(handlers.SetupConfig{
		PublicURL:       srv.URL,
		Manifest:        appManifest(t),
		GitHubWebURL:    gh.WebURL(),
		GitHubAPIURL:    gh.URL(),
		Converter:       httpConverter{client: gh.Client()},
		CredentialsFile: envFile,
		StateKey:        []byte("browser-test"),
		SetupCode:       testSetupCode,
	})
	if err != nil {
		t.Fatal(err)
	}
	h = handlers.New(handlers.Config{Extra: func(r *mux.Router) { mount(r) }})

	const createButton = chromedp.Search(`//button[starts-with(normalize-space(.), "Create the GitHub App on")]`)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID(`org`)),
	); err != nil {
		t.Fatal(err)
	}
	home := bodyText(t, ctx)
	shots := t.TempDir()
	screenshot(t, ctx, shots, "setup-home.png")
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID(`setup_code`), testSetupCode),
		chromedp.SendKeys(chromedp.ID(`org`), "acme"),
		chromedp.Click(chromedp.CSS(`form.setup button[type=submit]`)),
		chromedp.WaitVisible(createButton),
	); err != nil {
		t.Fatalf("continue: %v\nhome: %s", err, home)
	}
	create := bodyText(t, ctx)
	// The form posts to the fake's /organizations/acme/settings/apps/new,
	// which redirects to the callback as github.com does.
	if err := chromedp.Do(ctx,
		chromedp.Click(createButton),
		chromedp.WaitVisible(chromedp.Search(`//h2[normalize-space(.)="Next steps"]`)),
	); err != nil {
		t.Fatalf("create: %v\ncreate page: %s\nnow at: %s", err, create, bodyText(t, ctx))
	}
	done := bodyText(t, ctx)
	if !strings.Contains(home, "Welcome to foureyes") || !strings.Contains(home, "Organization") {
		t.Errorf("home page: %q", home)
	}
	if !strings.Contains(create, "for the organization acme") || !strings.Contains(create, "checks: write") {
		t.Errorf("create page: %q", create)
	}
	for _, want := range []string{"is ready", "Install the App", "set -a; . " + envFile + "; set +a; foureyes serve"} {
		if !strings.Contains(done, want) {
			t.Errorf("next-step page does not show %q:\n%s", want, done)
		}
	}
	screenshot(t, ctx, shots, "setup-done.png")

	// The fake saw the manifest with this server's URLs.
	subs := gh.ManifestSubmissions()
	if len(subs) != 1 || subs[0].Org != "acme" {
		t.Fatalf("submissions = %+v", subs)
	}
	hook, _ := subs[0].Manifest["hook_attributes"].(map[string]any)
	if hook["url"] != srv.URL+"/webhooks/github" || subs[0].Manifest["redirect_url"] != srv.URL+"/setup/github/callback" {
		t.Errorf("manifest = %v", subs[0].Manifest)
	}

	// The page names the App ID the fake created; the file holds it.
	m := regexp.MustCompile(`App ID (\d+)`).FindStringSubmatch(done)
	if m == nil {
		t.Fatalf("no App ID on the page:\n%s", done)
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	app := gh.App(id)
	if app == nil {
		t.Fatalf("the fake has no App %d", id)
	}
	if strings.Contains(done, app.WebhookSecret) || strings.Contains(done, "PRIVATE KEY") {
		t.Error("the page shows a secret")
	}
	st, err := os.Stat(envFile)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode %v", st.Mode())
	}
	b, _ := os.ReadFile(envFile)
	for _, want := range []string{
		"FOUREYES_GITHUB_APP_ID=" + m[1] + "\n",
		"FOUREYES_GITHUB_WEBHOOK_SECRET=" + app.WebhookSecret + "\n",
		"FOUREYES_GITHUB_API_URL=" + gh.URL() + "\n",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("credentials file lacks %q:\n%s", want, b)
		}
	}
}
