package gitlab

import (
	"context"
	"fmt"

	gl "github.com/xanzy/go-gitlab"

	"github.com/foureyes-dev/foureyes/bot"
)

// Branches maps every branch name to its tip
// (https://docs.gitlab.com/api/branches/#list-repository-branches): the
// reconciler compares them with the tips foureyes last judged.
func (f *Forge) Branches(ctx context.Context, repo bot.Repo) (map[string]string, error) {
	list, err := paginate("branches", func(page int) ([]*gl.Branch, *gl.Response, error) {
		return f.client.Branches.ListBranches(pid(repo), &gl.ListBranchesOptions{ListOptions: gl.ListOptions{PerPage: perPage, Page: page}}, gl.WithContext(ctx))
	})
	if err != nil {
		return nil, fmt.Errorf("gitlab: %s: %w", repo.FullName, err)
	}
	out := make(map[string]string, len(list))
	for _, b := range list {
		if b.Commit != nil {
			out[b.Name] = b.Commit.ID
		}
	}
	return out, nil
}
