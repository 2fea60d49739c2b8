package gitlab

import (
	"context"
	"strconv"
	"strings"
	"time"

	gl "github.com/xanzy/go-gitlab"

	"github.com/foureyes-dev/foureyes/bot"
)

// What this file saves, and what it must not (issue 16, "GitLab at its
// floor"; the request lists are in docs/benchmarks.md):
//
//   - memberships (project access level, group membership) are reused for
//     MembershipTTL, one minute by default. GitLab sends project webhooks no
//     event when a member is removed or demoted, so a removed member's
//     approval can count for at most that long. An approval given after the
//     lookup (approved_at) is judged on a fresh one. Only found memberships
//     are kept: a "not a member" answer is asked again, so a newly added
//     member is never held back by the cache.
//   - a commit e-mail is first compared with the merge request author's
//     full user (cached by ID, Config.CacheTTL): the same exact match on the
//     full user's e-mail that the search path makes, one request instead of
//     two. GitLab e-mails belong to one account, so the result is the same.
//   - the token's own user is only asked for when there is something to tell
//     apart by author: a "foureyes" status on the head, or a note on the
//     merge request (user_notes_count is 0 on a merge request without
//     notes, so foureyes' note cannot be there).
//
// Never cached across evaluations: the merge request (head, diff refs,
// target branch) and its approvals. Each can change without an event
// foureyes is sure to receive. The head's statuses are read unless they
// cannot change the outcome (statusread.go); the target branch's policy is
// reused by the domain until a push to the branch is recorded
// (bot/policycache.go), not here. Conditional requests do not help here: GitLab's REST answers
// carry weak ETags, but If-None-Match is not answered with 304 on API calls
// (https://gitlab.com/gitlab-org/gitlab/-/issues/14357, "Support caching
// for API requests": "GitLab ignores If-None-Match headers on API calls"),
// and GitLab's rate limits count authenticated API requests per user
// (https://docs.gitlab.com/administration/settings/user_and_ip_rate_limits),
// so a 304 would cost the same budget. The fake therefore answers none.

// defaultMembershipTTL bounds how long a member removed on GitLab can still
// count: GitLab sends project hooks no member event.
const defaultMembershipTTL = time.Minute

// membership is a found project or group membership.
type membership struct {
	level gl.AccessLevelValue
	state string
}

func memberKey(scope string, id int) string { return scope + "#" + strconv.Itoa(id) }

// projectMember returns the user's access level on the project (inherited
// and invited memberships included); found is false when GitLab says the
// user is not a member.
//
// A membership stored before notBefore (the time of the approval being
// judged) is read again: an approval given after the lookup is judged on
// the membership of its own time, so the approval event sees its own facts.
func (f *Forge) projectMember(ctx context.Context, repo bot.Repo, id int, notBefore time.Time) (membership, bool, error) {
	key := memberKey("p:"+projectKey(repo), id)
	if m, ok := f.members.getSince(key, notBefore); ok {
		return m, true, nil
	}
	m, _, err := f.client.ProjectMembers.GetInheritedProjectMember(pid(repo), id, gl.WithContext(ctx))
	if isNotFound(err) {
		return membership{}, false, nil
	}
	if err != nil {
		return membership{}, false, err
	}
	got := membership{level: m.AccessLevel, state: m.State}
	f.members.put(key, got)
	return got, true, nil
}

// groupMember is projectMember for a group of the policy.
func (f *Forge) groupMember(ctx context.Context, group string, id int, notBefore time.Time) (membership, bool, error) {
	key := memberKey("g:"+strings.ToLower(group), id)
	if m, ok := f.members.getSince(key, notBefore); ok {
		return m, true, nil
	}
	gm, _, err := f.client.GroupMembers.GetInheritedGroupMember(group, id, gl.WithContext(ctx))
	if isNotFound(err) {
		return membership{}, false, nil
	}
	if err != nil {
		return membership{}, false, err
	}
	got := membership{level: gm.AccessLevel, state: gm.State}
	f.members.put(key, got)
	return got, true, nil
}

// knownByEmail links a commit e-mail to one of the given accounts (the
// merge request author) when that account's full user carries the
// e-mail, compared exactly as userByEmail compares search results.
func (f *Forge) knownByEmail(ctx context.Context, email string, ids []int) (bot.User, bool, error) {
	key := strings.ToLower(strings.TrimSpace(email))
	for _, id := range ids {
		if id == 0 {
			continue
		}
		u, err := f.user(ctx, id)
		if err != nil {
			return bot.User{}, false, err
		}
		if u == nil {
			continue
		}
		if strings.EqualFold(u.PublicEmail, key) || strings.EqualFold(u.Email, key) {
			found := bot.User{Login: u.Username, ID: int64(u.ID), Name: u.Name, Bot: u.Bot || isTokenBot(u.Username)}
			f.emails.put(key, found)
			return found, true, nil
		}
	}
	return bot.User{}, false, nil
}

// noNotes says whether the merge request had no user note when Change last
// read it: then foureyes' note is not there and need not be looked for.
func (f *Forge) noNotes(repo bot.Repo, iid int) bool {
	m, ok := f.mrs.get(mrKey(repo, iid))
	return ok && m.notesKnown && m.userNotes == 0
}

// authorID is the merge request author's user ID (0 if GitLab sent none).
func authorID(mr *gl.MergeRequest) int {
	if mr.Author == nil {
		return 0
	}
	return mr.Author.ID
}

// getSince is get for an entry stored at or after notBefore (zero: any).
func (c *ttlCache[K, V]) getSince(k K, notBefore time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !c.now().Before(e.expires) || e.stored.Before(notBefore) {
		var zero V
		return zero, false
	}
	return e.v, true
}
