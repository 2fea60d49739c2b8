package github_test

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/foureyes-dev/foureyes/bot"
)

// userToken runs the fake's OAuth web flow for login and returns the user
// access token, as the details page's sign-in does.
func userToken(t *testing.T, e *env, login string) string {
	t.Helper()
	e.fake.SetOAuthClient(appID, "Iv1.test", "test-secret", "https://foureyes.example/auth/github/callback")
	e.fake.AddUser(login)
	c := &http.Client{Transport: e.fake.Client().Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	q := url.Values{"client_id": {"Iv1.test"}, "redirect_uri": {"https://foureyes.example/auth/github/callback"}, "state": {"s"}}
	resp, err := c.PostForm(e.fake.WebURL()+"/login/oauth/authorize?"+q.Encode(), url.Values{"login": {login}, "decision": {"authorize"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, _ := url.Parse(resp.Header.Get("Location"))
	resp, err = c.PostForm(e.fake.WebURL()+"/login/oauth/access_token", url.Values{"client_id": {"Iv1.test"}, "client_secret": {"test-secret"}, "code": {back.Query().Get("code")}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	v, _ := url.ParseQuery(string(body)) // GitHub's default answer is form-encoded
	if v.Get("access_token") == "" {
		t.Fatalf("no token: %s", body)
	}
	return v.Get("access_token")
}

func TestViewersAnswerWithTheForgesFacts(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.fake.AddRepo(repo.FullName)
	ref := bot.ChangeRef{Forge: bot.GitHub, Repo: repo, Number: 1, HeadSHA: "abc"}

	pub, err := e.forge.RepoPublic(e.ctx, repo)
	if err != nil || !pub {
		t.Fatalf("public repository: %v %v", pub, err)
	}
	e.fake.SetPrivate(repo.FullName, true)
	if pub, err := e.forge.RepoPublic(e.ctx, repo); err != nil || pub {
		t.Fatalf("private repository: %v %v", pub, err)
	}
	// Without an installation there is no way to ask: an error, which the
	// page treats as private.
	if _, err := e.forge.RepoPublic(e.ctx, bot.Repo{FullName: repo.FullName}); err == nil {
		t.Error("visibility without an installation")
	}

	tok := userToken(t, e, "rita")
	if login, err := e.forge.Viewer(e.ctx, tok); err != nil || login != "rita" {
		t.Fatalf("Viewer = %q, %v", login, err)
	}
	if ok, err := e.forge.CanRead(e.ctx, tok, ref); err != nil || ok {
		t.Errorf("rita without a permission on a private repository: %v %v", ok, err)
	}
	e.fake.SetPermission(repo.FullName, "rita", "read")
	if ok, err := e.forge.CanRead(e.ctx, tok, ref); err != nil || !ok {
		t.Errorf("rita with read: %v %v", ok, err)
	}
	e.fake.ExpireUserTokens()
	if _, err := e.forge.CanRead(e.ctx, tok, ref); !errors.Is(err, bot.ErrViewerToken) {
		t.Errorf("revoked token: %v, want ErrViewerToken", err)
	}
	if _, err := e.forge.Viewer(e.ctx, tok); !errors.Is(err, bot.ErrViewerToken) {
		t.Errorf("revoked token: %v, want ErrViewerToken", err)
	}

	u, err := e.forge.InstallURL(e.ctx)
	if err != nil || u != e.fake.WebURL()+"/apps/foureyes/installations/new" {
		t.Errorf("InstallURL = %q, %v", u, err)
	}
}
