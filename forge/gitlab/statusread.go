package gitlab

import (
	"context"

	"github.com/foureyes-dev/foureyes/bot"
)

// When the head's "foureyes" statuses are read (issue 16, "GitLab at its
// floor"). Anyone with Developer access can post a status of that name; the
// read finds such a forgery, so that it is audited and called out, and
// Publish re-asserts foureyes' own state over it.
//
// The read is left out only when what this process last saw of the head —
// at most 2 minutes ago: foureyes' own status was the latest, no other
// status of the name was among the latest — says foureyes' own latest
// status is "success", and no Pipeline Hook has told of a change to the
// merge request's pipeline since. Then no status posted since can make the
// merge request mergeable against foureyes' verdict:
//   - if the verdict is success, a forged "success" claims what foureyes
//     says anyway, and a forged "failed" or "pending" only blocks; such a
//     status changes the pipeline's status, so GitLab sends a Pipeline Hook
//     ("Pipeline event: a pipeline status changes",
//     https://docs.gitlab.com/user/project/integrations/webhook_events/),
//     and the evaluation it causes reads the statuses (ChecksChanged) and
//     audits and out-votes it;
//   - if the verdict is not success, it differs from the "success"
//     remembered, so Publish posts it: foureyes' post becomes the latest
//     status of the name, above any forged one.
//
// The price of the second case: a forged "success" posted while foureyes'
// own status already said success, and superseded by foureyes' next post
// before any evaluation read the statuses, is out-voted but not audited.
// It never stood while foureyes' verdict was anything but success.
//
// Never left out: in a process that has not read or posted this head's
// statuses (a fresh process, another replica) — a forgery made before
// foureyes' first post must be audited, not silently superseded — after a
// forgery was seen, while foureyes' own status is pending or failed (a
// forged success would make it mergeable), and after a post GitLab refused
// as a no-op (whose status is the latest is then unknown).
//
// Several replicas: the memory is per process, so another replica's post
// can make it stale. Publish then compares it with the state foureyes last
// published on the head as the shared store says (Report.PriorID) and posts
// when they disagree (memoDisagrees), which is always the safe direction.

// headStatuses reads the head's "foureyes" statuses, unless statusesSettled
// says the read cannot change the outcome; it returns the foreign ones.
func (f *Forge) headStatuses(ctx context.Context, repo bot.Repo, iid int, sha string) ([]bot.ForeignCheck, error) {
	if f.statusesSettled(repo, iid, sha) {
		f.rememberMR(repo, iid, func(m *mrMemo) { m.statusesSkipped = sha })
		return nil, nil
	}
	f.rememberMR(repo, iid, func(m *mrMemo) { m.statusesSkipped = "" })
	foreign, err := f.readStatuses(ctx, repo, f.statusProject(repo, iid), sha)
	if fp, ok := f.statusProject(repo, iid).(int); ok && fp != int(repo.ID) && isNoAccess(err) {
		// The fork cannot be read with this token: Publish falls back to
		// this project, so read the statuses there.
		f.rememberMR(repo, iid, func(m *mrMemo) { m.statusFallback = true })
		foreign, err = f.readStatuses(ctx, repo, pid(repo), sha)
	}
	return foreign, err
}

// statusesSettled: see above.
func (f *Forge) statusesSettled(repo bot.Repo, iid int, sha string) bool {
	memo, ok := f.statuses.get(shaKey(repo, sha))
	if !ok || memo.foreign || memo.unverified || memo.own != "success" {
		return false
	}
	m, _ := f.mrs.get(mrKey(repo, iid))
	return memo.at.After(m.checksChangedAt)
}

// memoDisagrees: the statuses were not read for this evaluation and what
// this process remembers posting is not what foureyes last published on the
// head according to the shared store (another replica posted since).
func (f *Forge) memoDisagrees(repo bot.Repo, iid int, sha string, memo statusMemo, published string) bool {
	m, ok := f.mrs.get(mrKey(repo, iid))
	return ok && m.statusesSkipped == sha && published != memo.own
}

// ChecksChanged implements bot.ChecksWatcher: GitLab said the merge
// request's pipeline changed status (a Pipeline Hook), so what this
// process remembers of the head's statuses is not reused.
func (f *Forge) ChecksChanged(ref bot.ChangeRef) {
	f.rememberMR(ref.Repo, ref.Number, func(m *mrMemo) { m.checksChangedAt = f.now() })
}

var _ bot.ChecksWatcher = (*Forge)(nil)
