package github

import (
	"context"
	"fmt"

	gh "github.com/google/go-github/v60/github"

	"github.com/foureyes-dev/foureyes/bot"
)

// maxBranchPages bounds the branch listing (10,000 branches).
const maxBranchPages = 100

// Branches maps every branch name to its tip ("List branches",
// https://docs.github.com/rest/branches/branches#list-branches): the
// reconciler compares them with the tips foureyes last judged.
func (f *Forge) Branches(ctx context.Context, repo bot.Repo) (map[string]string, error) {
	c, err := f.client(repo.Installation)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	opts := &gh.BranchListOptions{ListOptions: gh.ListOptions{PerPage: perPage}}
	for range maxBranchPages {
		list, resp, err := c.Repositories.ListBranches(ctx, repo.Owner(), repo.Name(), opts)
		if err != nil {
			return nil, fmt.Errorf("github: listing branches of %s: %w", repo.FullName, err)
		}
		for _, b := range list {
			out[b.GetName()] = b.GetCommit().GetSHA()
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
	return nil, fmt.Errorf("github: listing branches of %s: more than %d pages", repo.FullName, maxBranchPages)
}
