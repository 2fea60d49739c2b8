package gitlab

import "github.com/foureyes-dev/foureyes/bot"

// ReusesBranchPolicy implements bot.BranchPolicyReuse: Policy reads the
// branch's own files only (GitLab has no organisation-level policy), and
// GitLab answers no conditional request, so each read costs a request.
func (f *Forge) ReusesBranchPolicy() {}

var _ bot.BranchPolicyReuse = (*Forge)(nil)
