package github

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	gh "github.com/google/go-github/v60/github"

	"github.com/foureyes-dev/foureyes/bot"
)

// commentPayload is the part of an issue_comment delivery foureyes reads.
// GitHub sends it for comments on issues and pull requests alike; a pull
// request's issue carries a "pull_request" object ("Webhook events and
// payloads: issue_comment"; the issue object of the REST API documents
// pull_request as present for pull requests only).
type commentPayload struct {
	Issue *struct {
		Number      int             `json:"number"`
		PullRequest *jsontext.Value `json:"pull_request"`
	} `json:"issue"`
	Comment *struct {
		ID                    int64     `json:"id"`
		Body                  string    `json:"body"`
		HTMLURL               string    `json:"html_url"`
		User                  pUser     `json:"user"`
		CreatedAt             time.Time `json:"created_at"`
		PerformedViaGitHubApp *struct {
			ID int64 `json:"id"`
		} `json:"performed_via_github_app"`
	} `json:"comment"`
}

// decodeComment turns a "/foureyes break-glass ..." comment on a pull
// request into bot.EventBreakGlass. Everything else (other comments,
// comments on issues, edits and deletions, foureyes' own replies) needs no
// work. The payload names no head: the service binds the vote to the pull
// request's current head.
func (f *Forge) decodeComment(ev bot.Event, action string, body []byte) ([]bot.Event, error) {
	if action != "created" {
		return nil, bot.ErrIgnored
	}
	var p commentPayload
	if err := unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("github: decoding issue_comment payload: %w", err)
	}
	if p.Issue == nil || p.Comment == nil {
		return nil, errors.New("github: issue_comment payload has no issue or comment")
	}
	c := p.Comment
	if p.Issue.PullRequest == nil || string(*p.Issue.PullRequest) == "null" || p.Issue.Number <= 0 {
		return nil, bot.ErrIgnored
	}
	if strings.Contains(c.Body, bot.ReplyMarker) || (c.PerformedViaGitHubApp != nil && c.PerformedViaGitHubApp.ID == f.appID) {
		return nil, bot.ErrIgnored
	}
	cmd, ok := bot.ParseBreakGlass(c.Body)
	if !ok {
		return nil, bot.ErrIgnored
	}
	cmd.CommentID, cmd.Author, cmd.At, cmd.URL = c.ID, c.User.user(), c.CreatedAt, c.HTMLURL
	ev.Kind = bot.EventBreakGlass
	ev.Change = &bot.ChangeEvent{Number: p.Issue.Number}
	ev.BreakGlass = &cmd
	return []bot.Event{ev}, nil
}

// Comment posts a comment on a pull request (bot.Commenter): POST
// /repos/{owner}/{repo}/issues/{number}/comments ("Create an issue
// comment"; pull requests are issues to this endpoint).
func (f *Forge) Comment(ctx context.Context, ref bot.ChangeRef, body string) error {
	c, err := f.client(ref.Repo.Installation)
	if err != nil {
		return err
	}
	// Not retried blindly on a 5xx: GitHub may have posted it already.
	if _, _, err := c.Issues.CreateComment(withoutUnsafeRetry(ctx), ref.Repo.Owner(), ref.Repo.Name(), ref.Number,
		&gh.IssueComment{Body: gh.String(truncate(body, maxSummary))}); err != nil {
		return fmt.Errorf("github: commenting on %s: %w", ref.Key(), err)
	}
	return nil
}

// People looks up the permission and team memberships of people who did
// not review (bot.PeopleLookup), with the same cached calls as reviewers.
func (f *Forge) People(ctx context.Context, repo bot.Repo, users []bot.User, teams []string) (map[string]bot.ReviewerFacts, error) {
	c, err := f.client(repo.Installation)
	if err != nil {
		return nil, err
	}
	reviews := make([]bot.Review, 0, len(users))
	for _, u := range users {
		reviews = append(reviews, bot.Review{Reviewer: u, State: bot.Approved})
	}
	return f.reviewerFacts(ctx, c, repo, reviews, teams)
}

var (
	_ bot.Commenter    = (*Forge)(nil)
	_ bot.PeopleLookup = (*Forge)(nil)
	_ bot.Issuer       = (*Forge)(nil)
)
