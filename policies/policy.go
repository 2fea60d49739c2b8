// Package policies parses, validates and applies the foureyes policy file
// (SPEC section 5). It is a leaf: it imports no forge SDK and nothing else of
// foureyes, so the policy a repository wrote can be checked offline, in an
// editor, or in the server, with exactly the same result.
package policies

import (
	"fmt"
	"strings"
	"time"
)

// Permission is a repository role, ordered so that a higher value can do
// everything a lower one can. The names are GitHub's; GitLab access levels
// map onto them in the GitLab adapter.
type Permission int

// The permission levels, weakest first. PermissionNone is the zero value so
// that an unknown reviewer never passes a min_permission check by accident.
const (
	PermissionNone Permission = iota
	PermissionRead
	PermissionTriage
	PermissionWrite
	PermissionMaintain
	PermissionAdmin
)

var permissionNames = []string{"none", "read", "triage", "write", "maintain", "admin"}

// String returns the policy-file spelling of the permission.
func (p Permission) String() string {
	if p < 0 || int(p) >= len(permissionNames) {
		return fmt.Sprintf("permission(%d)", int(p))
	}
	return permissionNames[p]
}

// ParsePermission reads a permission as written in a policy file or returned
// by GitHub's role_name. "pull" and "push" are GitHub's legacy names.
func ParsePermission(s string) (Permission, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "read", "pull":
		return PermissionRead, true
	case "triage":
		return PermissionTriage, true
	case "write", "push":
		return PermissionWrite, true
	case "maintain":
		return PermissionMaintain, true
	case "admin":
		return PermissionAdmin, true
	case "none":
		return PermissionNone, true
	}
	return PermissionNone, false
}

// Policy is a parsed and validated policy file. The zero value is not useful;
// obtain one from Parse or Default.
type Policy struct {
	// Source names where the policy came from (a path, "built-in default").
	Source string
	// Digest is the hex SHA-256 of the raw file, recorded in every audit
	// record so an auditor can tell which rules a verdict applied.
	Digest string

	Version    int
	Categories []Category // in file order; the order is kept in reports
	Exempt     []Glob
	Review     Review
	Release    Release
	BreakGlass *BreakGlass // nil when the policy has no break_glass section
}

// Category is one kind of change (code, data, infra, ...).
type Category struct {
	Name      string
	Paths     []Glob
	Ignore    []Glob
	Approvals int
	// Reviewers restricts who may approve for this category. Empty means
	// anyone with Review.MinPermission.
	Reviewers Reviewers
}

// Reviewers names the people allowed to approve. A reviewer qualifies when
// listed in Users or a member of any of Teams.
type Reviewers struct {
	Teams []string // GitHub "org/team-slug", GitLab group path
	Users []string // logins / usernames
}

// Empty reports whether no restriction is set.
func (r Reviewers) Empty() bool { return len(r.Teams) == 0 && len(r.Users) == 0 }

// Review holds the independence rules; every default is the strict one.
type Review struct {
	AllowAuthor            bool
	AllowCommitters        bool
	AllowLastPusher        bool
	DismissStale           bool
	IgnoreBaseUpdates      bool
	CountBots              bool
	MinPermission          Permission
	ChangesRequestedBlocks bool
}

// Release configures the release-branch guard.
type Release struct {
	// Branches are the watched branches. When DefaultBranches is true (the
	// built-in default, or a policy that leaves release.branches out) the
	// repository's default branch is watched as well as these globs.
	Branches        []Glob
	DefaultBranches bool
	Tags            []Glob
	LateWindow      time.Duration
	Alert           Alert
}

// Alert says how a flagged push is announced besides the failing check.
type Alert struct {
	Issue  bool
	Labels []string
}

// BreakGlass is the two-person emergency override.
type BreakGlass struct {
	Approvers Reviewers
	Required  int
	// Reason: the opening comment must say why (default true).
	Reason bool
}

// UncategorizedName is the implicit category of files that match no
// category and are not exempt: they still need one independent approval.
const UncategorizedName = "uncategorized"

// IsReleaseBranch reports whether pushes to branch are guarded.
func (p *Policy) IsReleaseBranch(branch, defaultBranch string) bool {
	if p.Release.DefaultBranches && branch != "" && branch == defaultBranch {
		return true
	}
	return MatchAny(p.Release.Branches, branch)
}

// IsReleaseTag reports whether tag is a release tag.
func (p *Policy) IsReleaseTag(tag string) bool { return MatchAny(p.Release.Tags, tag) }

// MatchAny reports whether any glob matches name.
func MatchAny(globs []Glob, name string) bool {
	for i := range globs {
		if globs[i].Match(name) {
			return true
		}
	}
	return false
}
