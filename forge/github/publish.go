package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	gh "github.com/google/go-github/v60/github"

	"github.com/foureyes-dev/foureyes/bot"
)

// CheckName is the name of foureyes' check run.
const CheckName = "foureyes"

// maxSummary is GitHub's limit on a check run's output.summary.
const maxSummary = 65535

// completedSuffix marks a PriorID whose check run is completed. GitHub does
// not reopen a completed check run (PATCHing status in_progress leaves it
// completed with its old conclusion), so going back to pending on the same
// head needs a new run; branch protection then uses the newest run of the
// name. The ID therefore remembers whether the run was completed.
const completedSuffix = ":completed"

// checkOutput is what one check run shows.
type checkOutput struct {
	title, summary, detailsURL, externalID string
}

// Publish reports a verdict as the "foureyes" check run on the head (see
// bot.Forge): a PATCH of r.PriorID when given, else a POST; with
// bot.ReportInFlight, the run an interrupted attempt may have created is
// looked up first. The returned ID is the run's ID, suffixed ":completed"
// once it is completed.
func (f *Forge) Publish(ctx context.Context, r bot.Report) (string, error) {
	out := checkOutput{title: r.Title, summary: r.Markdown, detailsURL: r.DetailsURL, externalID: r.Ref.Key()}
	id, err := f.publishCheck(ctx, r.Ref.Repo, r.Ref.HeadSHA, out, r.Verdict.State, r.PriorID)
	if err != nil {
		return "", fmt.Errorf("github: publishing check of %s at %s: %w", r.Ref.Key(), short(r.Ref.HeadSHA), err)
	}
	return id, nil
}

func parsePriorID(s string) (id int64, completed bool) {
	s, completed = strings.CutSuffix(s, completedSuffix)
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, false
	}
	return id, completed
}

func formatID(run *gh.CheckRun) string {
	s := strconv.FormatInt(run.GetID(), 10)
	if run.GetStatus() == "completed" {
		s += completedSuffix
	}
	return s
}

// statusOfState maps a verdict onto check run status and conclusion. Any
// state other than success or pending is a failure: fail closed.
func statusOfState(s bot.State) (status, conclusion string) {
	switch s {
	case bot.Success:
		return "completed", "success"
	case bot.PendingState:
		return "in_progress", ""
	default:
		return "completed", "failure"
	}
}

func (f *Forge) publishCheck(ctx context.Context, repo bot.Repo, sha string, out checkOutput, state bot.State, priorID string) (string, error) {
	c, err := f.client(repo.Installation)
	if err != nil {
		return "", err
	}
	if sha == "" {
		return "", errors.New("no head SHA")
	}
	if priorID == bot.ReportInFlight {
		// An earlier attempt may have created the run and died before its
		// ID was recorded: adopt that run rather than create a second one.
		run, err := f.findCheck(ctx, c, repo, sha, out.externalID, 0)
		if err != nil {
			return "", fmt.Errorf("looking for an earlier check run on %s: %w", short(sha), err)
		}
		priorID = ""
		if run != nil {
			priorID = formatID(run)
		}
	}
	status, conclusion := statusOfState(state)
	title := oneLine(out.title)
	if title == "" {
		title = "foureyes"
	}
	output := &gh.CheckRunOutput{Title: gh.String(title), Summary: gh.String(truncate(out.summary, maxSummary))}
	prior, priorCompleted := parsePriorID(priorID)
	if prior != 0 && !(priorCompleted && status != "completed") {
		upd := gh.UpdateCheckRunOptions{Name: CheckName, Status: gh.String(status), Output: output, ExternalID: gh.String(out.externalID)}
		if out.detailsURL != "" {
			upd.DetailsURL = gh.String(out.detailsURL)
		}
		if conclusion != "" {
			upd.Conclusion = gh.String(conclusion)
			upd.CompletedAt = &gh.Timestamp{Time: f.now()}
		}
		run, _, err := c.Checks.UpdateCheckRun(ctx, repo.Owner(), repo.Name(), prior, upd)
		if err == nil {
			return formatID(run), nil
		}
		if !isNotFound(err) {
			return "", fmt.Errorf("updating check run %d: %w", prior, err)
		}
		// The run is gone (GitHub deletes runs beyond 1,000 per suite):
		// create a new one.
	}
	opts := gh.CreateCheckRunOptions{
		Name:       CheckName,
		HeadSHA:    sha,
		Status:     gh.String(status),
		ExternalID: gh.String(out.externalID),
		StartedAt:  &gh.Timestamp{Time: f.now()},
		Output:     output,
	}
	if out.detailsURL != "" {
		opts.DetailsURL = gh.String(out.detailsURL)
	}
	if conclusion != "" {
		opts.Conclusion = gh.String(conclusion)
		opts.CompletedAt = &gh.Timestamp{Time: f.now()}
	}
	return f.createCheck(ctx, c, repo, opts, prior)
}

// createCheck POSTs a check run without blind retries: when GitHub fails
// with a 5xx or the connection breaks, the run may exist anyway, so look
// for it (ours, this name, this external ID, not the run being replaced)
// before trying again. That keeps one run per head even across failures.
func (f *Forge) createCheck(ctx context.Context, c *gh.Client, repo bot.Repo, opts gh.CreateCheckRunOptions, replaced int64) (string, error) {
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		if attempt > 1 {
			if err := f.sleep(ctx, time.Duration(attempt-1)*time.Second); err != nil {
				return "", err
			}
			if run, err := f.findCheck(ctx, c, repo, opts.HeadSHA, opts.GetExternalID(), replaced); err != nil {
				return "", fmt.Errorf("looking for a check run after %w: %w", lastErr, err)
			} else if run != nil {
				return f.adoptCheck(ctx, c, repo, run, opts)
			}
		}
		run, _, err := c.Checks.CreateCheckRun(withoutUnsafeRetry(ctx), repo.Owner(), repo.Name(), opts)
		if err == nil {
			return formatID(run), nil
		}
		if s := statusOf(err); s != 0 && s < http.StatusInternalServerError {
			return "", fmt.Errorf("creating check run: %w", err)
		}
		lastErr = err
	}
	return "", fmt.Errorf("creating check run: %w", lastErr)
}

func (f *Forge) findCheck(ctx context.Context, c *gh.Client, repo bot.Repo, sha, externalID string, replaced int64) (*gh.CheckRun, error) {
	runs, _, err := c.Checks.ListCheckRunsForRef(ctx, repo.Owner(), repo.Name(), sha, &gh.ListCheckRunsOptions{
		CheckName: gh.String(CheckName), AppID: gh.Int64(f.appID), Filter: gh.String("all"),
		ListOptions: gh.ListOptions{PerPage: perPage},
	})
	if err != nil {
		return nil, err
	}
	for _, r := range runs.CheckRuns {
		if r.GetApp().GetID() == f.appID && r.GetExternalID() == externalID && r.GetID() != replaced {
			return r, nil
		}
	}
	return nil, nil
}

// adoptCheck makes a run found after a failed POST say what the POST said.
func (f *Forge) adoptCheck(ctx context.Context, c *gh.Client, repo bot.Repo, run *gh.CheckRun, o gh.CreateCheckRunOptions) (string, error) {
	upd := gh.UpdateCheckRunOptions{Name: o.Name, Status: o.Status, Conclusion: o.Conclusion, CompletedAt: o.CompletedAt,
		Output: o.Output, ExternalID: o.ExternalID, DetailsURL: o.DetailsURL}
	r, _, err := c.Checks.UpdateCheckRun(ctx, repo.Owner(), repo.Name(), run.GetID(), upd)
	if err != nil {
		return "", fmt.Errorf("updating check run %d: %w", run.GetID(), err)
	}
	return formatID(r), nil
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return truncate(s, 1000)
}

// truncate cuts s to at most n bytes on a rune boundary, saying so. Bytes
// bound characters, so the result fits GitHub's character limits.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const note = "\n\n… (truncated; see the details page)"
	cut := n - len(note)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + note
}

// OpenChanges lists the open pull requests whose base is branch.
func (f *Forge) OpenChanges(ctx context.Context, repo bot.Repo, branch string) ([]bot.ChangeRef, error) {
	c, err := f.client(repo.Installation)
	if err != nil {
		return nil, err
	}
	var out []bot.ChangeRef
	opts := &gh.PullRequestListOptions{State: "open", Base: branch, ListOptions: gh.ListOptions{PerPage: perPage}}
	for {
		prs, resp, err := c.PullRequests.List(ctx, repo.Owner(), repo.Name(), opts)
		if err != nil {
			return nil, fmt.Errorf("github: listing open pull requests of %s (base %q): %w", repo.FullName, branch, err)
		}
		for _, pr := range prs {
			out = append(out, bot.ChangeRef{Forge: bot.GitHub, Repo: repo, Number: pr.GetNumber(), HeadSHA: pr.GetHead().GetSHA()})
			f.remember(repo.FullName, pr.GetNumber(), prMeta{
				head: pr.GetHead().GetSHA(), headRef: pr.GetHead().GetRef(), headRepo: pr.GetHead().GetRepo().GetFullName(), baseRef: pr.GetBase().GetRef(), baseSHA: pr.GetBase().GetSHA(),
				title: pr.GetTitle(), url: pr.GetHTMLURL(), state: pr.GetState(), draft: pr.GetDraft(),
				author: userOf(pr.GetUser()), commits: -1, changedFiles: -1, updated: pr.GetUpdatedAt().Time,
			})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}
