package github

import (
	"context"
	"fmt"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"github.com/foureyes-dev/foureyes/bot"
)

// orgRepoHidden tells a missing org policy file from an org .github
// repository the installation cannot read: an installation token reaches
// only the repositories the installation was given ("Generating an
// installation access token for a GitHub App": the token "will only have
// access to the repositories that the installation can access"), and
// GitHub answers 404 for the others, as for a missing file. So a 404 of
// the repository itself says foureyes could not look.
func (f *Forge) orgRepoHidden(ctx context.Context, c *gh.Client, owner string) (bool, error) {
	_, _, err := c.Repositories.Get(ctx, owner, OrgPolicyRepo)
	switch {
	case isNotFound(err):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("github: reading the org policy repository %s/%s: %w", owner, OrgPolicyRepo, err)
	}
	return false, nil
}

// orgPolicyNote says where foureyes looked when no policy file was found,
// and whether the org's .github repository was out of its reach.
func orgPolicyNote(repo bot.Repo, at string, hidden bool) string {
	if !hidden {
		return ""
	}
	looked := make([]string, 0, len(PolicyPaths))
	for _, p := range PolicyPaths {
		looked = append(looked, p)
	}
	owner := repo.Owner()
	// Plain text: the report escapes Markdown in notices.
	return fmt.Sprintf("No policy file: foureyes looked for %s in %s@%s and for %s in %s/%s, but the installation cannot read %s/%s "+
		"(it is not among the repositories the foureyes App is installed on, or it does not exist), so an org policy there was not applied. "+
		"Add %s/%s to the App's installation (organization settings, GitHub Apps, foureyes, Repository access).",
		strings.Join(looked, ", "), repo.FullName, at, OrgPolicyPath, owner, OrgPolicyRepo, owner, OrgPolicyRepo, owner, OrgPolicyRepo)
}
