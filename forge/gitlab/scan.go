package gitlab

import (
	"context"
	"fmt"
	"time"

	gl "github.com/xanzy/go-gitlab"

	"github.com/foureyes-dev/foureyes/bot"
)

// This file holds what `foureyes scan` and a live `foureyes explain` need
// beyond the release guard: a project named on the command line, and a
// branch's history in a window.

// ResolveRepo reads a project by its full path (GET /projects/:id): its
// numeric ID (stable across renames), default branch and URL.
//
// https://docs.gitlab.com/ee/api/projects.html#get-a-single-project
func (f *Forge) ResolveRepo(ctx context.Context, fullPath string) (bot.Repo, error) {
	p, _, err := f.client.Projects.GetProject(fullPath, &gl.GetProjectOptions{}, gl.WithContext(ctx))
	if err != nil {
		return bot.Repo{}, fmt.Errorf("gitlab: reading project %s: %w", fullPath, err)
	}
	return bot.Repo{FullName: p.PathWithNamespace, ID: int64(p.ID), DefaultBranch: p.DefaultBranch, URL: p.WebURL}, nil
}

// BranchCommits lists up to limit commits reachable from branch, newest
// first, committed at or after since (GET repository/commits?ref_name=
// &since=). See release.ScanForge.
//
// https://docs.gitlab.com/ee/api/commits.html#list-repository-commits
func (f *Forge) BranchCommits(ctx context.Context, repo bot.Repo, branch string, since time.Time, limit int) ([]bot.PushCommit, error) {
	var out []bot.PushCommit
	page := 1
	opts := &gl.ListCommitsOptions{RefName: gl.Ptr(branch)}
	if !since.IsZero() {
		opts.Since = gl.Ptr(since.UTC())
	}
	for len(out) < limit {
		opts.ListOptions = gl.ListOptions{PerPage: perPage, Page: page}
		list, resp, err := f.client.Commits.ListCommits(pid(repo), opts, gl.WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("gitlab: list commits of %s on %s: %w", repo.FullName, branch, err)
		}
		out = append(out, pushCommits(list)...)
		if resp == nil || resp.NextPage == 0 || resp.NextPage <= page || len(list) == 0 {
			break
		}
		page = resp.NextPage
	}
	return out[:min(len(out), limit)], nil
}
