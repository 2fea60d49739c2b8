package github

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/foureyes-dev/foureyes/bot"
)

// activity is one entry of GET /repos/{owner}/{repo}/activity, as the
// "activity" schema of GitHub's OpenAPI description defines it
// (operation repos/list-activities,
// https://docs.github.com/rest/repos/repos#list-repository-activities):
// id, before, after, ref, timestamp, activity_type, actor. The
// description's own example uses older names (pushed_at, push_type, pusher),
// so those are read too.
type activity struct {
	ID           int64     `json:"id"`
	Before       string    `json:"before"`
	After        string    `json:"after"`
	Ref          string    `json:"ref"`
	Timestamp    time.Time `json:"timestamp"`
	PushedAt     time.Time `json:"pushed_at"`
	ActivityType string    `json:"activity_type"`
	PushType     string    `json:"push_type"`
	Actor        *gh.User  `json:"actor"`
	Pusher       *gh.User  `json:"pusher"`
}

// maxActivityPages bounds how far back the activity of one head branch is
// read (100 entries a page, newest first).
const maxActivityPages = 10

// HeadPushes fills ch.Pushes with what GitHub recorded about the pushes to
// the head branch (repository activity API): who pushed each commit of the
// change, including pushes foureyes never received a delivery for. The
// request is conditional: when nothing was pushed since, GitHub answers 304,
// which costs nothing against the rate limit. A head in a repository the
// installation cannot read (a fork) leaves the pusher unknown, with
// ch.PusherNote saying so and what would resolve it.
// It implements bot.PushReader: the service asks only for a head whose
// pusher no push delivery named.
func (f *Forge) HeadPushes(ctx context.Context, ch *bot.Change) error {
	c, err := f.client(ch.Ref.Repo.Installation)
	if err != nil {
		return err
	}
	repo := ch.Ref.Repo
	headRepo := ch.HeadRepo
	if headRepo == "" {
		headRepo = repo.FullName
	}
	meta := prMeta{headRef: ch.HeadRef}
	if meta.headRef == "" {
		ch.PusherNote = "GitHub did not name the head branch, so foureyes cannot read who pushed it; re-run the check once the pull request is readable"
		return nil
	}
	owner, name, _ := strings.Cut(headRepo, "/")
	path := fmt.Sprintf("repos/%s/%s/activity", url.PathEscape(owner), url.PathEscape(name))
	q := url.Values{"ref": {"refs/heads/" + meta.headRef}, "per_page": {"100"}}
	for page := 0; page < maxActivityPages; page++ {
		req, err := c.NewRequest(http.MethodGet, path+"?"+q.Encode(), nil)
		if err != nil {
			return fmt.Errorf("github: activity request: %w", err)
		}
		var acts []activity
		resp, err := c.Do(ctx, req, &acts)
		switch st := statusOf(err); {
		case (st == http.StatusNotFound || st == http.StatusForbidden) && ch.HeadRepo != "":
			ch.PusherNote = fmt.Sprintf("the head branch is in the fork %s, which the foureyes App cannot read (HTTP %d); install foureyes on %s, or push the branch to %s, so that foureyes learns who pushed it",
				headRepo, st, headRepo, repo.FullName)
			return nil
		case st == http.StatusNotFound || st == http.StatusForbidden:
			ch.PusherNote = fmt.Sprintf("GitHub's repository activity API is unavailable for %s (HTTP %d) and no push delivery named the pusher; redeliver the push event of %s or push the branch again",
				headRepo, st, meta.headRef)
			return nil
		case err != nil:
			return fmt.Errorf("github: reading who pushed %s of %s: %w", meta.headRef, headRepo, err)
		}
		for _, a := range acts {
			notePush(ch, a)
		}
		if resp.After == "" {
			return nil
		}
		q.Set("after", resp.After)
	}
	return nil
}

// notePush adds an activity entry that moved the head branch to a commit of
// the change: its actor pushed that commit and those it brought.
func notePush(ch *bot.Change, a activity) {
	kind := a.ActivityType
	if kind == "" {
		kind = a.PushType
	}
	switch kind {
	case "push", "force_push", "branch_creation", "normal", "force":
	default:
		return // deletions and merges into this ref push no commit of the change
	}
	actor := a.Actor
	if actor == nil {
		actor = a.Pusher
	}
	if actor == nil || actor.GetLogin() == "" {
		return
	}
	at := a.Timestamp
	if at.IsZero() {
		at = a.PushedAt
	}
	u := userOf(actor)
	u.Bot = u.Bot || strings.HasSuffix(u.Login, "[bot]")
	shas := bot.PushedCommits(ch.Commits, a.Before, a.After)
	if len(shas) == 0 && a.After == ch.Ref.HeadSHA {
		shas = []string{a.After}
	}
	for _, sha := range shas {
		ch.Pushes = append(ch.Pushes, bot.Push{HeadSHA: sha, Pusher: u, At: at, Before: a.Before, Via: bot.ViaActivity})
	}
}
