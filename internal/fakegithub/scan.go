package fakegithub

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// What `foureyes scan` and a live `foureyes explain` read beyond the
// webhook-driven calls: the App installation of a repository named on the
// command line, and a branch's history filtered by date.

// SetInstallation installs the App on a repository: GET
// /repos/{owner}/{repo}/installation then answers with installation id
// (0 uninstalls: 404).
func (f *Fake) SetInstallation(repo string, id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repoOf(repo).installation = id
}

// isInstallationLookup reports whether path is GET
// /repos/{owner}/{repo}/installation, which GitHub authenticates with the
// App's JWT, not an installation token.
func isInstallationLookup(path string) bool {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	return len(parts) == 4 && parts[0] == "repos" && parts[3] == "installation"
}

// getRepoInstallation answers "Get a repository installation for the
// authenticated app" in its documented shape (404 when the App is not
// installed on the repository).
// https://docs.github.com/en/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app
func (f *Fake) getRepoInstallation(w http.ResponseWriter, r *http.Request, rp *repo) {
	app, _ := r.Context().Value(appKey).(*App)
	if app == nil || rp.installation == 0 {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	owner, _, _ := strings.Cut(rp.fullName, "/")
	api := f.apiBase(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"id":                   rp.installation,
		"account":              f.userJSON(User{Login: owner, Type: "Organization"}),
		"repository_selection": "selected",
		"access_tokens_url":    api + "/app/installations/" + strconv.FormatInt(rp.installation, 10) + "/access_tokens",
		"repositories_url":     api + "/installation/repositories",
		"html_url":             f.htmlBase() + "/organizations/" + owner + "/settings/installations/" + strconv.FormatInt(rp.installation, 10),
		"app_id":               app.ID,
		"app_slug":             app.Slug,
		"target_id":            userID(User{Login: owner}),
		"target_type":          "Organization",
		"permissions":          map[string]string{"checks": "write", "contents": "read", "pull_requests": "read", "issues": "write", "members": "read", "metadata": "read"},
		"events":               []string{"pull_request", "pull_request_review", "push", "check_run", "check_suite", "merge_group"},
		"created_at":           fmtTime(f.now().Add(-24 * time.Hour)),
		"updated_at":           fmtTime(f.now().Add(-24 * time.Hour)),
		"single_file_name":     nil,
		"suspended_at":         nil,
		"suspended_by":         nil,
	})
}

// filterByDate applies the commit listing's since and until parameters
// ("Only show results that were last updated after/before the given time",
// ISO 8601): GitHub compares the commit's committer date. ok is false for
// an unparsable time.
// https://docs.github.com/en/rest/commits/commits#list-commits
func filterByDate(commits []Commit, q url.Values) ([]Commit, bool) {
	var since, until time.Time
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &since}, {"until", &until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return nil, false
			}
			*p.dst = t
		}
	}
	if since.IsZero() && until.IsZero() {
		return commits, true
	}
	out := make([]Commit, 0, len(commits))
	for _, c := range commits {
		at := c.Committer.Date
		if at.IsZero() {
			at = c.Author.Date
		}
		if (!since.IsZero() && at.Before(since)) || (!until.IsZero() && at.After(until)) {
			continue
		}
		out = append(out, c)
	}
	return out, true
}
