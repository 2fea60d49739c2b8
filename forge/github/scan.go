package github

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v60/github"

	"github.com/foureyes-dev/foureyes/bot"
)

// This file holds what `foureyes scan` and a live `foureyes explain` need
// beyond the release guard: finding a repository's installation without a
// webhook delivery, and a branch's history in a window.

// ResolveRepo finds the App installation of a repository (GET
// /repos/{owner}/{repo}/installation, authenticated as the App with its
// JWT) and reads the repository with it (GET /repos/{owner}/{repo}): its
// ID, default branch and URL. A command-line run has no delivery to name
// the installation, so this is how it reads with the configured App.
//
// https://docs.github.com/en/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app
func (f *Forge) ResolveRepo(ctx context.Context, fullName string) (bot.Repo, error) {
	owner, name, ok := strings.Cut(fullName, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return bot.Repo{}, fmt.Errorf("github: repository %q is not OWNER/NAME", fullName)
	}
	atr := ghinstallation.NewAppsTransportFromPrivateKey(f.api, f.appID, f.key)
	atr.BaseURL = f.tokenBase
	app := gh.NewClient(&http.Client{Transport: atr})
	app.BaseURL = f.apiURL
	app.UserAgent = "foureyes"
	inst, _, err := app.Apps.FindRepositoryInstallation(ctx, owner, name)
	if err != nil {
		if isNotFound(err) {
			return bot.Repo{}, fmt.Errorf("github: the App is not installed on %s (or the repository does not exist): %w", fullName, err)
		}
		return bot.Repo{}, fmt.Errorf("github: finding the App installation of %s: %w", fullName, err)
	}
	c, err := f.client(inst.GetID())
	if err != nil {
		return bot.Repo{}, err
	}
	r, _, err := c.Repositories.Get(ctx, owner, name)
	if err != nil {
		return bot.Repo{}, fmt.Errorf("github: reading repository %s: %w", fullName, err)
	}
	return bot.Repo{
		FullName: r.GetFullName(), ID: r.GetID(), DefaultBranch: r.GetDefaultBranch(),
		Installation: inst.GetID(), URL: r.GetHTMLURL(),
	}, nil
}

// BranchCommits lists up to limit commits reachable from branch, newest
// first, committed at or after since (GET commits?sha=BRANCH&since=; the
// API filters on the commit date). See release.ScanForge.
//
// https://docs.github.com/en/rest/commits/commits#list-commits
func (f *Forge) BranchCommits(ctx context.Context, repo bot.Repo, branch string, since time.Time, limit int) ([]bot.PushCommit, error) {
	c, err := f.client(repo.Installation)
	if err != nil {
		return nil, err
	}
	var out []bot.PushCommit
	opts := &gh.CommitsListOptions{SHA: branch, ListOptions: gh.ListOptions{PerPage: perPage}}
	if !since.IsZero() {
		opts.Since = since.UTC()
	}
	// The listing is read once per scan and never again: caching it by
	// ETag would only hold memory.
	ctx = withoutETag(ctx)
	for len(out) < limit {
		raw, resp, err := c.Repositories.ListCommits(ctx, repo.Owner(), repo.Name(), opts)
		if err != nil {
			return nil, fmt.Errorf("github: listing commits of %s on %s: %w", repo.FullName, branch, err)
		}
		out = append(out, pushCommits(raw)...)
		if resp.NextPage == 0 || len(raw) == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return out[:min(len(out), limit)], nil
}
