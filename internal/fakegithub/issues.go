package fakegithub

import "net/http"

// SetIssuesDisabled turns a repository's issues off: "Create an issue"
// then answers 410 Gone with a basic-error body (responses of POST
// /repos/{owner}/{repo}/issues include 410, components/responses/gone,
// @octokit/openapi 23.0.2; GitHub's message is "Issues are disabled for
// this repo").
func (f *Fake) SetIssuesDisabled(repo string, disabled bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repoOf(repo).issuesDisabled = disabled
}

// HideFromInstallation leaves a repository out of the App's installation:
// an installation token then gets 404 Not Found for it and everything in
// it, exactly as for a repository that does not exist (installation
// tokens reach only the repositories the installation can access:
// "Generating an installation access token for a GitHub App",
// https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-an-installation-access-token-for-a-github-app).
func (f *Fake) HideFromInstallation(repo string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repoOf(repo).hidden = true
}

func (f *Fake) hiddenFrom(r *http.Request, rp *repo) bool {
	if !rp.hidden {
		return false
	}
	t, _ := r.Context().Value(tokenKey).(*token)
	return t != nil && t.installation != 0
}
