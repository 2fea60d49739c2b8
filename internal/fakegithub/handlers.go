package fakegithub

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// GitHub's listing limits, which the fake enforces like the real API.
const (
	maxPRFiles   = 3000
	maxPRCommits = 250
)

func (f *Fake) routes() {
	m := f.mux
	m.HandleFunc("POST /app/installations/{id}/access_tokens", f.createToken)
	m.HandleFunc("GET /app", f.getApp)
	m.HandleFunc("POST /app-manifests/{code}/conversions", f.convertManifest)
	m.HandleFunc("GET /repos/{owner}/{repo}", f.withRepo(f.getRepo))
	m.HandleFunc("GET /repos/{owner}/{repo}/installation", f.withRepo(f.getRepoInstallation))
	m.HandleFunc("GET /repos/{owner}/{repo}/contents/{path...}", f.withRepo(f.getContents))
	m.HandleFunc("GET /repos/{owner}/{repo}/activity", f.withRepo(f.listActivities))
	m.HandleFunc("GET /repos/{owner}/{repo}/pulls", f.withRepo(f.listPulls))
	m.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}", f.withPull(f.getPull))
	m.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}/files", f.withPull(f.listFiles))
	m.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}/commits", f.withPull(f.listCommits))
	m.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}/reviews", f.withPull(f.listReviews))
	m.HandleFunc("GET /repos/{owner}/{repo}/collaborators/{user}/permission", f.withRepo(f.getPermission))
	m.HandleFunc("GET /orgs/{org}/teams/{slug}/memberships/{user}", f.getMembership)
	m.HandleFunc("POST /repos/{owner}/{repo}/check-runs", f.withRepo(f.createCheckRun))
	m.HandleFunc("PATCH /repos/{owner}/{repo}/check-runs/{id}", f.withRepo(f.updateCheckRun))
	m.HandleFunc("GET /repos/{owner}/{repo}/check-runs/{id}", f.withRepo(f.getCheckRun))
	m.HandleFunc("GET /repos/{owner}/{repo}/commits/{ref}/check-runs", f.withRepo(f.listCheckRuns))
	m.HandleFunc("POST /repos/{owner}/{repo}/statuses/{sha}", f.withRepo(f.createStatus))
	m.HandleFunc("GET /repos/{owner}/{repo}/commits/{ref}/statuses", f.withRepo(f.listStatuses))
	m.HandleFunc("GET /repos/{owner}/{repo}/commits/{sha}/pulls", f.withRepo(f.commitPulls))
	m.HandleFunc("GET /repos/{owner}/{repo}/compare/{basehead...}", f.withRepo(f.compare))
	m.HandleFunc("GET /repos/{owner}/{repo}/tags", f.withRepo(f.listTags))
	m.HandleFunc("GET /repos/{owner}/{repo}/branches", f.withRepo(f.listBranches))
	m.HandleFunc("GET /repos/{owner}/{repo}/commits", f.withRepo(f.listRepoCommits))
	m.HandleFunc("GET /repos/{owner}/{repo}/commits/{ref...}", f.withRepo(f.getCommitRef))
	m.HandleFunc("POST /repos/{owner}/{repo}/issues", f.withRepo(f.createIssue))
	m.HandleFunc("GET /repos/{owner}/{repo}/issues", f.withRepo(f.listIssues))
	m.HandleFunc("GET /repos/{owner}/{repo}/issues/{number}", f.withRepo(f.getIssue))
	m.HandleFunc("PATCH /repos/{owner}/{repo}/issues/{number}", f.withRepo(f.updateIssue))
	m.HandleFunc("POST /repos/{owner}/{repo}/issues/{number}/comments", f.withRepo(f.createComment))
	m.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { writeError(w, http.StatusNotFound, "Not Found") })
}

// Every handler below runs with f.mu held (withRepo/withPull take it), so
// they may read and write state freely.
type repoHandler func(w http.ResponseWriter, r *http.Request, rp *repo)
type pullHandler func(w http.ResponseWriter, r *http.Request, rp *repo, p *pull)

func (f *Fake) withRepo(h repoHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		rp := f.lookup(r.PathValue("owner"), r.PathValue("repo"))
		if rp == nil || f.hiddenFrom(r, rp) {
			writeError(w, http.StatusNotFound, "Not Found")
			return
		}
		h(w, r, rp)
	}
}

func (f *Fake) withPull(h pullHandler) http.HandlerFunc {
	return f.withRepo(func(w http.ResponseWriter, r *http.Request, rp *repo) {
		n, _ := strconv.Atoi(r.PathValue("number"))
		p := rp.prs[n]
		if p == nil {
			writeError(w, http.StatusNotFound, "Not Found")
			return
		}
		h(w, r, rp, p)
	})
}

// apiBase is the API root as the client sees it (for url fields and Link).
func (f *Fake) apiBase(r *http.Request) string { return "http://" + r.Host + f.prefix }

func (f *Fake) htmlBase() string { return f.srv.URL }

// paginate applies per_page/page like GitHub (default 30, max 100), sets
// the Link header and returns the bounds of the page within n items.
func (f *Fake) paginate(w http.ResponseWriter, r *http.Request, n int) (lo, hi int) {
	q := r.URL.Query()
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per <= 0 {
		per = 30
	}
	per = min(per, 100)
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	last := max(1, (n+per-1)/per)
	link := func(p int, rel string) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(per))
		return fmt.Sprintf(`<%s%s?%s>; rel="%s"`, f.apiBase(r), r.URL.Path, q.Encode(), rel)
	}
	var links []string
	if page > 1 {
		links = append(links, link(page-1, "prev"), link(1, "first"))
	}
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	lo = min((page-1)*per, n)
	hi = min(lo+per, n)
	return lo, hi
}

func (f *Fake) userJSON(u User) map[string]any {
	if u.Login == "" {
		return nil
	}
	typ := u.Type
	if typ == "" {
		typ = "User"
	}
	id := userID(u)
	out := map[string]any{
		"login":       u.Login,
		"id":          id,
		"node_id":     base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("04:User%d", id))),
		"avatar_url":  f.htmlBase() + "/avatars/" + u.Login,
		"gravatar_id": "",
		"url":         f.htmlBase() + "/users/" + u.Login,
		"html_url":    f.htmlBase() + "/" + u.Login,
		"type":        typ,
		"site_admin":  false,
	}
	// The rest of what the OpenAPI component "simple-user" requires.
	for k, v := range map[string]string{
		"followers_url": "/followers", "following_url": "/following{/other_user}", "gists_url": "/gists{/gist_id}",
		"starred_url": "/starred{/owner}{/repo}", "subscriptions_url": "/subscriptions", "organizations_url": "/orgs",
		"repos_url": "/repos", "events_url": "/events{/privacy}", "received_events_url": "/received_events",
	} {
		out[k] = f.htmlBase() + "/users/" + u.Login + v
	}
	return out
}

func (f *Fake) repoJSON(r *http.Request, rp *repo) map[string]any {
	owner, name, _ := strings.Cut(rp.fullName, "/")
	private, visibility := f.repoVisibility(rp)
	return map[string]any{
		"id":             rp.id,
		"node_id":        fmt.Sprintf("R_%d", rp.id),
		"name":           name,
		"full_name":      rp.fullName,
		"private":        private,
		"owner":          f.userJSON(User{Login: owner, Type: "Organization"}),
		"html_url":       f.htmlBase() + "/" + rp.fullName,
		"url":            f.apiBase(r) + "/repos/" + rp.fullName,
		"fork":           false,
		"default_branch": rp.defaultBranch,
		"visibility":     visibility,
	}
}

// repoFullJSON is repoJSON with the rest of what the OpenAPI component
// "repository" requires (the head/base repo of a pull request, the base of
// "full-repository"); repoJSON alone is the minimal shape other answers
// embed.
func (f *Fake) repoFullJSON(r *http.Request, rp *repo) map[string]any {
	out := f.repoJSON(r, rp)
	api := f.apiBase(r) + "/repos/" + rp.fullName
	html := f.htmlBase() + "/" + rp.fullName
	host := strings.TrimPrefix(strings.TrimPrefix(f.htmlBase(), "http://"), "https://")
	created := fmtTime(rp.created)
	for k, v := range map[string]any{
		"description":       nil,
		"homepage":          nil,
		"language":          nil,
		"license":           nil,
		"mirror_url":        nil,
		"archived":          false,
		"disabled":          false,
		"has_issues":        true,
		"has_projects":      true,
		"has_wiki":          true,
		"has_pages":         false,
		"has_downloads":     true,
		"forks":             0,
		"forks_count":       0,
		"stargazers_count":  0,
		"watchers":          0,
		"watchers_count":    0,
		"open_issues":       0,
		"open_issues_count": 0,
		"size":              0,
		"created_at":        created,
		"updated_at":        created,
		"pushed_at":         created,
		"clone_url":         html + ".git",
		"git_url":           "git://" + host + "/" + rp.fullName + ".git",
		"ssh_url":           "git@" + host + ":" + rp.fullName + ".git",
		"svn_url":           html,
	} {
		out[k] = v
	}
	for k, v := range map[string]string{
		"archive_url": "/{archive_format}{/ref}", "assignees_url": "/assignees{/user}", "blobs_url": "/git/blobs{/sha}",
		"branches_url": "/branches{/branch}", "collaborators_url": "/collaborators{/collaborator}",
		"comments_url": "/comments{/number}", "commits_url": "/commits{/sha}", "compare_url": "/compare/{base}...{head}",
		"contents_url": "/contents/{+path}", "contributors_url": "/contributors", "deployments_url": "/deployments",
		"downloads_url": "/downloads", "events_url": "/events", "forks_url": "/forks", "git_commits_url": "/git/commits{/sha}",
		"git_refs_url": "/git/refs{/sha}", "git_tags_url": "/git/tags{/sha}", "hooks_url": "/hooks",
		"issue_comment_url": "/issues/comments{/number}", "issue_events_url": "/issues/events{/number}",
		"issues_url": "/issues{/number}", "keys_url": "/keys{/key_id}", "labels_url": "/labels{/name}",
		"languages_url": "/languages", "merges_url": "/merges", "milestones_url": "/milestones{/number}",
		"notifications_url": "/notifications{?since,all,participating}", "pulls_url": "/pulls{/number}",
		"releases_url": "/releases{/id}", "stargazers_url": "/stargazers", "statuses_url": "/statuses/{sha}",
		"subscribers_url": "/subscribers", "subscription_url": "/subscription", "tags_url": "/tags",
		"teams_url": "/teams", "trees_url": "/git/trees{/sha}",
	} {
		out[k] = api + v
	}
	return out
}

func (f *Fake) getRepo(w http.ResponseWriter, r *http.Request, rp *repo) {
	// repos/get answers the OpenAPI component "full-repository", which
	// adds these to "repository".
	out := f.repoFullJSON(r, rp)
	out["has_discussions"] = false
	out["network_count"] = 0
	out["subscribers_count"] = 0
	writeJSON(w, http.StatusOK, out)
}

func (f *Fake) createToken(w http.ResponseWriter, r *http.Request) {
	app, _ := r.Context().Value(appKey).(*App)
	inst, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || app == nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	var b [20]byte
	_, _ = rand.Read(b[:])
	tok := "ghs_" + hex.EncodeToString(b[:])
	f.mu.Lock()
	exp := f.now().Add(time.Hour)
	f.tokens[tok] = &token{installation: inst, app: app, expires: exp}
	f.issued[inst]++
	f.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{
		"token":                tok,
		"expires_at":           exp.UTC().Format(time.RFC3339),
		"permissions":          map[string]string{"checks": "write", "contents": "read", "pull_requests": "read", "issues": "write", "members": "read", "metadata": "read"},
		"repository_selection": "all",
	})
}

// appCreated is the created_at/updated_at of the fake's Apps: the OpenAPI
// component "integration" requires both; a constant keeps ETags stable.
const appCreated = "2024-01-02T03:04:05Z"

func (f *Fake) appJSON(a *App) map[string]any {
	return map[string]any{
		"owner":        f.userJSON(User{Login: "octocat"}),
		"created_at":   appCreated,
		"updated_at":   appCreated,
		"id":           a.ID,
		"slug":         a.Slug,
		"node_id":      fmt.Sprintf("A_%d", a.ID),
		"name":         a.Name,
		"description":  "",
		"external_url": "https://example.com",
		"html_url":     f.htmlBase() + "/apps/" + a.Slug,
		"permissions":  map[string]string{"checks": "write"},
		"events":       []string{},
	}
}

func (f *Fake) getApp(w http.ResponseWriter, r *http.Request) {
	app, _ := r.Context().Value(appKey).(*App)
	writeJSON(w, http.StatusOK, f.appJSON(app))
}

// convertManifest completes the App manifest flow: each code converts once
// into a new App with a fresh key pair, which the fake then also accepts.
func (f *Fake) convertManifest(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	key, pemBytes, err := GenerateKey()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	f.mu.Lock()
	if f.usedCode[code] || code == "" {
		f.mu.Unlock()
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	f.usedCode[code] = true
	id := f.id()
	app := &App{
		ID:            id,
		Slug:          fmt.Sprintf("foureyes-%d", id),
		Name:          fmt.Sprintf("foureyes %d", id),
		ClientID:      fmt.Sprintf("Iv1.%016x", id),
		ClientSecret:  randomHex(20),
		WebhookSecret: randomHex(20),
		PEM:           string(pemBytes),
	}
	f.apps[id] = app
	f.keys[id] = &key.PublicKey
	f.mu.Unlock()
	out := f.appJSON(app)
	out["owner"] = f.userJSON(User{Login: "octocat"})
	out["client_id"] = app.ClientID
	out["client_secret"] = app.ClientSecret
	out["webhook_secret"] = app.WebhookSecret
	out["pem"] = app.PEM
	out["created_at"] = fmtTime(f.now())
	out["updated_at"] = fmtTime(f.now())
	writeJSON(w, http.StatusCreated, out)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func blobSHA(content string) string {
	h := sha1.Sum([]byte(fmt.Sprintf("blob %d\x00%s", len(content), content)))
	return hex.EncodeToString(h[:])
}

// base64Lines encodes like GitHub's contents API: base64 wrapped at 60
// characters per line.
func base64Lines(s string) string {
	enc := base64.StdEncoding.EncodeToString([]byte(s))
	var b strings.Builder
	for len(enc) > 60 {
		b.WriteString(enc[:60])
		b.WriteByte('\n')
		enc = enc[60:]
	}
	b.WriteString(enc)
	b.WriteByte('\n')
	return b.String()
}

func (f *Fake) getContents(w http.ResponseWriter, r *http.Request, rp *repo) {
	ref := r.URL.Query().Get("ref")
	if ref == "" {
		ref = rp.defaultBranch
	}
	path := strings.Trim(r.PathValue("path"), "/")
	files := rp.filesAt(ref)
	content, ok := files[path]
	if !ok {
		// A directory lists its entries, as GitHub does.
		var entries []map[string]any
		for p := range files {
			if strings.HasPrefix(p, path+"/") && path != "" {
				name := strings.TrimPrefix(p, path+"/")
				if !strings.Contains(name, "/") {
					// The fields the OpenAPI component "content-directory" requires.
					self := f.apiBase(r) + "/repos/" + rp.fullName + "/contents/" + p + "?ref=" + url.QueryEscape(ref)
					git := f.apiBase(r) + "/repos/" + rp.fullName + "/git/blobs/" + blobSHA(files[p])
					html := f.htmlBase() + "/" + rp.fullName + "/blob/" + ref + "/" + p
					entries = append(entries, map[string]any{"type": "file", "name": name, "path": p, "sha": blobSHA(files[p]), "size": len(files[p]),
						"url": self, "git_url": git, "html_url": html, "download_url": f.htmlBase() + "/raw/" + rp.fullName + "/" + ref + "/" + p,
						"_links": map[string]any{"self": self, "git": git, "html": html}})
				}
			}
		}
		if entries == nil {
			writeError(w, http.StatusNotFound, "Not Found")
			return
		}
		writeJSON(w, http.StatusOK, entries)
		return
	}
	self := f.apiBase(r) + "/repos/" + rp.fullName + "/contents/" + path
	sha := blobSHA(content)
	writeJSON(w, http.StatusOK, map[string]any{
		"type":         "file",
		"encoding":     "base64",
		"size":         len(content),
		"name":         path[strings.LastIndexByte(path, '/')+1:],
		"path":         path,
		"content":      base64Lines(content),
		"sha":          sha,
		"url":          self + "?ref=" + url.QueryEscape(ref),
		"git_url":      f.apiBase(r) + "/repos/" + rp.fullName + "/git/blobs/" + sha,
		"html_url":     f.htmlBase() + "/" + rp.fullName + "/blob/" + ref + "/" + path,
		"download_url": f.htmlBase() + "/raw/" + rp.fullName + "/" + ref + "/" + path,
		"_links":       map[string]any{"self": self, "git": f.apiBase(r) + "/repos/" + rp.fullName + "/git/blobs/" + sha, "html": f.htmlBase() + "/" + rp.fullName + "/blob/" + ref + "/" + path},
	})
}

// pullJSON renders a pull request; full adds the fields only the single-PR
// endpoint returns (counts, merged, mergeable), as on GitHub.
func (f *Fake) pullJSON(r *http.Request, rp *repo, p *pull, full bool) map[string]any {
	api := f.apiBase(r) + "/repos/" + rp.fullName
	html := f.htmlBase() + "/" + rp.fullName
	owner, _, _ := strings.Cut(rp.fullName, "/")
	branch := func(ref, sha string) map[string]any {
		return map[string]any{
			"label": owner + ":" + ref,
			"ref":   ref,
			"sha":   sha,
			"user":  f.userJSON(User{Login: owner, Type: "Organization"}),
			"repo":  f.repoFullJSON(r, rp),
		}
	}
	head := branch(p.HeadRef, p.HeadSHA)
	if p.HeadRepo != "" && !strings.EqualFold(p.HeadRepo, rp.fullName) {
		// A pull request from a fork names the fork as head.repo.
		forkOwner, _, _ := strings.Cut(p.HeadRepo, "/")
		head["label"] = forkOwner + ":" + p.HeadRef
		head["user"] = f.userJSON(User{Login: forkOwner})
		fork := f.repos[strings.ToLower(p.HeadRepo)]
		if fork == nil {
			fork = &repo{id: userID(User{Login: p.HeadRepo}), fullName: p.HeadRepo, defaultBranch: "main"}
		}
		fj := f.repoJSON(r, fork)
		fj["fork"] = true
		head["repo"] = fj
	}
	var closedAt, mergedAt any
	if p.State == "closed" {
		closedAt = fmtTime(p.UpdatedAt)
	}
	if p.Merged {
		mergedAt = fmtTime(p.MergedAt)
		if mergedAt == nil {
			mergedAt = fmtTime(p.UpdatedAt)
		}
	}
	var mergeSHA any
	if p.MergeCommitSHA != "" {
		mergeSHA = p.MergeCommitSHA
	}
	out := map[string]any{
		"url":                 fmt.Sprintf("%s/pulls/%d", api, p.Number),
		"id":                  int64(p.Number) + rp.id*100000,
		"node_id":             fmt.Sprintf("PR_%d_%d", rp.id, p.Number),
		"html_url":            fmt.Sprintf("%s/pull/%d", html, p.Number),
		"diff_url":            fmt.Sprintf("%s/pull/%d.diff", html, p.Number),
		"patch_url":           fmt.Sprintf("%s/pull/%d.patch", html, p.Number),
		"issue_url":           fmt.Sprintf("%s/issues/%d", api, p.Number),
		"commits_url":         fmt.Sprintf("%s/pulls/%d/commits", api, p.Number),
		"statuses_url":        fmt.Sprintf("%s/statuses/%s", api, p.HeadSHA),
		"number":              p.Number,
		"state":               p.State,
		"locked":              false,
		"title":               p.Title,
		"user":                f.userJSON(p.Author),
		"body":                p.Body,
		"labels":              []any{},
		"milestone":           nil,
		"created_at":          fmtTime(p.CreatedAt),
		"updated_at":          fmtTime(p.UpdatedAt),
		"closed_at":           closedAt,
		"merged_at":           mergedAt,
		"merge_commit_sha":    mergeSHA,
		"assignee":            nil,
		"assignees":           []any{},
		"requested_reviewers": []any{},
		"requested_teams":     []any{},
		"head":                head,
		"base":                branch(p.BaseRef, p.BaseSHA),
		"author_association":  "MEMBER",
		"auto_merge":          nil,
		"draft":               p.Draft,
		// Required by the OpenAPI components "pull-request-simple" and
		// "pull-request" (pulls/list, pulls/get).
		"comments_url":        fmt.Sprintf("%s/issues/%d/comments", api, p.Number),
		"review_comments_url": fmt.Sprintf("%s/pulls/%d/comments", api, p.Number),
		"review_comment_url":  api + "/pulls/comments{/number}",
		"_links": map[string]any{
			"self":            map[string]any{"href": fmt.Sprintf("%s/pulls/%d", api, p.Number)},
			"html":            map[string]any{"href": fmt.Sprintf("%s/pull/%d", html, p.Number)},
			"issue":           map[string]any{"href": fmt.Sprintf("%s/issues/%d", api, p.Number)},
			"comments":        map[string]any{"href": fmt.Sprintf("%s/issues/%d/comments", api, p.Number)},
			"review_comments": map[string]any{"href": fmt.Sprintf("%s/pulls/%d/comments", api, p.Number)},
			"review_comment":  map[string]any{"href": api + "/pulls/comments{/number}"},
			"commits":         map[string]any{"href": fmt.Sprintf("%s/pulls/%d/commits", api, p.Number)},
			"statuses":        map[string]any{"href": fmt.Sprintf("%s/statuses/%s", api, p.HeadSHA)},
		},
	}
	if p.HeadRepo != "" {
		out["head"] = f.forkHead(r, p)
	}
	if full {
		commits := p.CommitsCount
		if commits == 0 {
			commits = len(p.Commits)
		}
		changed := p.ChangedFiles
		if changed == 0 {
			changed = len(p.Files)
		}
		adds, dels := 0, 0
		for _, fl := range p.Files {
			adds += fl.Additions
			dels += fl.Deletions
		}
		var mergedBy any
		if p.Merged {
			mergedBy = f.userJSON(p.MergedBy)
		}
		out["merged"] = p.Merged
		out["mergeable"] = true
		out["rebaseable"] = true
		out["mergeable_state"] = "clean"
		out["merged_by"] = mergedBy
		out["comments"] = 0
		out["review_comments"] = 0
		out["maintainer_can_modify"] = false
		out["commits"] = commits
		out["additions"] = adds
		out["deletions"] = dels
		out["changed_files"] = changed
	}
	return out
}

func (f *Fake) getPull(w http.ResponseWriter, r *http.Request, rp *repo, p *pull) {
	writeJSON(w, http.StatusOK, f.pullJSON(r, rp, p, true))
}

func (f *Fake) listPulls(w http.ResponseWriter, r *http.Request, rp *repo) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	var nums []int
	for n, p := range rp.prs {
		if (state == "all" || p.State == state) && (q.Get("base") == "" || p.BaseRef == q.Get("base")) &&
			(q.Get("head") == "" || strings.HasSuffix(q.Get("head"), ":"+p.HeadRef) || q.Get("head") == p.HeadRef) {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	slices.Reverse(nums) // newest first, GitHub's default sort
	lo, hi := f.paginate(w, r, len(nums))
	out := []any{}
	for _, n := range nums[lo:hi] {
		out = append(out, f.pullJSON(r, rp, rp.prs[n], false))
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *Fake) listFiles(w http.ResponseWriter, r *http.Request, rp *repo, p *pull) {
	files := p.Files[:min(len(p.Files), maxPRFiles)]
	lo, hi := f.paginate(w, r, len(files))
	out := []any{}
	for _, fl := range files[lo:hi] {
		status := fl.Status
		if status == "" {
			status = "modified"
		}
		sha := fl.SHA
		if sha == "" {
			sha = blobSHA(fl.Filename + "\x00" + fl.Patch)
		}
		m := map[string]any{
			"sha":          sha,
			"filename":     fl.Filename,
			"status":       status,
			"additions":    fl.Additions,
			"deletions":    fl.Deletions,
			"changes":      fl.Additions + fl.Deletions,
			"blob_url":     f.htmlBase() + "/" + rp.fullName + "/blob/" + p.HeadSHA + "/" + fl.Filename,
			"raw_url":      f.htmlBase() + "/" + rp.fullName + "/raw/" + p.HeadSHA + "/" + fl.Filename,
			"contents_url": f.apiBase(r) + "/repos/" + rp.fullName + "/contents/" + fl.Filename + "?ref=" + p.HeadSHA,
		}
		if fl.Patch != "" {
			m["patch"] = fl.Patch
		}
		if fl.PreviousFilename != "" {
			m["previous_filename"] = fl.PreviousFilename
		}
		out = append(out, m)
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *Fake) commitJSON(r *http.Request, rp *repo, c Commit) map[string]any {
	api := f.apiBase(r) + "/repos/" + rp.fullName
	ident := func(i Identity) map[string]any {
		m := map[string]any{"name": i.Name, "email": i.Email}
		// "date" is a non-nullable date-time in the OpenAPI component
		// "nullable-git-user" (not required): leave it out rather than null.
		if !i.Date.IsZero() {
			m["date"] = fmtTime(i.Date)
		}
		return m
	}
	account := func(i Identity) any {
		if i.Login == "" {
			return nil // GitHub could not link the e-mail to an account
		}
		return f.userJSON(User{Login: i.Login, ID: i.ID})
	}
	parents := []any{}
	for _, p := range c.Parents {
		parents = append(parents, map[string]any{"url": api + "/commits/" + p, "sha": p})
	}
	return map[string]any{
		"url":          api + "/commits/" + c.SHA,
		"sha":          c.SHA,
		"node_id":      "C_" + c.SHA,
		"html_url":     f.htmlBase() + "/" + rp.fullName + "/commit/" + c.SHA,
		"comments_url": api + "/commits/" + c.SHA + "/comments",
		"commit": map[string]any{
			"url":           api + "/git/commits/" + c.SHA,
			"author":        ident(c.Author),
			"committer":     ident(c.Committer),
			"message":       c.Message,
			"tree":          map[string]any{"url": api + "/git/trees/" + c.SHA, "sha": c.SHA},
			"comment_count": 0,
			// The OpenAPI component "verification" requires verified_at (null when unsigned).
			"verification": map[string]any{"verified": false, "reason": "unsigned", "signature": nil, "payload": nil, "verified_at": nil},
		},
		"author":    account(c.Author),
		"committer": account(c.Committer),
		"parents":   parents,
	}
}

func (f *Fake) listCommits(w http.ResponseWriter, r *http.Request, rp *repo, p *pull) {
	commits := p.Commits[:min(len(p.Commits), maxPRCommits)]
	lo, hi := f.paginate(w, r, len(commits))
	out := []any{}
	for _, c := range commits[lo:hi] {
		out = append(out, f.commitJSON(r, rp, c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *Fake) listReviews(w http.ResponseWriter, r *http.Request, rp *repo, p *pull) {
	lo, hi := f.paginate(w, r, len(p.reviews))
	out := []any{}
	for _, rv := range p.reviews[lo:hi] {
		html := fmt.Sprintf("%s/%s/pull/%d#pullrequestreview-%d", f.htmlBase(), rp.fullName, p.Number, rv.ID)
		pullURL := fmt.Sprintf("%s/repos/%s/pulls/%d", f.apiBase(r), rp.fullName, p.Number)
		m := map[string]any{
			"id":                 rv.ID,
			"node_id":            fmt.Sprintf("PRR_%d", rv.ID),
			"user":               f.userJSON(rv.User),
			"body":               rv.Body,
			"state":              rv.State,
			"html_url":           html,
			"pull_request_url":   pullURL,
			"_links":             map[string]any{"html": map[string]any{"href": html}, "pull_request": map[string]any{"href": pullURL}},
			"commit_id":          rv.CommitID,
			"author_association": "MEMBER",
		}
		// submitted_at is a non-nullable date-time in the OpenAPI component
		// "pull-request-review": a pending review has none, so it is left out.
		if !rv.SubmittedAt.IsZero() {
			m["submitted_at"] = fmtTime(rv.SubmittedAt)
		}
		out = append(out, m)
	}
	writeJSON(w, http.StatusOK, out)
}

// basePermission maps a role onto the legacy "permission" field: GitHub
// reports maintain as write and triage as read there (role_name is exact).
func basePermission(role string) string {
	switch role {
	case "admin":
		return "admin"
	case "maintain", "write":
		return "write"
	case "triage", "read":
		return "read"
	}
	return "read" // custom roles inherit at least read
}

func (f *Fake) getPermission(w http.ResponseWriter, r *http.Request, rp *repo) {
	user := r.PathValue("user")
	role, ok := rp.perms[strings.ToLower(user)]
	if !ok {
		writeError(w, http.StatusNotFound, user+" is not a user")
		return
	}
	// user is the OpenAPI component "nullable-collaborator": a simple-user
	// plus the role (required) and the permission flags.
	u := f.userJSON(User{Login: user})
	u["role_name"] = role
	base := basePermission(role)
	u["permissions"] = map[string]any{
		"pull": true, "triage": role == "triage" || base != "read", "push": base != "read",
		"maintain": role == "maintain" || base == "admin", "admin": base == "admin",
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"permission": base,
		"role_name":  role,
		"user":       u,
	})
}

func (f *Fake) getMembership(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	org, slug, user := r.PathValue("org"), r.PathValue("slug"), r.PathValue("user")
	state, ok := f.teams[strings.ToLower(org+"/"+slug)][strings.ToLower(user)]
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"url":   fmt.Sprintf("%s/orgs/%s/teams/%s/memberships/%s", f.apiBase(r), org, slug, user),
		"role":  "member",
		"state": state,
	})
}

func (f *Fake) checkRunJSON(r *http.Request, rp *repo, c *CheckRun) map[string]any {
	api := f.apiBase(r) + "/repos/" + rp.fullName
	var conclusion, title, summary, text any
	if c.Conclusion != "" {
		conclusion = c.Conclusion
	}
	if c.Title != "" {
		title = c.Title
	}
	if c.Summary != "" {
		summary = c.Summary
	}
	if c.Text != "" {
		text = c.Text
	}
	prs := []any{}
	_, name, _ := strings.Cut(rp.fullName, "/")
	for _, n := range rp.pullsByHead[c.HeadSHA] {
		if p := rp.prs[n]; p.State == "open" {
			prs = append(prs, map[string]any{
				"url":    fmt.Sprintf("%s/pulls/%d", api, p.Number),
				"id":     int64(p.Number) + rp.id*100000,
				"number": p.Number,
				// The OpenAPI component "pull-request-minimal" requires head.repo and base.repo.
				"head": map[string]any{"ref": p.HeadRef, "sha": p.HeadSHA, "repo": map[string]any{"id": rp.id, "url": api, "name": name}},
				"base": map[string]any{"ref": p.BaseRef, "sha": p.BaseSHA, "repo": map[string]any{"id": rp.id, "url": api, "name": name}},
			})
		}
	}
	slug := c.AppSlug
	if slug == "" {
		slug = fmt.Sprintf("app-%d", c.AppID)
	}
	return map[string]any{
		"id":           c.ID,
		"head_sha":     c.HeadSHA,
		"node_id":      fmt.Sprintf("CR_%d", c.ID),
		"external_id":  c.ExternalID,
		"url":          fmt.Sprintf("%s/check-runs/%d", api, c.ID),
		"html_url":     fmt.Sprintf("%s/%s/runs/%d", f.htmlBase(), rp.fullName, c.ID),
		"details_url":  c.DetailsURL,
		"status":       c.Status,
		"conclusion":   conclusion,
		"started_at":   fmtTime(c.StartedAt),
		"completed_at": fmtTime(c.CompletedAt),
		"output": map[string]any{
			"title": title, "summary": summary, "text": text,
			"annotations_count": 0,
			"annotations_url":   fmt.Sprintf("%s/check-runs/%d/annotations", api, c.ID),
		},
		"name":          c.Name,
		"check_suite":   map[string]any{"id": c.ID + 1},
		"app":           f.appJSON(&App{ID: c.AppID, Slug: slug, Name: slug}),
		"pull_requests": prs,
	}
}

type checkRunBody struct {
	Name        *string    `json:"name"`
	HeadSHA     *string    `json:"head_sha"`
	DetailsURL  *string    `json:"details_url"`
	ExternalID  *string    `json:"external_id"`
	Status      *string    `json:"status"`
	Conclusion  *string    `json:"conclusion"`
	StartedAt   *time.Time `json:"started_at"`
	CompletedAt *time.Time `json:"completed_at"`
	Output      *struct {
		Title   *string `json:"title"`
		Summary *string `json:"summary"`
		Text    *string `json:"text"`
	} `json:"output"`
}

// maxSummary is GitHub's limit on output.summary (and text).
const maxSummary = 65535

// apply updates c like GitHub: a conclusion completes the run; setting
// status back to in_progress on a completed run does NOT clear its
// conclusion (GitHub keeps the run completed), which is why clients must
// create a new run to go back to pending.
func (b *checkRunBody) apply(c *CheckRun, now time.Time) string {
	if b.Name != nil {
		c.Name = *b.Name
	}
	if b.DetailsURL != nil {
		c.DetailsURL = *b.DetailsURL
	}
	if b.ExternalID != nil {
		c.ExternalID = *b.ExternalID
	}
	if b.Output != nil {
		if b.Output.Title == nil || b.Output.Summary == nil {
			return "output requires title and summary"
		}
		if len(*b.Output.Summary) > maxSummary {
			return "output.summary is too long (maximum is 65535 characters)"
		}
		c.Title, c.Summary = *b.Output.Title, *b.Output.Summary
		if b.Output.Text != nil {
			c.Text = *b.Output.Text
		}
	}
	switch {
	case b.Conclusion != nil && *b.Conclusion != "":
		c.Status, c.Conclusion = "completed", *b.Conclusion
		c.CompletedAt = now
		if b.CompletedAt != nil {
			c.CompletedAt = *b.CompletedAt
		}
	case b.Status != nil && *b.Status == "completed":
		return "conclusion is required when status is completed"
	case b.Status != nil && c.Status != "completed":
		c.Status = *b.Status
	}
	return ""
}

func (f *Fake) createCheckRun(w http.ResponseWriter, r *http.Request, rp *repo) {
	t, _ := r.Context().Value(tokenKey).(*token)
	var b checkRunBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	if b.Name == nil || b.HeadSHA == nil || *b.Name == "" || *b.HeadSHA == "" {
		writeError(w, http.StatusUnprocessableEntity, "name and head_sha are required")
		return
	}
	c := &CheckRun{ID: f.id(), HeadSHA: *b.HeadSHA, Status: "queued", StartedAt: f.now(), AppID: t.app.ID, AppSlug: t.app.Slug}
	if msg := b.apply(c, f.now()); msg != "" {
		writeError(w, http.StatusUnprocessableEntity, msg)
		return
	}
	rp.addCheckRun(c)
	writeJSON(w, http.StatusCreated, f.checkRunJSON(r, rp, c))
}

func (f *Fake) findCheckRun(rp *repo, id string) *CheckRun {
	n, _ := strconv.ParseInt(id, 10, 64)
	return rp.checkRunByID[n]
}

func (f *Fake) updateCheckRun(w http.ResponseWriter, r *http.Request, rp *repo) {
	t, _ := r.Context().Value(tokenKey).(*token)
	c := f.findCheckRun(rp, r.PathValue("id"))
	if c == nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	if c.AppID != t.app.ID {
		writeError(w, http.StatusForbidden, "Invalid app_id `"+strconv.FormatInt(t.app.ID, 10)+"` - check run can only be modified by the GitHub App that created it.")
		return
	}
	var b checkRunBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	upd := *c
	if msg := b.apply(&upd, f.now()); msg != "" {
		writeError(w, http.StatusUnprocessableEntity, msg)
		return
	}
	upd.Updates++
	*c = upd
	writeJSON(w, http.StatusOK, f.checkRunJSON(r, rp, c))
}

func (f *Fake) getCheckRun(w http.ResponseWriter, r *http.Request, rp *repo) {
	c := f.findCheckRun(rp, r.PathValue("id"))
	if c == nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, f.checkRunJSON(r, rp, c))
}

func (f *Fake) listCheckRuns(w http.ResponseWriter, r *http.Request, rp *repo) {
	q := r.URL.Query()
	ref := r.PathValue("ref")
	var runs []*CheckRun
	for _, c := range rp.checkRunsByHead[ref] {
		if (q.Get("check_name") != "" && c.Name != q.Get("check_name")) ||
			(q.Get("app_id") != "" && strconv.FormatInt(c.AppID, 10) != q.Get("app_id")) ||
			(q.Get("status") != "" && c.Status != q.Get("status")) {
			continue
		}
		runs = append(runs, c)
	}
	// Newest first; filter=latest (the default) keeps the newest run per
	// App and name, as GitHub does for re-runs.
	slices.Reverse(runs)
	if q.Get("filter") != "all" {
		seen := map[string]bool{}
		var latest []*CheckRun
		for _, c := range runs {
			k := fmt.Sprintf("%d/%s", c.AppID, c.Name)
			if !seen[k] {
				seen[k] = true
				latest = append(latest, c)
			}
		}
		runs = latest
	}
	lo, hi := f.paginate(w, r, len(runs))
	out := []any{}
	for _, c := range runs[lo:hi] {
		out = append(out, f.checkRunJSON(r, rp, c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"total_count": len(runs), "check_runs": out})
}

func (f *Fake) statusJSON(r *http.Request, rp *repo, s *Status) map[string]any {
	return map[string]any{
		"url":         f.apiBase(r) + "/repos/" + rp.fullName + "/statuses/" + s.SHA,
		"avatar_url":  f.htmlBase() + "/avatars/" + s.Creator,
		"id":          s.ID,
		"node_id":     fmt.Sprintf("S_%d", s.ID),
		"state":       s.State,
		"description": s.Description,
		"target_url":  s.TargetURL,
		"context":     s.Context,
		"created_at":  fmtTime(s.CreatedAt),
		"updated_at":  fmtTime(s.CreatedAt),
		"creator":     f.userJSON(User{Login: s.Creator, Type: "Bot"}),
	}
}

func (f *Fake) createStatus(w http.ResponseWriter, r *http.Request, rp *repo) {
	t, _ := r.Context().Value(tokenKey).(*token)
	var b struct {
		State       string `json:"state"`
		TargetURL   string `json:"target_url"`
		Description string `json:"description"`
		Context     string `json:"context"`
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	if !slices.Contains([]string{"error", "failure", "pending", "success"}, b.State) {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed: state")
		return
	}
	if b.Context == "" {
		b.Context = "default"
	}
	s := &Status{ID: f.id(), SHA: r.PathValue("sha"), State: b.State, Context: b.Context, Description: b.Description,
		TargetURL: b.TargetURL, Creator: t.app.Slug + "[bot]", CreatedAt: f.now()}
	rp.statuses = append(rp.statuses, s)
	writeJSON(w, http.StatusCreated, f.statusJSON(r, rp, s))
}

func (f *Fake) listStatuses(w http.ResponseWriter, r *http.Request, rp *repo) {
	var sts []*Status
	for i := len(rp.statuses) - 1; i >= 0; i-- {
		if rp.statuses[i].SHA == r.PathValue("ref") {
			sts = append(sts, rp.statuses[i])
		}
	}
	lo, hi := f.paginate(w, r, len(sts))
	out := []any{}
	for _, s := range sts[lo:hi] {
		out = append(out, f.statusJSON(r, rp, s))
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *Fake) commitPulls(w http.ResponseWriter, r *http.Request, rp *repo) {
	nums := rp.commitPulls[r.PathValue("sha")]
	lo, hi := f.paginate(w, r, len(nums))
	out := []any{}
	for _, n := range nums[lo:hi] {
		if p := rp.prs[n]; p != nil {
			out = append(out, f.pullJSON(r, rp, p, false))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *Fake) compare(w http.ResponseWriter, r *http.Request, rp *repo) {
	bh := r.PathValue("basehead")
	commits, ok := rp.compares[bh]
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	base, _, _ := strings.Cut(bh, "...")
	// Compare paginates its commits (per_page up to 250 on GitHub; the fake
	// keeps its usual 100).
	lo, hi := f.paginate(w, r, len(commits))
	list := []any{}
	for _, c := range commits[lo:hi] {
		list = append(list, f.commitJSON(r, rp, c))
	}
	baseCommit := f.commitJSON(r, rp, Commit{SHA: base})
	writeJSON(w, http.StatusOK, map[string]any{
		"url":               f.apiBase(r) + "/repos/" + rp.fullName + "/compare/" + bh,
		"html_url":          f.htmlBase() + "/" + rp.fullName + "/compare/" + bh,
		"permalink_url":     f.htmlBase() + "/" + rp.fullName + "/compare/" + bh,
		"diff_url":          f.htmlBase() + "/" + rp.fullName + "/compare/" + bh + ".diff",
		"patch_url":         f.htmlBase() + "/" + rp.fullName + "/compare/" + bh + ".patch",
		"base_commit":       baseCommit,
		"merge_base_commit": baseCommit,
		"status":            "ahead",
		"ahead_by":          len(commits),
		"behind_by":         0,
		"total_commits":     len(commits),
		"commits":           list,
		"files":             []any{},
	})
}

// listTags lists tags newest first, as GitHub's tags endpoint roughly
// does (its order is not documented; clients must not rely on it).
func (f *Fake) listTags(w http.ResponseWriter, r *http.Request, rp *repo) {
	lo, hi := f.paginate(w, r, len(rp.tags))
	out := []any{}
	for i := len(rp.tags) - 1 - lo; i > len(rp.tags)-1-hi; i-- {
		t := rp.tags[i]
		api := f.apiBase(r) + "/repos/" + rp.fullName
		out = append(out, map[string]any{
			"name":        t.name,
			"commit":      map[string]any{"sha": t.sha, "url": api + "/commits/" + t.sha},
			"zipball_url": api + "/zipball/" + t.name,
			"tarball_url": api + "/tarball/" + t.name,
			"node_id":     "REF_" + t.name,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *Fake) listRepoCommits(w http.ResponseWriter, r *http.Request, rp *repo) {
	sha := r.URL.Query().Get("sha")
	if sha == "" {
		sha = rp.defaultBranch
	}
	commits, ok := rp.histories[sha]
	if !ok {
		writeError(w, http.StatusNotFound, "No commit found for SHA: "+sha)
		return
	}
	commits, ok = filterByDate(commits, r.URL.Query())
	if !ok {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed: since/until must be ISO 8601 timestamps")
		return
	}
	lo, hi := f.paginate(w, r, len(commits))
	out := []any{}
	for _, c := range commits[lo:hi] {
		out = append(out, f.commitJSON(r, rp, c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *Fake) issueJSON(r *http.Request, rp *repo, is *Issue) map[string]any {
	labels := []any{}
	for i, l := range is.Labels {
		labels = append(labels, map[string]any{"id": i + 1, "name": l, "color": "ededed", "default": false, "description": nil})
	}
	var closedAt any
	if is.State == "closed" {
		closedAt = fmtTime(is.UpdatedAt)
	}
	out := map[string]any{
		"id":         int64(is.Number) + rp.id*100000,
		"node_id":    fmt.Sprintf("I_%d_%d", rp.id, is.Number),
		"url":        fmt.Sprintf("%s/repos/%s/issues/%d", f.apiBase(r), rp.fullName, is.Number),
		"html_url":   fmt.Sprintf("%s/%s/issues/%d", f.htmlBase(), rp.fullName, is.Number),
		"number":     is.Number,
		"state":      is.State,
		"title":      is.Title,
		"body":       is.Body,
		"user":       f.userJSON(User{Login: is.Author, Type: "Bot"}),
		"labels":     labels,
		"assignees":  []any{},
		"locked":     false,
		"comments":   0,
		"created_at": fmtTime(is.CreatedAt),
		"updated_at": fmtTime(is.UpdatedAt),
		"closed_at":  closedAt,
	}
	// The rest of what the OpenAPI component "issue" requires.
	self := out["url"].(string)
	out["repository_url"] = f.apiBase(r) + "/repos/" + rp.fullName
	out["labels_url"] = self + "/labels{/name}"
	out["comments_url"] = self + "/comments"
	out["events_url"] = self + "/events"
	out["assignee"] = nil
	out["milestone"] = nil
	return out
}

// nextNumber is the next issue/PR number: they share one sequence.
func nextNumber(rp *repo) int {
	n := len(rp.issues) + 1
	for num := range rp.prs {
		n = max(n, num+1)
	}
	for _, is := range rp.issues {
		n = max(n, is.Number+1)
	}
	return n
}

func (f *Fake) createIssue(w http.ResponseWriter, r *http.Request, rp *repo) {
	t, _ := r.Context().Value(tokenKey).(*token)
	var b struct {
		Title  string   `json:"title"`
		Body   string   `json:"body"`
		Labels []string `json:"labels"`
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	if b.Title == "" {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed: title")
		return
	}
	if rp.issuesDisabled {
		writeError(w, http.StatusGone, "Issues are disabled for this repo")
		return
	}
	is := &Issue{Number: nextNumber(rp), Title: b.Title, Body: b.Body, State: "open", Labels: b.Labels,
		Author: t.app.Slug + "[bot]", CreatedAt: f.now(), UpdatedAt: f.now()}
	rp.issues = append(rp.issues, is)
	writeJSON(w, http.StatusCreated, f.issueJSON(r, rp, is))
}

func (f *Fake) listIssues(w http.ResponseWriter, r *http.Request, rp *repo) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	want := strings.Split(q.Get("labels"), ",")
	var list []*Issue
	for i := len(rp.issues) - 1; i >= 0; i-- {
		is := rp.issues[i]
		if state != "all" && is.State != state {
			continue
		}
		ok := true
		for _, l := range want {
			if l != "" && !slices.Contains(is.Labels, l) {
				ok = false
			}
		}
		if ok {
			list = append(list, is)
		}
	}
	lo, hi := f.paginate(w, r, len(list))
	out := []any{}
	for _, is := range list[lo:hi] {
		out = append(out, f.issueJSON(r, rp, is))
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *Fake) findIssue(rp *repo, num string) *Issue {
	n, _ := strconv.Atoi(num)
	for _, is := range rp.issues {
		if is.Number == n {
			return is
		}
	}
	return nil
}

func (f *Fake) getIssue(w http.ResponseWriter, r *http.Request, rp *repo) {
	is := f.findIssue(rp, r.PathValue("number"))
	if is == nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, f.issueJSON(r, rp, is))
}

func (f *Fake) updateIssue(w http.ResponseWriter, r *http.Request, rp *repo) {
	is := f.findIssue(rp, r.PathValue("number"))
	if is == nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	var b struct {
		Title  *string   `json:"title"`
		Body   *string   `json:"body"`
		State  *string   `json:"state"`
		Labels *[]string `json:"labels"`
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	if b.Title != nil {
		is.Title = *b.Title
	}
	if b.Body != nil {
		is.Body = *b.Body
	}
	if b.State != nil {
		if *b.State != "open" && *b.State != "closed" {
			writeError(w, http.StatusUnprocessableEntity, "Validation Failed: state")
			return
		}
		is.State = *b.State
	}
	if b.Labels != nil {
		is.Labels = slices.Clone(*b.Labels)
	}
	is.UpdatedAt = f.now()
	writeJSON(w, http.StatusOK, f.issueJSON(r, rp, is))
}
