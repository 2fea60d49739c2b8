package bot

import (
	"slices"
	"strconv"
	"strings"

	"github.com/foureyes-dev/foureyes/policies"
)

// notIndependent lists the logins (lower-cased) that the policy's
// independence rules exclude from approving c: the author, everyone who
// authored, committed, co-authored or pushed a commit of it, and the pusher
// of the head. Decide judges each reviewer with the same rules; this set is
// only used to keep such people out of "needs 1 more approval from …", so a
// title never invites the author to approve their own change.
func notIndependent(rv policies.Review, c *Change) map[string]bool {
	out := map[string]bool{}
	add := func(u User) {
		if u.Known() {
			out[strings.ToLower(u.Login)] = true
		}
	}
	if !rv.AllowAuthor {
		add(c.Author)
	}
	if !rv.AllowCommitters {
		for i := range c.Commits {
			cm := &c.Commits[i]
			add(cm.Author)
			add(cm.Committer)
			for _, u := range cm.CoAuthors {
				add(u)
			}
		}
		for _, p := range c.Pushes {
			add(p.Pusher)
		}
	}
	if !rv.AllowLastPusher {
		if u, ok := c.PusherOf(c.Ref.HeadSHA); ok {
			add(u)
		}
	}
	return out
}

// markExcluded records, per category, the allowed reviewers (policy users)
// who cannot approve this change.
func markExcluded(cats []CategoryResult, excluded map[string]bool) {
	for i := range cats {
		c := &cats[i]
		for _, u := range c.Users {
			if excluded[strings.ToLower(u)] {
				c.Excluded = append(c.Excluded, u)
			}
		}
	}
}

// suggestable returns the users of c who could still approve it.
func (c *CategoryResult) suggestable() []string {
	if len(c.Excluded) == 0 {
		return c.Users
	}
	out := make([]string, 0, len(c.Users))
	for _, u := range c.Users {
		if !slices.ContainsFunc(c.Excluded, func(x string) bool { return strings.EqualFold(x, u) }) {
			out = append(out, u)
		}
	}
	return out
}

// approvers says who can supply the missing approvals of c: "@acme/sre or
// @bob"; when every allowed reviewer the policy names is excluded, it says so
// instead of naming them.
func (c *CategoryResult) approvers() string {
	users := c.suggestable()
	if len(c.Teams)+len(users) > 0 {
		return who(c.Teams, users)
	}
	return "an allowed reviewer (" + people(c.Excluded, "and") + " cannot approve this change)"
}

// hasApprovers reports whether the policy restricts who may approve c.
func (c *CategoryResult) hasApprovers() bool { return len(c.Teams)+len(c.Users) > 0 }

// countWords says how many approvals counted against how many are needed:
// "0 of 1 approval", "2 approvals, 1 required".
func countWords(c *CategoryResult) string {
	n := len(c.Counted)
	if n > c.Required {
		return plural(n, "approval") + ", " + strconv.Itoa(c.Required) + " required"
	}
	return strconv.Itoa(n) + " of " + plural(c.Required, "approval")
}
