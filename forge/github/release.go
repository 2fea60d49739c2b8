package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/foureyes-dev/foureyes/bot"
)

// This file holds what the release-branch guard (package release) needs
// beyond bot.Forge. The guard's Forge interface uses only bot and builtin
// types, so that the adapters never import the guard.

// ChangesOfCommit lists the pull requests associated with a commit
// (GET commits/{sha}/pulls): for a commit on a release branch, the merged
// change it came from, if any. Each change is a summary (no files,
// commits or reviews): Ref.HeadSHA is the pull request's final head, State
// is "merged" for a merged one; mergedAt[i] is when changes[i] was merged
// (zero when it was not).
func (f *Forge) ChangesOfCommit(ctx context.Context, repo bot.Repo, sha string) ([]bot.Change, []time.Time, error) {
	c, err := f.client(repo.Installation)
	if err != nil {
		return nil, nil, err
	}
	var (
		out    []bot.Change
		merged []time.Time
	)
	opts := &gh.ListOptions{PerPage: perPage}
	for {
		prs, resp, err := c.PullRequests.ListPullRequestsWithCommit(ctx, repo.Owner(), repo.Name(), sha, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("github: pull requests of commit %s in %s: %w", short(sha), repo.FullName, err)
		}
		for _, pr := range prs {
			ch := bot.Change{
				Ref:     bot.ChangeRef{Forge: bot.GitHub, Repo: repo, Number: pr.GetNumber(), HeadSHA: pr.GetHead().GetSHA()},
				Title:   pr.GetTitle(),
				URL:     pr.GetHTMLURL(),
				Author:  userOf(pr.GetUser()),
				BaseRef: pr.GetBase().GetRef(),
				BaseSHA: pr.GetBase().GetSHA(),
				State:   pr.GetState(),
			}
			if pr.MergedAt != nil {
				ch.State = "merged"
			}
			out = append(out, ch)
			merged = append(merged, pr.GetMergedAt().Time)
			// The listing is as current as GET pulls/{n}: remembering it
			// saves that request when the guard then reads the change.
			f.remember(repo.FullName, pr.GetNumber(), prMeta{
				head: pr.GetHead().GetSHA(), headRef: pr.GetHead().GetRef(), headRepo: pr.GetHead().GetRepo().GetFullName(), baseRef: pr.GetBase().GetRef(), baseSHA: pr.GetBase().GetSHA(),
				title: pr.GetTitle(), url: pr.GetHTMLURL(), state: ch.State, draft: pr.GetDraft(),
				author: userOf(pr.GetUser()), commits: -1, changedFiles: -1, updated: pr.GetUpdatedAt().Time,
			})
		}
		if resp.NextPage == 0 {
			return out, merged, nil
		}
		opts.Page = resp.NextPage
	}
}

// Compare lists the commits in base...head, oldest first (completes
// truncated push payloads; the commits of a release tag range).
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
		out = append(out, pushCommits(raw)...)
		if resp.NextPage == 0 || len(raw) == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

func pushCommits(raw []*gh.RepositoryCommit) []bot.PushCommit {
	commits, _ := convertCommits(raw)
	out := make([]bot.PushCommit, 0, len(commits))
	for _, bc := range commits {
		out = append(out, bot.PushCommit{SHA: bc.SHA, Message: bc.Message, Author: bc.Author, Committer: bc.Committer, Time: bc.Time})
	}
	return out
}

// History lists up to limit commits reachable from sha, newest first
// (GET commits?sha=): the commits of a first release, which has no
// previous release tag to compare with.
func (f *Forge) History(ctx context.Context, repo bot.Repo, sha string, limit int) ([]bot.PushCommit, error) {
	c, err := f.client(repo.Installation)
	if err != nil {
		return nil, err
	}
	var out []bot.PushCommit
	opts := &gh.CommitsListOptions{SHA: sha, ListOptions: gh.ListOptions{PerPage: perPage}}
	for len(out) < limit {
		raw, resp, err := c.Repositories.ListCommits(ctx, repo.Owner(), repo.Name(), opts)
		if err != nil {
			return nil, fmt.Errorf("github: listing commits of %s from %s: %w", repo.FullName, short(sha), err)
		}
		out = append(out, pushCommits(raw)...)
		if resp.NextPage == 0 || len(raw) == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return out[:min(len(out), limit)], nil
}

// Tags returns the repository's tags: name -> commit SHA (GET tags).
func (f *Forge) Tags(ctx context.Context, repo bot.Repo) (map[string]string, error) {
	c, err := f.client(repo.Installation)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	opts := &gh.ListOptions{PerPage: perPage}
	for range maxTagPages {
		tags, resp, err := c.Repositories.ListTags(ctx, repo.Owner(), repo.Name(), opts)
		if err != nil {
			return nil, fmt.Errorf("github: listing tags of %s: %w", repo.FullName, err)
		}
		for _, t := range tags {
			out[t.GetName()] = t.GetCommit().GetSHA()
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
	return nil, fmt.Errorf("github: listing tags of %s: more than %d pages", repo.FullName, maxTagPages)
}

// maxTagPages bounds the tag listing (50,000 tags).
const maxTagPages = 500

// PublishCommit reports the release guard's verdict on a commit as a
// "foureyes" check run. ref is the branch or tag the verdict is about: it
// goes into the run's external ID, so a push flag and a tag report on the
// same commit stay two runs. priorID follows Publish's rules (update in
// place); bot.ReportInFlight says an earlier attempt may have created the
// run without recording its ID, so it is looked for before creating one.
func (f *Forge) PublishCommit(ctx context.Context, repo bot.Repo, ref, sha, title, markdown, detailsURL string, state bot.State, priorID string) (string, error) {
	out := checkOutput{title: title, summary: markdown, detailsURL: detailsURL, externalID: "release:" + repo.FullName + "@" + ref + "@" + sha}
	id, err := f.publishCheck(ctx, repo, sha, out, state, priorID)
	if err != nil {
		return "", fmt.Errorf("github: publishing check of %s at %s: %w", repo.FullName, short(sha), err)
	}
	return id, nil
}

// OpenIssue opens an issue (the release guard's alert) and returns its
// URL, which identifies it for FindIssue.
func (f *Forge) OpenIssue(ctx context.Context, repo bot.Repo, title, body string, labels []string) (string, error) {
	c, err := f.client(repo.Installation)
	if err != nil {
		return "", err
	}
	req := &gh.IssueRequest{Title: gh.String(title), Body: gh.String(truncate(body, maxSummary))}
	if len(labels) > 0 {
		req.Labels = &labels
	}
	// Not retried blindly on a 5xx: GitHub may have opened the issue before
	// failing. The guard records the attempt and finds the issue again by
	// the marker in its body (FindIssue) instead.
	is, resp, err := c.Issues.Create(withoutUnsafeRetry(ctx), repo.Owner(), repo.Name(), req)
	if err != nil && resp != nil && resp.StatusCode == http.StatusGone {
		// Issues are turned off (the create-issue operation documents 410
		// Gone): permanent, so the guard does not retry it.
		return "", fmt.Errorf("github: opening issue in %s: %w (%v)", repo.FullName, bot.ErrIssuesDisabled, err)
	}
	if err != nil {
		return "", fmt.Errorf("github: opening issue in %s: %w", repo.FullName, err)
	}
	return is.GetHTMLURL(), nil
}

// findIssuePages bounds FindIssue: the issue looked for was opened moments
// before a crash, so it is among the newest.
const findIssuePages = 3

// FindIssue returns the URL of the newest issue whose body contains marker
// ("" if none among the newest 300): it recovers an issue that was opened
// by an attempt that died before recording it.
func (f *Forge) FindIssue(ctx context.Context, repo bot.Repo, marker string) (string, error) {
	if marker == "" {
		return "", errors.New("github: FindIssue needs a marker")
	}
	c, err := f.client(repo.Installation)
	if err != nil {
		return "", err
	}
	opts := &gh.IssueListByRepoOptions{State: "all", Sort: "created", Direction: "desc", ListOptions: gh.ListOptions{PerPage: perPage}}
	for range findIssuePages {
		list, resp, err := c.Issues.ListByRepo(ctx, repo.Owner(), repo.Name(), opts)
		if err != nil {
			return "", fmt.Errorf("github: listing issues of %s: %w", repo.FullName, err)
		}
		for _, is := range list {
			if !is.IsPullRequest() && strings.Contains(is.GetBody(), marker) {
				return is.GetHTMLURL(), nil
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return "", nil
}

// IssueUpdate is a change to an issue; nil fields are left as they are.
type IssueUpdate struct {
	Title, Body *string
	State       *string // "open" or "closed"
	Labels      *[]string
}

// UpdateIssue edits an issue opened by OpenIssue (its number is the last
// segment of the URL OpenIssue returned; see IssueNumber).
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

// IssueNumber reads the issue number out of an issue URL.
func IssueNumber(url string) (int, bool) {
	n, err := strconv.Atoi(url[strings.LastIndexByte(url, '/')+1:])
	return n, err == nil && n > 0
}
