package fakegithub

import (
	"net/http"
	"sort"
)

// SetBranch points a branch at sha without any webhook: the fake's way to
// model a push GitHub never delivers ("Events will not be created for tags
// when more than three tags are pushed at once", push webhook schema,
// @octokit/openapi-webhooks 12.1.0) or one that was lost. An empty sha
// deletes the branch.
func (f *Fake) SetBranch(repo, name, sha string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.repoOf(repo)
	if r.branches == nil {
		r.branches = map[string]string{}
	}
	if sha == "" {
		delete(r.branches, name)
		return
	}
	r.branches[name] = sha
}

// listBranches is GET /repos/{owner}/{repo}/branches: [{name, commit:
// {sha, url}, protected}] ("List branches",
// https://docs.github.com/rest/branches/branches#list-branches), by name.
func (f *Fake) listBranches(w http.ResponseWriter, r *http.Request, rp *repo) {
	names := make([]string, 0, len(rp.branches))
	for n := range rp.branches {
		names = append(names, n)
	}
	sort.Strings(names)
	lo, hi := f.paginate(w, r, len(names))
	out := []any{}
	api := f.apiBase(r) + "/repos/" + rp.fullName
	for _, n := range names[lo:hi] {
		out = append(out, map[string]any{
			"name":      n,
			"commit":    map[string]any{"sha": rp.branches[n], "url": api + "/commits/" + rp.branches[n]},
			"protected": false,
		})
	}
	writeJSON(w, http.StatusOK, out)
}
