package fakegitlab

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

const apiPrefix = "/api/v4/"

// apiError is GitLab's error body.
type apiError struct {
	status  int
	message any
}

func notFound(what string) *apiError {
	return &apiError{status: http.StatusNotFound, message: "404 " + what + " Not Found"}
}

func forbidden() *apiError { return &apiError{status: http.StatusForbidden, message: "403 Forbidden"} }

func badRequest(msg string) *apiError { return &apiError{status: http.StatusBadRequest, message: msg} }

// reply is what a route answers: a JSON value (or raw bytes), a status and
// the pagination headers.
type reply struct {
	status  int
	body    any
	raw     []byte
	headers http.Header
}

type request struct {
	*http.Request
	user *User
	seg  []string // decoded path segments below /api/v4
	body map[string]any
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if s.serveOAuth(w, r) {
		return
	}
	path := r.URL.EscapedPath()
	rec := Request{Method: r.Method, Query: r.URL.RawQuery}
	if !strings.HasPrefix(path, apiPrefix) {
		rec.Path = r.URL.Path
		rec.Status = http.StatusNotFound
		s.record(rec)
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "404 Not Found"})
		return
	}
	var seg []string
	for _, p := range strings.Split(strings.TrimPrefix(path, apiPrefix), "/") {
		d, err := url.PathUnescape(p)
		if err != nil {
			d = p
		}
		seg = append(seg, d)
	}
	rec.Path = "/" + strings.Join(seg, "/")

	body := map[string]any{}
	if r.Body != nil {
		data, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		if len(data) > 0 {
			if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				if err := json.Unmarshal(data, &body); err != nil {
					rec.Status = http.StatusBadRequest
					s.record(rec)
					writeJSON(w, http.StatusBadRequest, map[string]any{"error": "body is not valid JSON"})
					return
				}
			} else if form, err := url.ParseQuery(string(data)); err == nil {
				for k, v := range form {
					body[k] = strings.Join(v, ",")
				}
			}
		}
	}

	s.mu.Lock()
	rep, aerr := s.route(&request{Request: r, seg: seg, body: body}, &rec)
	s.mu.Unlock()

	if aerr != nil {
		rec.Status = aerr.status
		s.record(rec)
		writeJSON(w, aerr.status, map[string]any{"message": aerr.message})
		return
	}
	if rep.status == 0 {
		rep.status = http.StatusOK
	}
	rec.Status = rep.status
	s.record(rec)
	for k, v := range rep.headers {
		w.Header()[k] = v
	}
	if rep.raw != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(rep.status)
		_, _ = w.Write(rep.raw)
		return
	}
	writeJSON(w, rep.status, rep.body)
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// match reports whether seg has the pattern's shape ("*" matches any one
// segment) and returns the wildcard values.
func match(seg []string, pattern ...string) ([]string, bool) {
	if len(seg) != len(pattern) {
		return nil, false
	}
	var vars []string
	for i, p := range pattern {
		switch {
		case p == "*":
			vars = append(vars, seg[i])
		case p != seg[i]:
			return nil, false
		}
	}
	return vars, true
}

// route answers one request; the caller holds s.mu.
func (s *Server) route(r *request, rec *Request) (reply, *apiError) {
	u, ok := s.authenticate(r.Request)
	if !ok {
		return reply{}, &apiError{status: http.StatusUnauthorized, message: "401 Unauthorized"}
	}
	r.user = u
	rec.UserID = u.ID
	for _, f := range s.failures {
		if (f.method == "" || f.method == r.Method) && strings.Contains(rec.Path, f.substr) {
			return reply{}, &apiError{status: f.status, message: strconv.Itoa(f.status) + " " + http.StatusText(f.status)}
		}
	}
	get, post := r.Method == http.MethodGet, r.Method == http.MethodPost

	if _, ok := match(r.seg, "user"); ok && get {
		return reply{body: s.userJSON(u, true)}, nil
	}
	if _, ok := match(r.seg, "users"); ok && get {
		return s.listUsers(r)
	}
	if v, ok := match(r.seg, "users", "*"); ok && get {
		id, _ := strconv.Atoi(v[0])
		o, found := s.users[id]
		if !found {
			return reply{}, notFound("User")
		}
		out := s.userJSON(o, u.Admin || u.ID == o.ID)
		// "Get a single user" (doc/api/users.md) tells a signed-in user
		// whether they follow this one; the fake models no following.
		out["is_followed"] = false
		return reply{body: out}, nil
	}
	if v, ok := match(r.seg, "groups", "*", "members", "all", "*"); ok && get {
		g := s.group(v[0])
		if g == nil {
			return reply{}, notFound("Group")
		}
		uid, _ := strconv.Atoi(v[1])
		level, member := g.members[uid]
		if !member || s.users[uid] == nil {
			return reply{}, notFound("Member")
		}
		return reply{body: s.memberJSON(s.users[uid], level)}, nil
	}
	if v, ok := match(r.seg, "groups", "*"); ok && get {
		g := s.group(v[0])
		if g == nil {
			return reply{}, notFound("Group")
		}
		return reply{body: map[string]any{"id": g.id, "full_path": g.fullPath, "path": lastSegment(g.fullPath),
			"name": lastSegment(g.fullPath), "full_name": g.fullPath, "web_url": s.URL() + "/groups/" + g.fullPath}}, nil
	}
	if len(r.seg) < 2 || r.seg[0] != "projects" {
		return reply{}, &apiError{status: http.StatusNotFound, message: "404 Not Found"}
	}
	p := s.findProject(r.seg[1])
	if p == nil {
		return reply{}, notFound("Project")
	}
	rest := r.seg[2:]
	switch {
	case len(rest) == 0 && get:
		return reply{body: s.projectJSON(p)}, nil
	case len(rest) == 4 && rest[0] == "repository" && rest[1] == "files" && rest[3] == "raw" && get:
		return s.rawFile(r, p, rest[2])
	case len(rest) == 3 && rest[0] == "repository" && rest[1] == "files" && get:
		return s.fileJSON(r, p, rest[2])
	case len(rest) == 1 && rest[0] == "merge_requests" && get:
		return s.listMRs(r, p)
	case len(rest) == 1 && rest[0] == "events" && get:
		return s.listEvents(r, p), nil
	case len(rest) >= 2 && rest[0] == "merge_requests":
		iid, _ := strconv.Atoi(rest[1])
		m, found := p.mrs[iid]
		if !found {
			return reply{}, notFound("Merge Request")
		}
		return s.routeMR(r, p, m, rest[2:])
	case len(rest) == 3 && rest[0] == "members" && rest[1] == "all" && get:
		uid, _ := strconv.Atoi(rest[2])
		level, member := p.members[uid]
		if !member || s.users[uid] == nil {
			return reply{}, notFound("Member")
		}
		return reply{body: s.memberJSON(s.users[uid], level)}, nil
	case len(rest) == 4 && rest[0] == "repository" && rest[1] == "commits" && rest[3] == "statuses" && get:
		return s.listStatuses(r, p, rest[2])
	case len(rest) == 4 && rest[0] == "repository" && rest[1] == "commits" && rest[3] == "merge_requests" && get:
		return s.commitMRs(r, p, rest[2])
	case len(rest) == 3 && rest[0] == "repository" && rest[1] == "commits" && get:
		c, found := p.commits[rest[2]]
		if !found {
			return reply{}, notFound("Commit")
		}
		// "Get a single commit" (doc/api/commits.md) adds stats (on by
		// default), the pipeline status and the last pipeline: the fake has
		// no per-commit diff and no pipelines.
		out := s.commitJSON(p, c)
		out["stats"] = map[string]any{"additions": 0, "deletions": 0, "total": 0}
		out["status"] = nil
		out["last_pipeline"] = nil
		return reply{body: out}, nil
	case len(rest) == 2 && rest[0] == "statuses" && post:
		return s.createStatus(r, p, rest[1])
	case len(rest) == 2 && rest[0] == "repository" && rest[1] == "compare" && get:
		return s.compareJSON(r, p)
	case len(rest) == 1 && rest[0] == "issues" && post:
		return s.createIssue(r, p)
	case len(rest) == 1 && rest[0] == "issues" && get:
		var items []any
		for _, is := range p.issues {
			items = append(items, s.issueJSON(p, is))
		}
		if r.URL.Query().Get("sort") == "desc" {
			for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
				items[i], items[j] = items[j], items[i]
			}
		}
		return s.page(r, items), nil
	case len(rest) == 2 && rest[0] == "repository" && rest[1] == "tags" && get:
		return s.listTags(r, p), nil
	case len(rest) == 2 && rest[0] == "repository" && rest[1] == "branches" && get:
		return s.listBranches(r, p), nil
	case len(rest) == 2 && rest[0] == "repository" && rest[1] == "commits" && get:
		ref := r.URL.Query().Get("ref_name")
		if ref == "" {
			ref = p.DefaultBranch
		}
		if sha, ok := p.tagSHA(ref); ok {
			ref = sha
		}
		if sha, ok := p.branches[ref]; ok {
			ref = sha
		}
		if _, ok := p.commits[ref]; !ok {
			return reply{}, notFound("Commit")
		}
		hist, aerr := filterByDate(p.history(ref), r.URL.Query())
		if aerr != nil {
			return reply{}, aerr
		}
		var items []any
		for _, c := range hist {
			items = append(items, s.commitJSON(p, c))
		}
		return s.page(r, items), nil
	}
	return reply{}, &apiError{status: http.StatusNotFound, message: "404 Not Found"}
}

func (s *Server) routeMR(r *request, p *projectState, m *mrState, rest []string) (reply, *apiError) {
	get, post, put := r.Method == http.MethodGet, r.Method == http.MethodPost, r.Method == http.MethodPut
	switch {
	case len(rest) == 0 && get:
		return reply{body: s.mrJSON(p, m, true)}, nil
	case len(rest) == 1 && rest[0] == "diffs" && get:
		var items []any
		for _, d := range s.limitedDiffs(m.Diffs) {
			items = append(items, diffJSON(d))
		}
		return s.page(r, items), nil
	case len(rest) == 1 && rest[0] == "commits" && get:
		var items []any
		for _, c := range m.Commits {
			items = append(items, s.commitJSON(p, c))
		}
		return s.page(r, items), nil
	case len(rest) == 1 && rest[0] == "approvals" && get:
		if s.approvalsErr != 0 {
			if s.approvalsErr == http.StatusNotFound {
				return reply{}, &apiError{status: http.StatusNotFound, message: "404 Not Found"}
			}
			return reply{}, &apiError{status: s.approvalsErr, message: strconv.Itoa(s.approvalsErr) + " " + http.StatusText(s.approvalsErr)}
		}
		return reply{body: s.approvalsJSON(r.user, p, m)}, nil
	case len(rest) == 1 && rest[0] == "participants" && get:
		return s.page(r, s.participants(m)), nil
	case len(rest) == 1 && rest[0] == "notes" && get:
		notes := append([]*Note(nil), m.notes...)
		if r.URL.Query().Get("sort") != "asc" {
			// GitLab lists notes newest first unless sort=asc.
			for i, j := 0, len(notes)-1; i < j; i, j = i+1, j-1 {
				notes[i], notes[j] = notes[j], notes[i]
			}
		}
		var items []any
		for _, n := range notes {
			items = append(items, s.noteJSON(p, m, n))
		}
		return s.page(r, items), nil
	case len(rest) == 1 && rest[0] == "notes" && post:
		if s.accessLevel(p, r.user) < Guest && !r.user.Admin {
			return reply{}, forbidden()
		}
		b, _ := r.body["body"].(string)
		if strings.TrimSpace(b) == "" {
			return reply{}, badRequest("400 Bad request - Note {:note=>[\"can't be blank\"]}")
		}
		n := s.addNote(m, r.user.ID, b, false)
		return reply{status: http.StatusCreated, body: s.noteJSON(p, m, n)}, nil
	case len(rest) == 2 && rest[0] == "notes" && (get || put):
		nid, _ := strconv.Atoi(rest[1])
		var n *Note
		for _, x := range m.notes {
			if x.ID == nid {
				n = x
			}
		}
		if n == nil {
			return reply{}, notFound("Note")
		}
		if put {
			if n.AuthorID != r.user.ID && !r.user.Admin {
				return reply{}, forbidden()
			}
			b, _ := r.body["body"].(string)
			if strings.TrimSpace(b) == "" {
				return reply{}, badRequest("400 Bad request - Note {:note=>[\"can't be blank\"]}")
			}
			n.Body = b
			n.UpdatedAt = s.now()
		}
		return reply{body: s.noteJSON(p, m, n)}, nil
	}
	return reply{}, &apiError{status: http.StatusNotFound, message: "404 Not Found"}
}

func (s *Server) authenticate(r *http.Request) (*User, bool) {
	tok := r.Header.Get("PRIVATE-TOKEN")
	if tok == "" {
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			tok = strings.TrimPrefix(a, "Bearer ")
		}
	}
	id, ok := s.tokens[tok]
	if !ok || tok == "" {
		return nil, false
	}
	u, ok := s.users[id]
	if !ok || u.State == "blocked" {
		return nil, false
	}
	return u, true
}

func (s *Server) findProject(idOrPath string) *projectState {
	if id, err := strconv.Atoi(idOrPath); err == nil {
		return s.projects[id]
	}
	for _, p := range s.projects {
		if strings.EqualFold(p.PathWithNamespace, idOrPath) {
			return p
		}
	}
	return nil
}

func (s *Server) group(idOrPath string) *groupState {
	if id, err := strconv.Atoi(idOrPath); err == nil {
		for _, g := range s.groups {
			if g.id == id {
				return g
			}
		}
		return nil
	}
	return s.groups[strings.ToLower(idOrPath)]
}

func (s *Server) accessLevel(p *projectState, u *User) int {
	return p.members[u.ID]
}

// page answers a list with GitLab's offset pagination: page and per_page
// (default 20, at most 100), X-Page, X-Per-Page, X-Total, X-Total-Pages,
// X-Next-Page, X-Prev-Page and a Link header.
func (s *Server) page(r *request, items []any) reply {
	q := r.URL.Query()
	pageNo, _ := strconv.Atoi(q.Get("page"))
	if pageNo < 1 {
		pageNo = 1
	}
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per < 1 {
		per = 20
	}
	if per > 100 {
		per = 100
	}
	total := len(items)
	pages := (total + per - 1) / per
	if pages == 0 {
		pages = 1
	}
	lo := min((pageNo-1)*per, total)
	hi := min(lo+per, total)
	out := items[lo:hi]
	if out == nil {
		out = []any{}
	}
	h := http.Header{}
	h.Set("X-Page", strconv.Itoa(pageNo))
	h.Set("X-Per-Page", strconv.Itoa(per))
	h.Set("X-Total", strconv.Itoa(total))
	h.Set("X-Total-Pages", strconv.Itoa(pages))
	next, prev := "", ""
	if pageNo < pages {
		next = strconv.Itoa(pageNo + 1)
	}
	if pageNo > 1 {
		prev = strconv.Itoa(pageNo - 1)
	}
	h.Set("X-Next-Page", next)
	h.Set("X-Prev-Page", prev)
	link := func(n int, rel string) string {
		qq := r.URL.Query()
		qq.Set("page", strconv.Itoa(n))
		qq.Set("per_page", strconv.Itoa(per))
		return "<" + s.URL() + r.URL.EscapedPath() + "?" + qq.Encode() + `>; rel="` + rel + `"`
	}
	var links []string
	if prev != "" {
		links = append(links, link(pageNo-1, "prev"))
	}
	if next != "" {
		links = append(links, link(pageNo+1, "next"))
	}
	links = append(links, link(1, "first"), link(pages, "last"))
	h.Set("Link", strings.Join(links, ", "))
	return reply{body: out, headers: h}
}

func (s *Server) listUsers(r *request) (reply, *apiError) {
	q := r.URL.Query()
	search := strings.ToLower(strings.TrimSpace(q.Get("search")))
	username := q.Get("username")
	var items []any
	for _, id := range sortedUserIDs(s.users) {
		o := s.users[id]
		switch {
		case username != "":
			if !strings.EqualFold(o.Username, username) {
				continue
			}
		case search != "":
			// GitLab matches a search against names and usernames, and
			// against e-mails exactly: public ones, or any for an admin.
			hit := strings.Contains(strings.ToLower(o.Username), search) ||
				strings.Contains(strings.ToLower(o.Name), search) ||
				(o.PublicEmail != "" && s.emailMatch(o.PublicEmail, search)) ||
				(r.user.Admin && s.emailMatch(o.Email, search))
			if !hit {
				continue
			}
		}
		if r.user.Admin {
			items = append(items, s.userJSON(o, true))
		} else {
			items = append(items, s.userBasicJSON(o))
		}
	}
	return s.page(r, items), nil
}

func (s *Server) rawFile(r *request, p *projectState, path string) (reply, *apiError) {
	ref := r.URL.Query().Get("ref")
	if ref == "" {
		ref = p.DefaultBranch
	}
	data, ok := p.filesAt(ref)[path]
	if !ok {
		return reply{}, notFound("File")
	}
	return reply{raw: data}, nil
}

func (s *Server) fileJSON(r *request, p *projectState, path string) (reply, *apiError) {
	ref := r.URL.Query().Get("ref")
	if ref == "" {
		return reply{}, badRequest("ref is missing")
	}
	data, ok := p.filesAt(ref)[path]
	if !ok {
		return reply{}, notFound("File")
	}
	return reply{body: map[string]any{
		"file_name": lastSegment(path), "file_path": path, "size": len(data), "encoding": "base64",
		"content": encodeBase64(data), "ref": ref, "blob_id": sha1hex(data), "commit_id": sha1hex([]byte(ref)),
		"last_commit_id": sha1hex([]byte(ref)), "content_sha256": sha256hex(data), "execute_filemode": false,
	}}, nil
}

func (s *Server) listMRs(r *request, p *projectState) (reply, *apiError) {
	q := r.URL.Query()
	state := q.Get("state")
	var items []any
	for _, iid := range sortedMRIIDs(p.mrs) {
		m := p.mrs[iid]
		if state != "" && state != "all" && m.State != state {
			continue
		}
		if t := q.Get("target_branch"); t != "" && t != m.TargetBranch {
			continue
		}
		if sb := q.Get("source_branch"); sb != "" && sb != m.SourceBranch {
			continue
		}
		items = append(items, s.mrJSON(p, m, false))
	}
	return s.page(r, items), nil
}

func (s *Server) listStatuses(r *request, p *projectState, sha string) (reply, *apiError) {
	q := r.URL.Query()
	all := q.Get("all") == "true"
	var items []any
	// Newest first, as GitLab orders them.
	for i := len(p.statuses) - 1; i >= 0; i-- {
		st := p.statuses[i]
		if st.SHA != sha || (st.Retried && !all) {
			continue
		}
		if n := q.Get("name"); n != "" && n != st.Name {
			continue
		}
		if ref := q.Get("ref"); ref != "" && ref != st.Ref {
			continue
		}
		items = append(items, s.statusJSON(st))
	}
	return s.page(r, items), nil
}

func (s *Server) createStatus(r *request, p *projectState, sha string) (reply, *apiError) {
	if s.accessLevel(p, r.user) < Developer && !r.user.Admin {
		return reply{}, forbidden()
	}
	str := func(k string) string { v, _ := r.body[k].(string); return v }
	if msg := targetURLTooLong(str("target_url")); msg != "" {
		return reply{}, badRequest(msg)
	}
	name := str("name")
	if name == "" {
		name = str("context")
	}
	st, msg := s.postStatus(p, sha, r.user.ID, statusInput{
		Name: name, Ref: str("ref"), State: str("state"), Description: str("description"), TargetURL: str("target_url"),
	})
	if msg != "" {
		return reply{}, badRequest(msg)
	}
	return reply{status: http.StatusCreated, body: s.statusJSON(st)}, nil
}

func (s *Server) commitMRs(r *request, p *projectState, sha string) (reply, *apiError) {
	var items []any
	for _, iid := range sortedMRIIDs(p.mrs) {
		m := p.mrs[iid]
		hit := m.SHA == sha || (m.MergeCommitSHA != "" && m.MergeCommitSHA == sha) || (m.SquashCommitSHA != "" && m.SquashCommitSHA == sha)
		for _, c := range m.Commits {
			hit = hit || c.ID == sha
		}
		if hit {
			items = append(items, s.mrJSON(p, m, false))
		}
	}
	return s.page(r, items), nil
}

func (s *Server) compareJSON(r *request, p *projectState) (reply, *apiError) {
	q := r.URL.Query()
	from, to := q.Get("from"), q.Get("to")
	if from == "" || to == "" {
		return reply{}, badRequest("400 Bad request - from, to are missing")
	}
	if _, ok := p.commits[to]; !ok {
		return reply{}, notFound("Ref")
	}
	commits := p.compare(from, to)
	list := make([]any, 0, len(commits))
	for _, c := range commits {
		list = append(list, s.commitJSON(p, c))
	}
	var last any
	if len(commits) > 0 {
		last = s.commitJSON(p, commits[len(commits)-1])
	}
	return reply{body: map[string]any{
		"commit": last, "commits": list, "diffs": []any{}, "compare_timeout": s.compareTimeout,
		"compare_same_ref": from == to, "web_url": s.webURL(p) + "/-/compare/" + from + "..." + to,
	}}, nil
}

func (s *Server) createIssue(r *request, p *projectState) (reply, *apiError) {
	if s.accessLevel(p, r.user) < Guest && !r.user.Admin {
		return reply{}, forbidden()
	}
	title, _ := r.body["title"].(string)
	if strings.TrimSpace(title) == "" {
		return reply{}, badRequest("400 Bad request - title is missing")
	}
	desc, _ := r.body["description"].(string)
	var labels []string
	switch l := r.body["labels"].(type) {
	case string:
		for _, x := range strings.Split(l, ",") {
			if x = strings.TrimSpace(x); x != "" {
				labels = append(labels, x)
			}
		}
	case []any:
		for _, x := range l {
			if str, ok := x.(string); ok && str != "" {
				labels = append(labels, str)
			}
		}
	}
	is := &Issue{ID: s.id(), IID: len(p.issues) + 1, Title: title, Description: desc, Labels: labels, AuthorID: r.user.ID, CreatedAt: s.now()}
	p.issues = append(p.issues, is)
	return reply{status: http.StatusCreated, body: s.issueJSON(p, is)}, nil
}

func (s *Server) participants(m *mrState) []any {
	seen := map[int]bool{}
	var out []any
	add := func(id int) {
		if u, ok := s.users[id]; ok && !seen[id] {
			seen[id] = true
			out = append(out, s.userBasicJSON(u))
		}
	}
	add(m.AuthorID)
	for _, id := range m.ReviewerIDs {
		add(id)
	}
	for _, a := range m.approvals {
		add(a.userID)
	}
	for _, n := range m.notes {
		add(n.AuthorID)
	}
	return out
}

// --- JSON shapes ---

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func (s *Server) userBasicJSON(u *User) map[string]any {
	return map[string]any{
		"id": u.ID, "username": u.Username, "name": u.Name, "state": u.State, "locked": false,
		"avatar_url": "https://www.gravatar.com/avatar/0?s=80&d=identicon", "web_url": s.URL() + "/" + u.Username,
	}
}

// userJSON is the full user (GET /users/:id, GET /user); private
// includes the primary e-mail, which only the user and admins see.
func (s *Server) userJSON(u *User, private bool) map[string]any {
	m := s.userBasicJSON(u)
	m["created_at"] = ts(time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC))
	m["bio"] = ""
	m["location"] = ""
	m["public_email"] = u.PublicEmail
	m["skype"] = ""
	m["linkedin"] = ""
	m["twitter"] = ""
	m["discord"] = ""
	m["website_url"] = ""
	m["organization"] = ""
	m["job_title"] = ""
	m["pronouns"] = nil
	m["bot"] = u.Bot
	m["work_information"] = nil
	m["followers"] = 0
	m["following"] = 0
	m["local_time"] = nil
	if private {
		m["email"] = u.Email
		m["is_admin"] = u.Admin
	}
	return m
}

func (s *Server) memberJSON(u *User, level int) map[string]any {
	m := s.userBasicJSON(u)
	m["access_level"] = level
	m["created_at"] = ts(time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC))
	m["expires_at"] = nil
	m["membership_state"] = "active"
	return m
}

func (s *Server) webURL(p *projectState) string { return s.URL() + "/" + p.PathWithNamespace }

func (s *Server) projectJSON(p *projectState) map[string]any {
	ns := p.PathWithNamespace
	if i := strings.LastIndexByte(ns, '/'); i >= 0 {
		ns = ns[:i]
	}
	return map[string]any{
		"id": p.ID, "name": lastSegment(p.PathWithNamespace), "path": lastSegment(p.PathWithNamespace),
		"path_with_namespace": p.PathWithNamespace, "name_with_namespace": strings.ReplaceAll(p.PathWithNamespace, "/", " / "),
		"default_branch": p.DefaultBranch, "web_url": s.webURL(p), "visibility": s.visibilityOf(p),
		"http_url_to_repo": s.webURL(p) + ".git", "created_at": ts(p.createdAt),
		"namespace": map[string]any{"full_path": ns, "path": lastSegment(ns), "name": lastSegment(ns), "kind": "group"},
	}
}

func (s *Server) mrJSON(p *projectState, m *mrState, single bool) map[string]any {
	var author any
	if u, ok := s.users[m.AuthorID]; ok {
		author = s.userBasicJSON(u)
	}
	reviewers := []any{}
	for _, id := range m.ReviewerIDs {
		if u, ok := s.users[id]; ok {
			reviewers = append(reviewers, s.userBasicJSON(u))
		}
	}
	var mergedAt, closedAt any
	if m.State == "merged" {
		mergedAt = ts(m.updatedAt)
		if !m.MergedAt.IsZero() {
			mergedAt = ts(m.MergedAt)
		}
	}
	if m.State == "closed" {
		closedAt = ts(m.updatedAt)
	}
	var mergeSHA any
	if m.MergeCommitSHA != "" {
		mergeSHA = m.MergeCommitSHA
	}
	out := map[string]any{
		"id": p.ID*1000 + m.IID, "iid": m.IID, "project_id": p.ID, "title": m.Title, "description": m.Description,
		"state": m.State, "imported": false, "imported_from": "none",
		"created_at": ts(m.createdAt), "updated_at": ts(m.updatedAt),
		"merged_by": nil, "merge_user": nil, "merged_at": mergedAt, "closed_by": nil, "closed_at": closedAt,
		"target_branch": m.TargetBranch, "source_branch": m.SourceBranch,
		"user_notes_count": len(m.notes), "upvotes": 0, "downvotes": 0,
		"author": author, "assignees": []any{}, "assignee": nil, "reviewers": reviewers,
		"source_project_id": sourceProject(p, m), "target_project_id": p.ID, "labels": []any{},
		"draft": m.Draft, "work_in_progress": m.Draft, "milestone": nil, "merge_when_pipeline_succeeds": false,
		"merge_status": "can_be_merged", "detailed_merge_status": "mergeable",
		"sha": m.SHA, "merge_commit_sha": mergeSHA, "squash_commit_sha": squashSHA(m),
		"discussion_locked": nil, "should_remove_source_branch": nil, "force_remove_source_branch": true,
		"reference": "!" + strconv.Itoa(m.IID),
		"references": map[string]any{
			"short": "!" + strconv.Itoa(m.IID), "relative": "!" + strconv.Itoa(m.IID),
			"full": p.PathWithNamespace + "!" + strconv.Itoa(m.IID),
		},
		"web_url": s.webURL(p) + "/-/merge_requests/" + strconv.Itoa(m.IID),
		"time_stats": map[string]any{
			"time_estimate": 0, "total_time_spent": 0, "human_time_estimate": nil, "human_total_time_spent": nil,
		},
		"squash": false, "task_completion_status": map[string]any{"count": 0, "completed_count": 0},
		"has_conflicts": false, "blocking_discussions_resolved": true,
	}
	if single {
		// GitLab's doc example repeats approvals_before_merge (null, then an
		// object); go-gitlab decodes it as an int, so the fake sends null.
		out["approvals_before_merge"] = nil
		out["subscribed"] = true
		out["changes_count"], _ = s.changesCount(m.Diffs)
		out["first_contribution"] = false
		out["merge_error"] = nil
		out["diverged_commits_count"] = 0
		out["rebase_in_progress"] = false
		out["user"] = map[string]any{"can_merge": true}
		out["pipeline"] = nil
		out["head_pipeline"] = nil
		// Also in GitLab's "Get single MR" example (doc/api/merge_requests.md):
		// no scheduled merge, no pipeline, no deployment in the fake.
		out["merge_after"] = nil
		out["prepared_at"] = ts(m.createdAt)
		out["latest_build_started_at"] = nil
		out["latest_build_finished_at"] = nil
		out["first_deployed_to_production_at"] = nil
		out["diff_refs"] = map[string]any{"base_sha": m.BaseSHA, "head_sha": m.SHA, "start_sha": m.BaseSHA}
	}
	return out
}

func diffJSON(d Diff) map[string]any {
	mode := "100644"
	a, b := mode, mode
	if d.NewFile {
		a = "0"
	}
	if d.DeletedFile {
		b = "0"
	}
	if d.AMode != "" {
		a = d.AMode
	}
	if d.BMode != "" {
		b = d.BMode
	}
	text := d.Diff
	if d.TooLarge {
		text = ""
	}
	return map[string]any{
		"old_path": d.OldPath, "new_path": d.NewPath, "a_mode": a, "b_mode": b, "diff": text,
		"new_file": d.NewFile, "renamed_file": d.RenamedFile, "deleted_file": d.DeletedFile,
		"generated_file": false, "too_large": d.TooLarge, "collapsed": d.TooLarge,
	}
}

func (s *Server) commitJSON(p *projectState, c Commit) map[string]any {
	title := c.Title
	if title == "" {
		title, _, _ = strings.Cut(c.Message, "\n")
	}
	cn, ce := c.CommitterName, c.CommitterEmail
	if cn == "" {
		cn = c.AuthorName
	}
	if ce == "" {
		ce = c.AuthorEmail
	}
	date := c.Date
	if date.IsZero() {
		date = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	short := c.ID
	if len(short) > 11 {
		short = short[:11]
	}
	parents := c.ParentIDs
	if parents == nil {
		parents = []string{}
	}
	return map[string]any{
		"id": c.ID, "short_id": short, "title": title, "author_name": c.AuthorName, "author_email": c.AuthorEmail,
		"authored_date": date.Format(time.RFC3339), "committer_name": cn, "committer_email": ce,
		"committed_date": date.Format(time.RFC3339), "created_at": date.Format(time.RFC3339),
		"message": c.Message, "parent_ids": parents, "trailers": map[string]any{}, "extended_trailers": map[string]any{},
		"web_url": s.webURL(p) + "/-/commit/" + c.ID,
	}
}

func (s *Server) approvalsJSON(viewer *User, p *projectState, m *mrState) map[string]any {
	by := []any{}
	approved := false
	for _, a := range m.approvals {
		if u, ok := s.users[a.userID]; ok {
			by = append(by, map[string]any{"user": s.userBasicJSON(u), "approved_at": ts(a.at)})
			approved = approved || a.userID == viewer.ID
		}
	}
	return map[string]any{
		"id": p.ID*1000 + m.IID, "iid": m.IID, "project_id": p.ID, "title": m.Title, "description": m.Description,
		"state": m.State, "created_at": ts(m.createdAt), "updated_at": ts(m.updatedAt),
		"merge_status": "can_be_merged", "approved": len(m.approvals) > 0,
		"approvals_required": 0, "approvals_left": 0, "require_password_to_approve": false,
		"approved_by": by, "suggested_approvers": []any{}, "approvers": []any{}, "approver_groups": []any{},
		"user_has_approved": approved, "user_can_approve": !approved && viewer.ID != m.AuthorID,
		"approval_rules_left": []any{}, "has_approval_rules": false,
		"merge_request_approvers_available": false, "multiple_approval_rules_available": false,
	}
}

func (s *Server) statusJSON(st *Status) map[string]any {
	var author any
	if u, ok := s.users[st.AuthorID]; ok {
		author = s.userBasicJSON(u)
	}
	var ref, desc, target any
	if st.Ref != "" {
		ref = st.Ref
	}
	if st.Description != "" {
		desc = st.Description
	}
	if st.TargetURL != "" {
		target = st.TargetURL
	}
	return map[string]any{
		"id": st.ID, "sha": st.SHA, "ref": ref, "status": st.State, "name": st.Name, "target_url": target,
		"description": desc, "created_at": ts(st.CreatedAt), "started_at": ts(st.StartedAt),
		"finished_at": ts(st.FinishedAt), "allow_failure": false, "coverage": nil, "pipeline_id": 1,
		"author": author,
	}
}

func (s *Server) noteJSON(p *projectState, m *mrState, n *Note) map[string]any {
	var author any
	if u, ok := s.users[n.AuthorID]; ok {
		author = s.userBasicJSON(u)
	}
	return map[string]any{
		"id": n.ID, "type": nil, "body": n.Body, "attachment": nil, "author": author,
		"created_at": ts(n.CreatedAt), "updated_at": ts(n.UpdatedAt), "system": n.System,
		"noteable_id": m.IID + 100000, "noteable_type": "MergeRequest", "noteable_iid": m.IID,
		"resolvable": false, "confidential": false, "internal": false,
		// project_id: in GitLab's note example (doc/api/notes.md, "Get single merge request note").
		"project_id": p.ID,
	}
}

func (s *Server) issueJSON(p *projectState, is *Issue) map[string]any {
	var author any
	if u, ok := s.users[is.AuthorID]; ok {
		author = s.userBasicJSON(u)
	}
	labels := append([]string{}, is.Labels...)
	return map[string]any{
		"id": is.ID, "iid": is.IID, "project_id": p.ID, "title": is.Title, "description": is.Description,
		"state": "opened", "created_at": ts(is.CreatedAt), "updated_at": ts(is.CreatedAt), "labels": labels,
		"author": author, "assignees": []any{}, "type": "ISSUE", "issue_type": "issue",
		"web_url": s.webURL(p) + "/-/issues/" + strconv.Itoa(is.IID),
	}
}

func (p *projectState) tagSHA(name string) (string, bool) {
	for _, t := range p.tags {
		if t.name == name {
			return t.sha, true
		}
	}
	return "", false
}

// listTags lists tags by name in reverse order, GitLab's default
// (order_by=name is not semantic: clients sort versions themselves).
func (s *Server) listTags(r *request, p *projectState) reply {
	tags := append([]tagState(nil), p.tags...)
	sort.Slice(tags, func(i, j int) bool { return tags[i].name > tags[j].name })
	var items []any
	for _, t := range tags {
		var commit any
		if c, ok := p.commits[t.sha]; ok {
			commit = s.commitJSON(p, c)
		} else {
			commit = map[string]any{"id": t.sha, "short_id": t.sha[:min(len(t.sha), 8)]}
		}
		items = append(items, map[string]any{
			"name": t.name, "message": "", "target": t.sha, "commit": commit,
			"release": nil, "protected": false, "created_at": ts(t.createdAt),
		})
	}
	return s.page(r, items)
}
