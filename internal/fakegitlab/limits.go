package fakegitlab

import (
	"sort"
	"strconv"
	"strings"
)

// DefaultDiffFiles is GitLab's default "Maximum diff files" (Admin >
// Settings > General > Diff limits; maximum 3000): "These limits apply to
// both the GitLab UI and API endpoints that return diff information"
// (https://docs.gitlab.com/administration/diff_limits/).
const DefaultDiffFiles = 1000

// SetDiffLimit sets the instance's maximum diff files (0: the default).
func (s *Server) SetDiffLimit(files int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.diffFiles = files
}

func (s *Server) diffLimit() int {
	if s.diffFiles > 0 {
		return s.diffFiles
	}
	return DefaultDiffFiles
}

// limitedDiffs is what GET /merge_requests/:iid/diffs lists: past the
// instance's diff limit GitLab "returns limited results" — the first
// files only, with nothing in the listing itself saying so
// (https://docs.gitlab.com/api/merge_requests/#list-merge-request-diffs).
func (s *Server) limitedDiffs(d []Diff) []Diff {
	if n := s.diffLimit(); len(d) > n {
		return d[:n]
	}
	return d
}

// changesCount is a merge request's changes_count: a string (GET single
// MR, https://docs.gitlab.com/api/merge_requests/#get-single-mr), which
// is "1000+" once the diff overflows the limit: the value is the diff's
// real_size, "N+" when the diff collection overflowed (gitlab-org/gitlab
// issue 36398: "Any MR with over 1000 changes will report "1000+""). The
// deprecated GET .../changes says the same with overflow: true.
func (s *Server) changesCount(d []Diff) (string, bool) {
	if n := s.diffLimit(); len(d) > n {
		return strconv.Itoa(n) + "+", true
	}
	return strconv.Itoa(len(d)), false
}

// SetCompareTimeout makes GET /repository/compare answer as GitLab does
// when its diff computation overflows: compare_timeout true and the diffs
// cut, the commits still complete. The field is documented with the
// compare endpoint (https://docs.gitlab.com/api/repositories/#compare-branches-tags-or-commits)
// and GitLab's API::Entities::Compare (lib/api/entities/compare.rb)
// computes it as compare.diffs(options).overflow?: it is about the diffs.
func (s *Server) SetCompareTimeout(timeout bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.compareTimeout = timeout
}

// sourceProject is a merge request's source_project_id: the fork's, or the
// project's own.
func sourceProject(p *projectState, m *mrState) int {
	if m.SourceProjectID != 0 {
		return m.SourceProjectID
	}
	return p.ID
}

// Branches move without a push hook with SetBranch (scan.go): GitLab
// fires no push hook for a push that updates more than three branches, and
// no tag hook for more than three tags (push events section of
// https://docs.gitlab.com/user/project/integrations/webhook_events/;
// introduced by gitlab-org/gitlab issue 31009, "Don't fire hooks/services
// if there are more than 3 branches/tags in a single push").

// listBranches is GET /projects/:id/repository/branches (by name), each
// {name, commit, merged, protected, default, ...}
// (https://docs.gitlab.com/api/branches/#list-repository-branches).
func (s *Server) listBranches(r *request, p *projectState) reply {
	names := make([]string, 0, len(p.branches))
	for n := range p.branches {
		names = append(names, n)
	}
	sort.Strings(names)
	var items []any
	for _, n := range names {
		sha := p.branches[n]
		commit := map[string]any{"id": sha, "short_id": sha[:min(len(sha), 8)]}
		if c, ok := p.commits[sha]; ok {
			commit = s.commitJSON(p, c)
		}
		items = append(items, map[string]any{
			"name": n, "commit": commit, "merged": false, "protected": false, "default": n == p.DefaultBranch,
			"developers_can_push": false, "developers_can_merge": false, "can_push": true,
			"web_url": s.webURL(p) + "/-/tree/" + n,
		})
	}
	return s.page(r, items)
}

// targetURLTooLong is GitLab's 400 to a commit status whose target_url is
// over 255 characters (the column's limit; gitlab-org/gitlab issue 501079:
// "Gitlab API request to create a commit status is failing if target_url
// field is greater than 255 chars").
func targetURLTooLong(u string) string {
	if len(u) > 255 {
		return `400 Bad request - {"target_url":["is too long (maximum is 255 characters)"]}`
	}
	return ""
}

// SetPartialEmailSearch makes GET /users?search= match e-mails by
// substring, as older GitLab versions did; current ones match an e-mail
// only exactly ("search: Search for users by name, username, or public
// email", https://docs.gitlab.com/api/users/#list-users).
func (s *Server) SetPartialEmailSearch(partial bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partialEmails = partial
}

func (s *Server) emailMatch(email, search string) bool {
	if s.partialEmails {
		return strings.Contains(strings.ToLower(email), strings.ToLower(search))
	}
	return strings.EqualFold(email, search)
}
