package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Who pushed a change is taken from what the forge recorded about each push
// (issue 10), never from who opened the change:
//
//   - push deliveries (GitHub "push", GitLab "Push Hook") name the account
//     that pushed and the commits it brought; the service records them per
//     repository and commit SHA (RecordPush), because a push to a branch
//     does not say which change it belongs to;
//   - GitHub pull_request.synchronize and GitLab "update" with oldrev name
//     the pusher of the change's new head (recorded per change);
//   - pushes foureyes did not see (installed later, lost delivery) are read
//     by the adapter from the forge's own record (GitHub's repository
//     activity API, GitLab's project push events) into Change.Pushes.
//
// Pushers are a history: a record is added per (commit, person) and never
// replaced, so whoever ever pushed a commit of the change stays one of its
// pushers (bob pushes H2, alice H3 and force-pushes back to H2: bob is still
// a pusher of H2).

// How a push became known (Push.Via).
const (
	ViaPush        = "push"        // a push delivery
	ViaSynchronize = "synchronize" // a change event reporting a new head
	ViaActivity    = "activity"    // GitHub's repository activity API
	ViaEvents      = "events"      // GitLab's project events API
)

// factPushed is the per-repository scope suffix of the pushes of one commit.
const factPushed = "pushed"

// PushScope is the store scope of the pushes recorded for one commit of a
// repository (head repository for changes from forks).
func PushScope(forge ForgeName, repo, sha string) string {
	return string(forge) + "/" + repo + "@" + sha + "/" + factPushed
}

// pushRecord is the stored form of one push of one commit.
type pushRecord struct {
	Login  string `json:"login"`
	ID     int64  `json:"id,omitempty"`
	Bot    bool   `json:"bot,omitempty"`
	Via    string `json:"via,omitempty"`
	Before string `json:"before,omitempty"`
}

// RecordPush remembers that p.Pusher pushed sha in repo. The key is the
// pusher's login, so the same person pushing the same commit twice is one
// record and another person pushing it is another: nothing is overwritten.
func RecordPush(ctx context.Context, st Store, forge ForgeName, repo, sha string, p Push) error {
	if !p.Pusher.Known() || sha == "" {
		return nil
	}
	raw, err := json.Marshal(pushRecord{Login: p.Pusher.Login, ID: p.Pusher.ID, Bot: p.Pusher.Bot, Via: p.Via, Before: p.Before})
	if err != nil {
		return fmt.Errorf("encode push of %s: %w", shortSHA(sha), err)
	}
	if err := st.PutFact(ctx, PushScope(forge, repo, sha), strings.ToLower(p.Pusher.Login), string(raw)); err != nil {
		return fmt.Errorf("record push of %s by %s: %w", shortSHA(sha), p.Pusher.Login, err)
	}
	return nil
}

// maxRecordedPushCommits bounds the per-commit records one push delivery
// writes (GitHub's push payload lists up to 2,048 commits).
const maxRecordedPushCommits = 250

// recordPushEvent records the pusher of every commit a push delivery brought.
func (s *Service) recordPushEvent(ctx context.Context, ev Event) error {
	p := ev.Push
	if p == nil || p.Deleted || !strings.HasPrefix(p.Ref, "refs/heads/") || !p.Pusher.Known() {
		return nil
	}
	push := Push{Pusher: User{Login: p.Pusher.Login, ID: p.Pusher.ID, Bot: p.Pusher.Bot}, Via: ViaPush, Before: p.Before}
	shas := []string{p.After}
	commits := p.Commits
	if len(commits) > maxRecordedPushCommits {
		// A change of more commits cannot be judged anyway (GitHub lists
		// at most 250 of a pull request, and foureyes fails closed past
		// that); the newest are the ones a change can contain.
		commits = commits[len(commits)-maxRecordedPushCommits:]
	}
	for _, c := range commits {
		if c.SHA != p.After {
			shas = append(shas, c.SHA)
		}
	}
	for _, sha := range shas {
		if strings.Trim(sha, "0") == "" {
			continue
		}
		if err := RecordPush(ctx, s.Store, ev.Forge, ev.Repo.FullName, sha, push); err != nil {
			return err
		}
	}
	return nil
}

// PushedCommits returns the commits of a change (oldest first) that one
// push from before to after brought: after itself and the commits listed
// before it back to (not including) before. A push whose after is not a
// commit of the change brought none of them.
func PushedCommits(commits []Commit, before, after string) []string {
	j := -1
	for i := range commits {
		if commits[i].SHA == after {
			j = i
		}
	}
	if j < 0 {
		return nil
	}
	out := []string{after}
	for k := j - 1; k >= 0 && commits[k].SHA != before; k-- {
		out = append(out, commits[k].SHA)
	}
	return out
}

// HeadPushers returns everyone known to have pushed head.
func (c *Change) HeadPushers(head string) []User {
	var out []User
	for _, p := range c.Pushes {
		if p.HeadSHA == head && p.Pusher.Known() && !containsUser(out, p.Pusher) {
			out = append(out, p.Pusher)
		}
	}
	return out
}

func containsUser(us []User, u User) bool {
	for _, x := range us {
		if x.Same(u) {
			return true
		}
	}
	return false
}

func (c *Change) hasPush(sha string, u User) bool {
	for _, p := range c.Pushes {
		if p.HeadSHA == sha && p.Pusher.Same(u) {
			return true
		}
	}
	return false
}

// completePushers adds the pushes the service recorded to those the adapter
// read from the forge: the change's own history (every head it ever had,
// kept even when force-pushed away: the stricter side) and, per commit of
// the change, the pushes recorded from push deliveries. It returns the heads
// of the change's own history.
func completePushers(ctx context.Context, st FactReader, c *Change) (map[string]bool, error) {
	own, err := st.Facts(ctx, FactScope(c.Ref, factPusher))
	if err != nil {
		return nil, fmt.Errorf("read pushers: %w", err)
	}
	heads := map[string]bool{}
	keys := make([]string, 0, len(own))
	for k := range own {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		// "sha/login" (a history); a bare "sha" key is the older format,
		// whose value is the login.
		sha, _, _ := strings.Cut(k, "/")
		u := User{Login: own[k]}
		heads[sha] = true
		if u.Known() && !c.hasPush(sha, u) {
			c.Pushes = append(c.Pushes, Push{HeadSHA: sha, Pusher: u, Via: ViaSynchronize})
		}
	}
	for _, sha := range pushedSHAs(c) {
		recs, err := st.Facts(ctx, PushScope(c.Ref.Forge, pushRepo(c), sha))
		if err != nil {
			return nil, fmt.Errorf("read pushes of %s: %w", shortSHA(sha), err)
		}
		logins := make([]string, 0, len(recs))
		for l := range recs {
			logins = append(logins, l)
		}
		sort.Strings(logins)
		for _, l := range logins {
			var r pushRecord
			if err := json.Unmarshal([]byte(recs[l]), &r); err != nil || r.Login == "" {
				return nil, fmt.Errorf("%w: push of %s by %s", ErrUnreadableFact, shortSHA(sha), l)
			}
			u := User{Login: r.Login, ID: r.ID, Bot: r.Bot}
			if !c.hasPush(sha, u) {
				c.Pushes = append(c.Pushes, Push{HeadSHA: sha, Pusher: u, Via: r.Via, Before: r.Before})
			} else if u.Bot {
				// Another record of this push (a merge request event) may not
				// have said the pusher is a bot; this one does.
				for i := range c.Pushes {
					if c.Pushes[i].HeadSHA == sha && c.Pushes[i].Pusher.Same(u) {
						c.Pushes[i].Pusher.Bot = true
					}
				}
			}
		}
	}
	return heads, nil
}

// pushRepo is the repository whose push records tell who pushed c's
// commits: its head's (a fork's, for a change from a fork).
func pushRepo(c *Change) string {
	if c.HeadRepo != "" {
		return c.HeadRepo
	}
	return c.Ref.Repo.FullName
}

// pushedSHAs are the commits whose pushers count for c: its head and each
// of its commits.
func pushedSHAs(c *Change) []string {
	shas := make([]string, 0, len(c.Commits)+1)
	if c.Ref.HeadSHA != "" {
		shas = append(shas, c.Ref.HeadSHA)
	}
	for i := range c.Commits {
		if sha := c.Commits[i].SHA; sha != "" && sha != c.Ref.HeadSHA {
			shas = append(shas, sha)
		}
	}
	return shas
}

// recordChangePush records the pusher a change event names for its new
// head in the change's history (the head may live in a fork, whose
// per-commit records are the fork's).
func (s *Service) recordChangePush(b *factBatch, ev Event, ref ChangeRef) {
	login := ev.Sender.Login
	b.put(FactScope(ref, factPusher), ref.HeadSHA+"/"+strings.ToLower(login), login)
}

// ReadPushers asks the forge's own record who pushed the head when
// neither the adapter nor the stored deliveries know (f need only
// implement PushReader). It appends what it learns to c.Pushes and returns
// it, for RecordPushes. It reads only.
func ReadPushers(ctx context.Context, f any, c *Change) ([]Push, error) {
	pr, ok := f.(PushReader)
	if !ok || c.Ref.HeadSHA == "" || len(c.HeadPushers(c.Ref.HeadSHA)) > 0 || c.EvalError != "" {
		return nil, nil
	}
	before := len(c.Pushes)
	if err := pr.HeadPushes(ctx, c); err != nil {
		return nil, fmt.Errorf("read who pushed %s: %w", shortSHA(c.Ref.HeadSHA), err)
	}
	return slices.Clone(c.Pushes[before:]), nil
}

// RecordPushes records pushes ReadPushers learned, so that the history
// survives the forge's retention and later evaluations need not ask again.
func RecordPushes(ctx context.Context, st Store, c *Change, pushes []Push) error {
	for _, p := range pushes {
		if err := RecordPush(ctx, st, c.Ref.Forge, pushRepo(c), p.HeadSHA, p); err != nil {
			return err
		}
	}
	return nil
}
