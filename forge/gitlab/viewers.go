package gitlab

import (
	"context"
	"fmt"
	"net/http"
	"time"

	gl "github.com/xanzy/go-gitlab"

	"github.com/foureyes-dev/foureyes/bot"
)

// The details page asks these three questions (bot.Viewers). RepoPublic
// asks with foureyes' own token; Viewer and CanRead with the viewer's
// OAuth token (GitLab as an OAuth 2.0 provider, scope read_api), so GitLab
// applies that person's own access.

var _ bot.Viewers = (*Forge)(nil)

// RepoPublic implements bot.Viewers: GET /projects/:id and its visibility
// ("public", "internal" or "private"). Internal projects need a signed-in
// user, so they are not public.
func (f *Forge) RepoPublic(ctx context.Context, repo bot.Repo) (bool, error) {
	p, _, err := f.client.Projects.GetProject(pid(repo), nil, gl.WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("gitlab: visibility of %s: %w", repo.FullName, err)
	}
	if p.Visibility == "" {
		return false, fmt.Errorf("gitlab: visibility of %s: the answer has no visibility", repo.FullName)
	}
	return p.Visibility == gl.PublicVisibility, nil
}

func (f *Forge) userClient(token string) (*gl.Client, error) {
	hc := &http.Client{Transport: f.transport, Timeout: 60 * time.Second}
	c, err := gl.NewOAuthClient(token, gl.WithBaseURL(f.baseURL.String()), gl.WithHTTPClient(hc))
	if err != nil {
		return nil, fmt.Errorf("gitlab: viewer client: %w", err)
	}
	return c, nil
}

// Viewer implements bot.Viewers: GET /user with the viewer's token.
func (f *Forge) Viewer(ctx context.Context, token string) (string, error) {
	c, err := f.userClient(token)
	if err != nil {
		return "", err
	}
	u, _, err := c.Users.CurrentUser(gl.WithContext(ctx))
	if err != nil {
		if httpStatus(err) == http.StatusUnauthorized {
			return "", fmt.Errorf("gitlab: GET /user: %w: %w", bot.ErrViewerToken, err)
		}
		return "", fmt.Errorf("gitlab: GET /user: %w", err)
	}
	if u.Username == "" {
		return "", fmt.Errorf("gitlab: GET /user: the answer has no username")
	}
	return u.Username, nil
}

// CanRead implements bot.Viewers: GET /projects/:id/merge_requests/:iid
// with the viewer's token. GitLab answers 404 (or 403) when the person may
// not see the merge request, e.g. a Guest of a private project.
func (f *Forge) CanRead(ctx context.Context, token string, ref bot.ChangeRef) (bool, error) {
	c, err := f.userClient(token)
	if err != nil {
		return false, err
	}
	_, _, err = c.MergeRequests.GetMergeRequest(pid(ref.Repo), ref.Number, nil, gl.WithContext(ctx))
	switch s := httpStatus(err); {
	case err == nil:
		return true, nil
	case s == http.StatusNotFound || s == http.StatusForbidden:
		return false, nil
	case s == http.StatusUnauthorized:
		return false, fmt.Errorf("gitlab: access of the viewer to %s: %w: %w", ref.Repo.FullName, bot.ErrViewerToken, err)
	default:
		return false, fmt.Errorf("gitlab: access of the viewer to %s: %w", ref.Repo.FullName, err)
	}
}
