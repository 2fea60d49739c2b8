package fakegithub

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
