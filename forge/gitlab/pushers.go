package gitlab

import (
	"context"
	"fmt"
	"net/http"

	gl "github.com/xanzy/go-gitlab"

	"github.com/foureyes-dev/foureyes/bot"
)

// maxEventPages bounds how far back a project's push events are read
// (100 a page, newest first).
const maxEventPages = 10

// headSource records on c where its source branch is (HeadRef, and
// HeadRepo for a fork, whose path costs one request) and remembers whether
// HeadPushes can read the source project. A fork the token cannot read leaves
// c.PusherNote saying what would resolve it.
func (f *Forge) headSource(ctx context.Context, c *bot.Change, mr *gl.MergeRequest) error {
	c.HeadRef = mr.SourceBranch
	unreadable := false
	if mr.SourceProjectID != 0 && mr.TargetProjectID != 0 && mr.SourceProjectID != mr.TargetProjectID {
		p, _, err := f.client.Projects.GetProject(mr.SourceProjectID, nil, gl.WithContext(ctx))
		if st := httpStatus(err); st == http.StatusNotFound || st == http.StatusForbidden {
			c.PusherNote = fmt.Sprintf("the source branch is in the fork project %d, which foureyes' token cannot read (HTTP %d); give the foureyes user Reporter access to the fork (or add foureyes' webhook to it), or push the branch to %s, so that foureyes learns who pushed it",
				mr.SourceProjectID, st, c.Ref.Repo.FullName)
			unreadable = true
		} else if err != nil {
			return fmt.Errorf("gitlab: read source project %d of %s!%d: %w", mr.SourceProjectID, c.Ref.Repo.FullName, c.Ref.Number, err)
		} else {
			c.HeadRepo = p.PathWithNamespace
		}
	}
	f.rememberMR(c.Ref.Repo, c.Ref.Number, func(m *mrMemo) { m.sourceProject, m.forkUnreadable = forkOf(mr), unreadable })
	return nil
}

// HeadPushes fills c.Pushes with the pushes GitLab recorded to the merge
// request's source branch: the project events API
// (GET /projects/:id/events?action=pushed, newest first; each event's
// push_data names the ref, commit_from and commit_to, and author the
// account that pushed; https://docs.gitlab.com/api/events/#list-a-projects-visible-events).
// It implements bot.PushReader: the service asks only for a head whose
// pusher no push hook (or update event) named.
func (f *Forge) HeadPushes(ctx context.Context, c *bot.Change) error {
	key := mrKey(c.Ref.Repo, c.Ref.Number) + "@" + c.Ref.HeadSHA
	if m, ok := f.pushes.get(key); ok {
		c.Pushes = append(c.Pushes, m.pushes...)
		return nil
	}
	before := len(c.Pushes)
	if err := f.readPushes(ctx, c); err != nil {
		return err
	}
	if len(c.HeadPushers(c.Ref.HeadSHA)) > 0 {
		f.pushes.put(key, pushMemo{pushes: append([]bot.Push(nil), c.Pushes[before:]...)})
	}
	return nil
}

// pushMemo is what HeadPushes read for one head.
type pushMemo struct {
	pushes []bot.Push
}

func (f *Forge) readPushes(ctx context.Context, c *bot.Change) error {
	memo, _ := f.mrs.get(mrKey(c.Ref.Repo, c.Ref.Number))
	var source any = pid(c.Ref.Repo)
	switch {
	case memo.forkUnreadable:
		return nil // headSource said so in c.PusherNote
	case memo.sourceProject > 0:
		source = memo.sourceProject
	}
	if c.HeadRef == "" {
		c.PusherNote = "GitLab did not name the source branch, so foureyes cannot read who pushed it"
		return nil
	}
	ref := c.HeadRef
	commits := oldestFirst(c.Commits)
	for page := 1; page <= maxEventPages; page++ {
		evs, resp, err := f.client.Events.ListProjectVisibleEvents(source, &gl.ListProjectVisibleEventsOptions{
			ListOptions: gl.ListOptions{PerPage: perPage, Page: page},
			Action:      gl.Ptr(gl.PushedEventType),
		}, gl.WithContext(ctx))
		if st := httpStatus(err); st == http.StatusNotFound || st == http.StatusForbidden {
			c.PusherNote = fmt.Sprintf("GitLab's project events API is unavailable (HTTP %d) and no push hook named who pushed %s; add foureyes' webhook with push events, or push the branch again", st, ref)
			return nil
		} else if err != nil {
			return fmt.Errorf("gitlab: read push events of %s!%d: %w", c.Ref.Repo.FullName, c.Ref.Number, err)
		}
		for _, e := range evs {
			pd := e.PushData
			if pd.RefType != "branch" || pd.Ref != ref || pd.CommitTo == "" || pd.Action == "removed" {
				continue
			}
			login := e.AuthorUsername
			if login == "" {
				login = e.Author.Username
			}
			if login == "" {
				continue
			}
			u := bot.User{Login: login, ID: int64(e.AuthorID), Name: e.Author.Name, Bot: isTokenBot(login)}
			at := parseTime(e.CreatedAt)
			shas := bot.PushedCommits(commits, pd.CommitFrom, pd.CommitTo)
			if len(shas) == 0 && pd.CommitTo == c.Ref.HeadSHA {
				shas = []string{pd.CommitTo}
			}
			for _, sha := range shas {
				c.Pushes = append(c.Pushes, bot.Push{HeadSHA: sha, Pusher: u, At: at, Before: pd.CommitFrom, Via: bot.ViaEvents})
			}
		}
		if resp == nil || resp.NextPage == 0 {
			return nil
		}
	}
	return nil
}

// oldestFirst returns commits (GitLab lists a merge request's newest
// first) oldest first, the order bot.PushedCommits walks.
func oldestFirst(cs []bot.Commit) []bot.Commit {
	out := make([]bot.Commit, len(cs))
	for i := range cs {
		out[len(cs)-1-i] = cs[i]
	}
	return out
}
