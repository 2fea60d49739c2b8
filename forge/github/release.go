package github

import (
	"context"
	"fmt"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/foureyes-dev/foureyes/bot"
)

// CommitChange is a pull request that contains a commit, as the release
// guard needs it.
type CommitChange struct {
	Ref            bot.ChangeRef // HeadSHA: the pull request's (final) head
	BaseRef        string
	Author         bot.User
	State          string // open or closed
	Merged         bool
	MergedAt       time.Time
	MergeCommitSHA string
}

// ChangesOfCommit lists the pull requests associated with a commit
// (GET commits/{sha}/pulls): for a commit on a release branch, the merged
// change it came from, if any.
func (f *Forge) ChangesOfCommit(ctx context.Context, repo bot.Repo, sha string) ([]CommitChange, error) {
	c, err := f.client(repo.Installation)
	if err != nil {
		return nil, err
	}
	var out []CommitChange
	opts := &gh.ListOptions{PerPage: perPage}
	for {
		prs, resp, err := c.PullRequests.ListPullRequestsWithCommit(ctx, repo.Owner(), repo.Name(), sha, opts)
		if err != nil {
			return nil, fmt.Errorf("github: pull requests of commit %s in %s: %w", short(sha), repo.FullName, err)
		}
		for _, pr := range prs {
			out = append(out, CommitChange{
				Ref:            bot.ChangeRef{Forge: bot.GitHub, Repo: repo, Number: pr.GetNumber(), HeadSHA: pr.GetHead().GetSHA()},
				BaseRef:        pr.GetBase().GetRef(),
				Author:         userOf(pr.GetUser()),
				State:          pr.GetState(),
				Merged:         pr.MergedAt != nil,
				MergedAt:       pr.GetMergedAt().Time,
				MergeCommitSHA: pr.GetMergeCommitSHA(),
			})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// Compare lists the commits in base...head, oldest first (completes
// truncated push payloads).
func (f *Forge) Compare(ctx context.Context, repo bot.Repo, base, head string) ([]bot.PushCommit, error) {
	c, err := f.client(repo.Installation)
	if err != nil {
		return nil, err
	}
	var out []bot.PushCommit
	opts := &gh.ListOptions{PerPage: perPage}
	for {
		cmp, resp, err := c.Repositories.CompareCommits(ctx, repo.Owner(), repo.Name(), base, head, opts)
		if err != nil {
			return nil, fmt.Errorf("github: comparing %s...%s in %s: %w", short(base), short(head), repo.FullName, err)
		}
		raw := cmp.Commits
		commits, _ := convertCommits(raw)
		for _, bc := range commits {
			out = append(out, bot.PushCommit{SHA: bc.SHA, Message: bc.Message, Author: bc.Author, Committer: bc.Committer, Time: bc.Time})
		}
		if resp.NextPage == 0 || len(raw) == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// OpenIssue opens an issue (the release guard's alert) and returns its
// number.
func (f *Forge) OpenIssue(ctx context.Context, repo bot.Repo, title, body string, labels []string) (int, error) {
	c, err := f.client(repo.Installation)
	if err != nil {
		return 0, err
	}
	req := &gh.IssueRequest{Title: gh.String(title), Body: gh.String(truncate(body, maxSummary))}
	if len(labels) > 0 {
		req.Labels = &labels
	}
	is, _, err := c.Issues.Create(ctx, repo.Owner(), repo.Name(), req)
	if err != nil {
		return 0, fmt.Errorf("github: opening issue in %s: %w", repo.FullName, err)
	}
	return is.GetNumber(), nil
}

// IssueUpdate is a change to an issue; nil fields are left as they are.
type IssueUpdate struct {
	Title, Body *string
	State       *string // "open" or "closed"
	Labels      *[]string
}

// UpdateIssue edits an issue opened by OpenIssue.
func (f *Forge) UpdateIssue(ctx context.Context, repo bot.Repo, number int, u IssueUpdate) error {
	c, err := f.client(repo.Installation)
	if err != nil {
		return err
	}
	req := &gh.IssueRequest{Title: u.Title, State: u.State, Labels: u.Labels}
	if u.Body != nil {
		req.Body = gh.String(truncate(*u.Body, maxSummary))
	}
	if _, _, err := c.Issues.Edit(ctx, repo.Owner(), repo.Name(), number, req); err != nil {
		return fmt.Errorf("github: updating issue %s#%d: %w", repo.FullName, number, err)
	}
	return nil
}
