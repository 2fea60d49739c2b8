package github

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v60/github"

	"github.com/foureyes-dev/foureyes/bot"
)

// The details page asks these three questions (bot.Viewers). RepoPublic
// asks with the App's installation token; Viewer and CanRead ask with the
// viewer's user-to-server token from the App's OAuth flow, so GitHub
// answers with that person's own access ("Authorizing GitHub Apps":
// requests with a user access token are limited to what both the user
// and the App can reach).

var _ bot.Viewers = (*Forge)(nil)

// RepoPublic implements bot.Viewers: GET /repos/{owner}/{repo} ("Get a
// repository") and its private and visibility fields. An internal
// repository (visible to an enterprise's members) is not public.
func (f *Forge) RepoPublic(ctx context.Context, repo bot.Repo) (bool, error) {
	c, err := f.client(repo.Installation)
	if err != nil {
		return false, err
	}
	r, _, err := c.Repositories.Get(ctx, repo.Owner(), repo.Name())
	if err != nil {
		return false, fmt.Errorf("github: visibility of %s: %w", repo.FullName, err)
	}
	if r.Private == nil {
		return false, fmt.Errorf("github: visibility of %s: the answer has no private field", repo.FullName)
	}
	v := r.GetVisibility()
	return !r.GetPrivate() && (v == "" || v == "public"), nil
}

// userClient is a client that authenticates with a viewer's token. It
// shares the retrying, counting transport of the installation clients.
func (f *Forge) userClient(token string) *gh.Client {
	c := gh.NewClient(&http.Client{Transport: f.api}).WithAuthToken(token)
	c.BaseURL = f.apiURL
	c.UserAgent = "foureyes"
	return c
}

// Viewer implements bot.Viewers: GET /user ("Get the authenticated user").
func (f *Forge) Viewer(ctx context.Context, token string) (string, error) {
	u, _, err := f.userClient(token).Users.Get(ctx, "")
	if err != nil {
		if statusOf(err) == http.StatusUnauthorized {
			return "", fmt.Errorf("github: GET /user: %w: %w", bot.ErrViewerToken, err)
		}
		return "", fmt.Errorf("github: GET /user: %w", err)
	}
	if u.GetLogin() == "" {
		return "", fmt.Errorf("github: GET /user: the answer has no login")
	}
	return u.GetLogin(), nil
}

// CanRead implements bot.Viewers: GET /repos/{owner}/{repo} with the
// viewer's token. GitHub answers 404 for a private repository the person
// cannot see ("Get a repository"), and 200 with permissions.pull for one
// they can read.
func (f *Forge) CanRead(ctx context.Context, token string, ref bot.ChangeRef) (bool, error) {
	r, _, err := f.userClient(token).Repositories.Get(ctx, ref.Repo.Owner(), ref.Repo.Name())
	switch s := statusOf(err); {
	case err == nil:
	case s == http.StatusNotFound || s == http.StatusForbidden:
		return false, nil
	case s == http.StatusUnauthorized:
		return false, fmt.Errorf("github: access of the viewer to %s: %w: %w", ref.Repo.FullName, bot.ErrViewerToken, err)
	default:
		return false, fmt.Errorf("github: access of the viewer to %s: %w", ref.Repo.FullName, err)
	}
	if !r.GetPrivate() && r.GetVisibility() == "public" {
		// A public repository answers 200 to everybody; its verdicts are
		// link-only anyway.
		return true, nil
	}
	// A 200 on a repository that is not public already means read access;
	// the permissions object, when present, must agree.
	if p := r.GetPermissions(); p != nil && !p["pull"] {
		return false, nil
	}
	return true, nil
}

// InstallURL returns the page where the App is installed on repositories:
// GET /app ("Get the authenticated app", as the App, with its JWT) and its
// html_url + "/installations/new".
func (f *Forge) InstallURL(ctx context.Context) (string, error) {
	atr := ghinstallation.NewAppsTransportFromPrivateKey(f.api, f.appID, f.key)
	atr.BaseURL = f.tokenBase
	c := gh.NewClient(&http.Client{Transport: atr})
	c.BaseURL = f.apiURL
	c.UserAgent = "foureyes"
	app, _, err := c.Apps.Get(ctx, "")
	if err != nil {
		return "", fmt.Errorf("github: GET /app: %w", err)
	}
	u, err := url.Parse(app.GetHTMLURL())
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("github: GET /app: html_url %q is not a web URL", app.GetHTMLURL())
	}
	return strings.TrimRight(app.GetHTMLURL(), "/") + "/installations/new", nil
}
