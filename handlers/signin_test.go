package handlers_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/handlers"
)

// unreachableViewers fails the test when asked: the sign-in start must not
// need the forge. (The forge-backed paths are tested end to end in
// cmd/foureyes/details_signin_test.go against the fakes.)
type unreachableViewers struct{ t *testing.T }

func (u unreachableViewers) RepoPublic(context.Context, bot.Repo) (bool, error) {
	u.t.Error("RepoPublic called")
	return false, nil
}
func (u unreachableViewers) Viewer(context.Context, string) (string, error) {
	u.t.Error("Viewer called")
	return "", nil
}
func (u unreachableViewers) CanRead(context.Context, string, bot.ChangeRef) (bool, error) {
	u.t.Error("CanRead called")
	return false, nil
}

func TestSignInCookieFlags(t *testing.T) {
	for _, pub := range []string{"https://foureyes.example", "http://localhost:8080"} {
		mount, err := handlers.Details(handlers.DetailsConfig{
			Key: detailsKey, Verdicts: &memVerdicts{}, PublicURL: pub,
			Forges: map[bot.ForgeName]handlers.DetailsAccess{bot.GitHub: {
				Viewers: unreachableViewers{t},
				OAuth: &oauth2.Config{ClientID: "Iv1.x", ClientSecret: "s", RedirectURL: pub + handlers.SignInCallbackPath(bot.GitHub),
					Endpoint: oauth2.Endpoint{AuthURL: "https://github.com/login/oauth/authorize", TokenURL: "https://github.com/login/oauth/access_token"}},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(handlers.New(handlers.Config{Extra: mount}))
		tok := handlers.SignDetails(detailsKey, sampleRef(), time.Now().Add(time.Hour))
		resp, err := noFollow.Get(srv.URL + "/auth/github/login?next=" + url.QueryEscape(tok))
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc.Host != "github.com" || loc.Query().Get("client_id") != "Iv1.x" || len(loc.Query().Get("state")) < 40 {
			t.Fatalf("%s: login → %d %s", pub, resp.StatusCode, loc)
		}
		c := resp.Cookies()
		if len(c) != 1 || !c[0].HttpOnly || c[0].SameSite != http.SameSiteLaxMode || c[0].Secure != (pub[:5] == "https") || c[0].Path != "/auth/github/" {
			t.Errorf("%s: state cookie %+v", pub, c)
		}
	}
	// Sign-in with an OAuth client but nothing to check access with is a
	// wiring mistake, refused at start.
	if _, err := handlers.Details(handlers.DetailsConfig{Key: detailsKey, Verdicts: &memVerdicts{},
		Forges: map[bot.ForgeName]handlers.DetailsAccess{bot.GitHub: {OAuth: &oauth2.Config{}}}}); err == nil {
		t.Error("OAuth without Viewers accepted")
	}
}
