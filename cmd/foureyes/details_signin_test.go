package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/handlers"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
)

// Who may read a details page, driven end to end: the real server and
// GitHub adapter, the fake GitHub's OAuth endpoints, and a real headless
// Chromium for what a person sees.

func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FOUREYES_CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "chromium"} {
		if q, err := exec.LookPath(p); err == nil {
			return q
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium found (set FOUREYES_CHROMIUM); CI must run the browser tests")
	}
	t.Skip("no Chromium found: set FOUREYES_CHROMIUM to run the browser tests")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile (no cookies).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 40*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

func pageText(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`body`)))
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	return s
}

// signInAs follows the page's sign-in button to the fake GitHub's sign-in
// page and authorizes as login; it returns the text of the page the
// browser ends on.
func signInAs(t *testing.T, ctx context.Context, button, login string) string {
	t.Helper()
	step := func(what string, a ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, a...); err != nil {
			t.Fatalf("sign in as %s: %s: %v\npage: %s", login, what, err, pageText(t, ctx))
		}
	}
	step("press "+button, chromedp.Click(chromedp.Search(`//a[normalize-space(.)="`+button+`"]`)))
	step("the forge's sign-in page", chromedp.WaitVisible(chromedp.ID(`login`)))
	step("authorize", chromedp.SendKeys(chromedp.ID(`login`), login), chromedp.Click(chromedp.ID(`authorize`)))
	step("back on foureyes", chromedp.WaitVisible(chromedp.Search(`//main//h1`)))
	return pageText(t, ctx)
}

// privateDetails starts the server with the App's OAuth client, makes the
// repository private and returns the details link of a fresh verdict.
func privateDetails(t *testing.T) (*e2e, string, bot.ChangeRef) {
	t.Helper()
	e := newE2E(t, map[string]string{
		"FOUREYES_GITHUB_CLIENT_ID":     "Iv1.details-test",
		"FOUREYES_GITHUB_CLIENT_SECRET": "details-test-secret",
	})
	f := e.sb.Fake
	f.SetOAuthClient(e.sb.AppID, "Iv1.details-test", "details-test-secret", e.sb.URL+handlers.SignInCallbackPath(bot.GitHub))
	f.SetPrivate(e2eRepo, true)
	f.AddUser("rita")    // may read the repository
	f.AddUser("mallory") // has no access to it
	pr := e.openPR([]string{"main.go"})
	run := e.check(pr)
	if !strings.HasPrefix(run.DetailsURL, e.sb.URL+"/details/") {
		t.Fatalf("details URL %q", run.DetailsURL)
	}
	return e, run.DetailsURL, bot.ChangeRef{Forge: bot.GitHub, Repo: bot.Repo{FullName: e2eRepo}, Number: pr.Number, HeadSHA: pr.HeadSHA}
}

func TestBrowserDetailsPrivateRepository(t *testing.T) {
	ctx := newBrowser(t)
	e, link, ref := privateDetails(t)

	// Without signing in: a sign-in page, not the verdict.
	if err := chromedp.Do(ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`h1`))); err != nil {
		t.Fatal(err)
	}
	first := pageText(t, ctx)
	if !strings.Contains(first, "Sign in to see this verdict") || strings.Contains(first, "main.go") || strings.Contains(first, "needs 1 more") {
		t.Fatalf("anonymous view of a private repository:\n%s", first)
	}

	// mallory signs in and has no access: 403 page naming her.
	denied := signInAs(t, ctx, "Sign in with GitHub", "mallory")
	if !strings.Contains(denied, "You cannot see this verdict") || !strings.Contains(denied, "@mallory") || strings.Contains(denied, "main.go") {
		t.Fatalf("mallory sees:\n%s", denied)
	}
	resp, _ := httpGet(t, nil, link)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous GET: %d, want 401", resp.StatusCode)
	}

	// rita can read the repository: she sees the verdict.
	shown := signInAs(t, ctx, "Sign in again", "rita")
	for _, want := range []string{"Pending", "main.go", "pull request #", e2eRepo} {
		if !strings.Contains(shown, want) {
			t.Errorf("rita's page lacks %q:\n%s", want, shown)
		}
	}

	// Revoking access works at once: the page asks the forge every time.
	e.sb.Fake.SetPermission(e2eRepo, "rita", "")
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`h1`))); err != nil {
		t.Fatal(err)
	}
	if after := pageText(t, ctx); !strings.Contains(after, "You cannot see this verdict") {
		t.Errorf("after revoking rita's access:\n%s", after)
	}

	// An expired link says so, signed in or not.
	expired := e.sb.URL + "/details/" + handlers.SignDetails(e.sb.srv.detailsKey(), ref, time.Now().Add(-time.Minute))
	if err := chromedp.Do(ctx, chromedp.Navigate(expired), chromedp.WaitVisible(chromedp.CSS(`h1`))); err != nil {
		t.Fatal(err)
	}
	if txt := pageText(t, ctx); !strings.Contains(txt, "This link has expired") || !strings.Contains(txt, "90 days") || strings.Contains(txt, "main.go") {
		t.Errorf("expired link:\n%s", txt)
	}
	if resp, _ := httpGet(t, nil, expired); resp.StatusCode != http.StatusGone {
		t.Errorf("expired link: %d, want 410", resp.StatusCode)
	}
}

func httpGet(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	if c == nil {
		c = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// The attacks on the sign-in, without a browser (a cookie jar plays it).
func TestDetailsSignInAttacks(t *testing.T) {
	e, link, _ := privateDetails(t)
	base := e.sb.URL
	jar, _ := cookiejar.New(nil)
	noFollow := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	token := strings.TrimPrefix(link, base+"/details/")

	// The sign-in only ever returns to a details page of this server.
	for _, next := range []string{"https://evil.example/", "//evil.example", "", "x.y"} {
		if resp, _ := httpGet(t, noFollow, base+"/auth/github/login?next="+url.QueryEscape(next)); resp.StatusCode != http.StatusNotFound {
			t.Errorf("login with next=%q: %d, want 404", next, resp.StatusCode)
		}
	}

	// Start a sign-in: the state cookie is HttpOnly and SameSite=Lax.
	resp, _ := httpGet(t, noFollow, base+"/auth/github/login?next="+url.QueryEscape(token))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	auth, _ := url.Parse(resp.Header.Get("Location"))
	if !strings.HasPrefix(auth.String(), e.sb.Fake.WebURL()+"/login/oauth/authorize?") || auth.Query().Get("code_challenge_method") != "S256" ||
		auth.Query().Get("redirect_uri") != base+"/auth/github/callback" || auth.Query().Get("state") == "" {
		t.Fatalf("authorize URL %s", auth)
	}
	sc := resp.Cookies()
	if len(sc) != 1 || !sc[0].HttpOnly || sc[0].SameSite != http.SameSiteLaxMode || sc[0].Secure {
		t.Errorf("state cookie %+v (Secure only with an https public URL)", sc)
	}
	// mallory authorizes in her own browser and gets a code...
	code := fakeAuthorize(t, auth, "mallory")
	// ...and lures rita's browser (another jar, no state cookie) to the
	// callback: login CSRF. Refused, and no session is set.
	victimJar, _ := cookiejar.New(nil)
	victim := &http.Client{Jar: victimJar, CheckRedirect: noFollow.CheckRedirect}
	resp, body := httpGet(t, victim, base+"/auth/github/callback?code="+code+"&state="+url.QueryEscape(auth.Query().Get("state")))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not valid") || len(resp.Cookies()) > 1 {
		t.Errorf("callback without the state cookie: %d %v", resp.StatusCode, resp.Cookies())
	}
	// A state that does not match the cookie is refused too.
	resp, _ = httpGet(t, noFollow, base+"/auth/github/callback?code="+code+"&state=forged")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("forged state: %d", resp.StatusCode)
	}
	// The cookie was single use: the genuine callback after a refusal
	// must start again.
	resp, _ = httpGet(t, noFollow, base+"/auth/github/callback?code="+code+"&state="+url.QueryEscape(auth.Query().Get("state")))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed callback: %d", resp.StatusCode)
	}

	// A genuine sign-in as rita sets an HttpOnly, Lax session cookie.
	resp, _ = httpGet(t, noFollow, base+"/auth/github/login?next="+url.QueryEscape(token))
	auth, _ = url.Parse(resp.Header.Get("Location"))
	code = fakeAuthorize(t, auth, "rita")
	resp, _ = httpGet(t, noFollow, base+"/auth/github/callback?code="+code+"&state="+url.QueryEscape(auth.Query().Get("state")))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/details/"+token {
		t.Fatalf("callback: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	var sess *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "foureyes_session_github" {
			sess = c
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.MaxAge <= 0 || sess.MaxAge > 8*3600 || strings.Contains(sess.Value, "ghu_") {
		t.Fatalf("session cookie %+v", sess)
	}
	if resp, body := httpGet(t, noFollow, link); resp.StatusCode != http.StatusOK || !strings.Contains(body, "main.go") {
		t.Fatalf("rita signed in: %d", resp.StatusCode)
	}
	// A session cookie altered by one byte is no session.
	u, _ := url.Parse(base)
	b := []byte(sess.Value)
	b[len(b)/2] ^= 1
	forgedJar, _ := cookiejar.New(nil)
	forgedJar.SetCookies(u, []*http.Cookie{{Name: sess.Name, Value: string(b), Path: "/"}})
	if resp, _ := httpGet(t, &http.Client{Jar: forgedJar}, link); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("altered session: %d, want 401", resp.StatusCode)
	}
	// A revoked token: the page asks to sign in again instead of showing
	// the verdict or an error.
	e.sb.Fake.ExpireUserTokens()
	if resp, body := httpGet(t, noFollow, link); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "expired or was revoked") {
		t.Errorf("revoked token: %d", resp.StatusCode)
	}

}

// A public repository stays link-only: whoever holds the link reads it,
// with sign-in configured or not; it still expires.
func TestDetailsPublicRepositoryIsLinkOnly(t *testing.T) {
	e := newE2E(t, map[string]string{
		"FOUREYES_GITHUB_CLIENT_ID":     "Iv1.details-test",
		"FOUREYES_GITHUB_CLIENT_SECRET": "details-test-secret",
	})
	pr := e.openPR([]string{"main.go"})
	run := e.check(pr)
	if resp, body := httpGet(t, nil, run.DetailsURL); resp.StatusCode != http.StatusOK || !strings.Contains(body, "main.go") {
		t.Fatalf("public repository, anonymous: %d", resp.StatusCode)
	}
	// Unknown visibility is private: the forge failing to answer must not
	// open the page (a new server process, so nothing is cached).
	e2 := newE2E(t, map[string]string{
		"FOUREYES_GITHUB_CLIENT_ID":     "Iv1.details-test",
		"FOUREYES_GITHUB_CLIENT_SECRET": "details-test-secret",
	})
	pr2 := e2.openPR([]string{"main.go"})
	run2 := e2.check(pr2)
	e2.sb.Fake.Fail(fakegithub.Failure{Method: "GET", Path: "/repos/" + e2eRepo, Status: http.StatusNotFound, Times: 100})
	if resp, body := httpGet(t, nil, run2.DetailsURL); resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "main.go") {
		t.Errorf("visibility unknown: %d, want 401 (sign in)", resp.StatusCode)
	}
}

// fakeAuthorize plays the user on the fake GitHub's sign-in page and
// returns the code it hands back.
func fakeAuthorize(t *testing.T, auth *url.URL, login string) string {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(auth.String(), url.Values{"login": {login}, "decision": {"authorize"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || back.Query().Get("code") == "" {
		t.Fatalf("authorize as %s: %d %s", login, resp.StatusCode, resp.Header.Get("Location"))
	}
	return back.Query().Get("code")
}

// glSignIn signs in on the fake GitLab as login with a cookie-keeping
// client, starting from the details page's sign-in link, and returns the
// page it ends on.
func glSignIn(t *testing.T, c *http.Client, base, token, login string) (int, string) {
	t.Helper()
	resp, err := c.Get(base + "/auth/gitlab/login?next=" + url.QueryEscape(token))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	authURL := resp.Request.URL // the forge's sign-in page, after the redirect
	if resp.StatusCode != http.StatusOK || authURL.Path != "/oauth/authorize" || authURL.Query().Get("scope") != "read_user read_api" {
		t.Fatalf("sign-in start: %d at %s", resp.StatusCode, authURL)
	}
	resp, err = c.PostForm(authURL.String(), url.Values{"login": {login}, "decision": {"authorize"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// detailsLink is the details page of mr's verdict: the status links it when
// the link fits GitLab's 255-character target_url, else the note does.
func (e *glE2E) detailsLink(mr fakegitlab.MergeRequest) string {
	e.t.Helper()
	if u := e.status(mr.SHA).TargetURL; strings.HasPrefix(u, e.sb.URL+"/details/") {
		return u
	}
	m := regexp.MustCompile(`\]\((` + regexp.QuoteMeta(e.sb.URL) + `/details/[^)\s]+)\)`).FindStringSubmatch(e.note(mr.IID))
	if m == nil {
		e.t.Fatalf("neither the status nor the note links the details page:\n%s", e.note(mr.IID))
	}
	return m[1]
}

func TestDetailsGitLabSignIn(t *testing.T) {
	e := newGLE2EWith(t, map[string]string{
		"FOUREYES_GITLAB_CLIENT_ID":     "gitlab-app-id",
		"FOUREYES_GITLAB_CLIENT_SECRET": "gitlab-app-secret",
	})
	e.fake.SetOAuthApplication("gitlab-app-id", "gitlab-app-secret", e.sb.URL+handlers.SignInCallbackPath(bot.GitLab))
	e.fake.SetVisibility(glProject, "private")
	e.fake.SetMember(glProject, glErin, fakegitlab.Guest) // a Guest cannot see merge requests
	mr := e.openMR("main.go")
	link := e.detailsLink(mr)
	token := strings.TrimPrefix(link, e.sb.URL+"/details/")
	if token == link {
		t.Fatalf("status target %q", link)
	}
	if resp, body := httpGet(t, nil, link); resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "main.go") || !strings.Contains(body, "Sign in with GitLab") {
		t.Fatalf("anonymous: %d", resp.StatusCode)
	}
	jar, _ := cookiejar.New(nil)
	guest := &http.Client{Jar: jar}
	if status, body := glSignIn(t, guest, e.sb.URL, token, "erin"); status != http.StatusForbidden || !strings.Contains(body, "@erin") || strings.Contains(body, "main.go") {
		t.Errorf("Guest erin: %d\n%s", status, body)
	}
	jar2, _ := cookiejar.New(nil)
	reporter := &http.Client{Jar: jar2}
	if status, body := glSignIn(t, reporter, e.sb.URL, token, "rita"); status != http.StatusOK || !strings.Contains(body, "main.go") || !strings.Contains(body, "merge request !") {
		t.Errorf("Reporter rita: %d\n%s", status, body)
	}
}

// Without a GitLab OAuth application, GitLab details links are link-only
// (docs/gitlab.md), private project or not; they still expire.
func TestDetailsGitLabLinkOnly(t *testing.T) {
	e := newGLE2E(t)
	e.fake.SetVisibility(glProject, "private")
	mr := e.openMR("main.go")
	link := e.detailsLink(mr)
	if resp, body := httpGet(t, nil, link); resp.StatusCode != http.StatusOK || !strings.Contains(body, "main.go") {
		t.Errorf("link-only: %d", resp.StatusCode)
	}
	ref := bot.ChangeRef{Forge: bot.GitLab, Repo: bot.Repo{FullName: glPath}, Number: mr.IID, HeadSHA: mr.SHA}
	old := e.sb.URL + "/details/" + handlers.SignDetails(e.sb.srv.detailsKey(), ref, time.Now().Add(-time.Second))
	if resp, body := httpGet(t, nil, old); resp.StatusCode != http.StatusGone || !strings.Contains(body, "This link has expired") {
		t.Errorf("expired: %d", resp.StatusCode)
	}
}

// GitHub without the App's OAuth client cannot check who reads a private
// repository's verdict: the page refuses everyone (fails closed) and says
// what the operators must set.
func TestDetailsPrivateWithoutSignInIsRefused(t *testing.T) {
	e := newE2E(t, nil)
	e.sb.Fake.SetPrivate(e2eRepo, true)
	pr := e.openPR([]string{"main.go"})
	run := e.check(pr)
	resp, body := httpGet(t, nil, run.DetailsURL)
	if resp.StatusCode != http.StatusForbidden || strings.Contains(body, "main.go") || !strings.Contains(body, "FOUREYES_GITHUB_CLIENT_ID") {
		t.Errorf("private repository without sign-in: %d", resp.StatusCode)
	}
	if resp, _ := httpGet(t, nil, e.sb.URL+"/auth/github/login?next=x"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("sign-in route without a client: %d", resp.StatusCode)
	}
}
