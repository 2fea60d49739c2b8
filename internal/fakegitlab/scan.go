package fakegitlab

import (
	"net/url"
	"time"
)

// What `foureyes scan` reads beyond the webhook-driven calls: a branch's
// history filtered by date, and the merge requests of squash commits.

// SetBranch points a branch at sha: the commits listing (ref_name) then
// walks the history from there.
func (s *Server) SetBranch(projectID int, name, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.project(projectID)
	if p.branches == nil {
		p.branches = map[string]string{}
	}
	p.branches[name] = sha
}

// squashSHA renders squash_commit_sha (null unless the merge request was
// squash-merged). GitLab associates a squash commit with its merge
// request in commits/:sha/merge_requests, as it does a merge commit
// (https://gitlab.com/gitlab-org/gitlab/-/issues/21686, shipped in 13.x).
func squashSHA(m *mrState) any {
	if m.SquashCommitSHA == "" {
		return nil
	}
	return m.SquashCommitSHA
}

// filterByDate applies since/until of "List repository commits" ("Only
// commits after or on this date are returned", ISO 8601 format) to the
// committed date.
// https://docs.gitlab.com/ee/api/commits.html#list-repository-commits
func filterByDate(commits []Commit, q url.Values) ([]Commit, *apiError) {
	var since, until time.Time
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &since}, {"until", &until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return nil, badRequest("400 Bad request - " + p.name + " is invalid")
			}
			*p.dst = t
		}
	}
	if since.IsZero() && until.IsZero() {
		return commits, nil
	}
	out := make([]Commit, 0, len(commits))
	for _, c := range commits {
		if (!since.IsZero() && c.Date.Before(since)) || (!until.IsZero() && c.Date.After(until)) {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}
