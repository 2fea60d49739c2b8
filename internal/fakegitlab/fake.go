// Package fakegitlab is an in-memory GitLab v4 REST API on an httptest
// server. It speaks the shapes GitLab documents (the examples under
// testdata/fixtures/gitlab-api were its starting point) so that the real
// go-gitlab client can be driven against it: tokens, pagination headers,
// GitLab's error bodies and the quirks foureyes depends on (the 400 to a
// commit status re-posted in the state it already has, approvals that
// answer 403/404 on some instances, member access levels).
//
// It is used by tests and by the demo command, so it must not import
// "testing". All state is guarded by one mutex; the Go API below is how a
// test sets the scene and inspects what the adapter did.
package fakegitlab

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"
)

// GitLab access levels as the members API returns them.
const (
	NoAccess      = 0
	MinimalAccess = 5
	Guest         = 10
	Reporter      = 20
	Developer     = 30
	Maintainer    = 40
	Owner         = 50
)

// User is a GitLab account.
type User struct {
	ID       int
	Username string
	Name     string
	// Email is the primary (private) e-mail: only admins and the user
	// themself see it, and only an admin's search matches it.
	Email string
	// PublicEmail is the e-mail shown on the profile; a search matches it.
	PublicEmail string
	Bot         bool
	Admin       bool
	State       string // "active" when empty
}

// Project is a repository.
type Project struct {
	ID                int
	PathWithNamespace string // e.g. "acme/app"
	DefaultBranch     string // "main" when empty
}

// Diff is one file of a merge request diff.
type Diff struct {
	OldPath     string
	NewPath     string
	Diff        string
	NewFile     bool
	RenamedFile bool
	DeletedFile bool
	// TooLarge marks a diff GitLab does not render: its text is empty.
	TooLarge bool
	// AMode and BMode are the file modes before and after (default 100644;
	// "0" for the missing side of an added or deleted file), as GitLab's
	// a_mode/b_mode: 100755 executable, 120000 symlink, 160000 submodule.
	AMode, BMode string
}

// Commit is a git commit as GitLab lists it.
type Commit struct {
	ID             string
	Title          string // the first line of Message when empty
	Message        string
	AuthorName     string
	AuthorEmail    string
	CommitterName  string // AuthorName when empty
	CommitterEmail string // AuthorEmail when empty
	Date           time.Time
	ParentIDs      []string
}

// MergeRequest is a merge request of a project.
type MergeRequest struct {
	IID            int
	Title          string
	Description    string
	AuthorID       int
	SourceBranch   string
	TargetBranch   string
	SHA            string // head
	BaseSHA        string // diff_refs.base_sha
	State          string // opened (default), closed, merged, locked
	Draft          bool
	MergeCommitSHA string
	// SquashCommitSHA is the commit a squash merge created on the target
	// branch (squash_commit_sha).
	SquashCommitSHA string
	// MergedAt is the merged_at of a merged merge request (default: its
	// last update).
	MergedAt    time.Time
	ReviewerIDs []int
	// PushedByID is who pushed the head (default: the author). Adding the
	// merge request or moving its head records a push event by them.
	PushedByID int
	Diffs      []Diff
	// Commits of the merge request, newest first (GitLab's order).
	Commits []Commit

	// SourceProjectID is the fork the source branch lives in (0: the
	// merge request's own project). GitLab's merge request API names it in
	// source_project_id; the commits API wants statuses of its commits
	// posted there ("the API call must target the commit in the merge
	// request's source branch", https://docs.gitlab.com/api/commits/).
	SourceProjectID int
}

// Status is a commit status (GitLab's "generic commit status").
type Status struct {
	ID          int
	SHA         string
	Ref         string
	Name        string
	State       string // pending, running, success, failed, canceled
	Description string
	TargetURL   string
	AuthorID    int
	CreatedAt   time.Time
	StartedAt   time.Time
	FinishedAt  time.Time
	// Retried is set when a later status of the same name and ref replaced
	// it; GitLab then lists it only with all=true.
	Retried bool
}

// Note is a comment on a merge request.
type Note struct {
	ID        int
	Body      string
	AuthorID  int
	System    bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Issue is a project issue.
type Issue struct {
	ID          int
	IID         int
	Title       string
	Description string
	Labels      []string
	AuthorID    int
	CreatedAt   time.Time
}

// Request is one API request the fake answered.
type Request struct {
	Method string
	// Path is the decoded path below /api/v4, e.g.
	// "/projects/acme/app/merge_requests/1".
	Path   string
	Query  string
	Status int
	UserID int // 0 when the token was not accepted
}

func (r Request) String() string {
	s := r.Method + " " + r.Path
	if r.Query != "" {
		s += "?" + r.Query
	}
	return fmt.Sprintf("%s -> %d", s, r.Status)
}

type approval struct {
	userID int
	at     time.Time
}

type mrState struct {
	MergeRequest
	createdAt time.Time
	updatedAt time.Time
	approvals []approval
	notes     []*Note
}

type projectState struct {
	Project
	// files[ref][path]
	files     map[string]map[string][]byte
	mrs       map[int]*mrState
	members   map[int]int // user id -> access level
	statuses  []*Status
	issues    []*Issue
	commits   map[string]Commit
	tags      []tagState        // in creation order
	branches  map[string]string // branch -> tip SHA (SetBranch)
	events    []PushEvent       // oldest first
	createdAt time.Time
}

type tagState struct {
	name, sha string
	createdAt time.Time
}

type groupState struct {
	id       int
	fullPath string
	members  map[int]int
}

// Server is the fake GitLab. Create it with New and Close it when done.
type Server struct {
	srv *httptest.Server

	mu           sync.Mutex
	now          func() time.Time
	users        map[int]*User
	tokens       map[string]int
	projects     map[int]*projectState
	groups       map[string]*groupState
	nextID       int
	approvalsErr int
	strict       bool
	failures     []failure
	log          []Request
	diffFiles    int // see SetDiffLimit
	// compareTimeout: see SetCompareTimeout.
	compareTimeout bool
	// partialEmails: see SetPartialEmailSearch.
	partialEmails bool
	oauthSt       *oauthState // the OAuth provider and its tokens (oauth.go)
}

// failure makes matching requests fail (see SetFailure).
type failure struct {
	method, substr string
	status         int
}

// New starts a fake GitLab. Its clock is time.Now until SetClock.
func New() *Server {
	s := &Server{
		now:      time.Now,
		users:    map[int]*User{},
		tokens:   map[string]int{},
		projects: map[int]*projectState{},
		groups:   map[string]*groupState{},
		nextID:   1000,
		strict:   true,
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// URL is the instance's base URL (the API is at URL()+"/api/v4").
func (s *Server) URL() string { return s.srv.URL }

// Client returns an HTTP client that reaches the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// SetClock replaces the clock used for timestamps.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetStrictStatuses chooses what a commit status posted again in the state
// the poster's latest status of that name already has gets. GitLab's
// state machine rejects pending->pending and running->running with a 400
// ("Cannot transition status via :enqueue from :pending"); strict (the
// default) answers the same 400 to a completed state posted again too, so
// a test notices an adapter that re-posts instead of posting on change.
func (s *Server) SetStrictStatuses(strict bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.strict = strict
}

// SetFailure makes every request with the method (any when "") whose
// decoded path contains substr answer status, to test how callers fail
// closed; status 0 removes the rule. (go-gitlab retries 429 and 5xx.)
func (s *Server) SetFailure(method, substr string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.failures[:0]
	for _, f := range s.failures {
		if f.method != method || f.substr != substr {
			kept = append(kept, f)
		}
	}
	s.failures = kept
	if status != 0 {
		s.failures = append(s.failures, failure{method: method, substr: substr, status: status})
	}
}

// AddUser adds (or replaces) an account.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.State == "" {
		u.State = "active"
	}
	if u.Name == "" {
		u.Name = u.Username
	}
	s.users[u.ID] = &u
}

// AddToken lets token authenticate as the user (PRIVATE-TOKEN header or
// "Authorization: Bearer").
func (s *Server) AddToken(token string, userID int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = userID
}

// AddProject adds a project.
func (s *Server) AddProject(p Project) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.DefaultBranch == "" {
		p.DefaultBranch = "main"
	}
	s.projects[p.ID] = &projectState{
		Project:   p,
		files:     map[string]map[string][]byte{},
		mrs:       map[int]*mrState{},
		members:   map[int]int{},
		commits:   map[string]Commit{},
		createdAt: s.now(),
	}
}

func (s *Server) project(id int) *projectState {
	p, ok := s.projects[id]
	if !ok {
		panic(fmt.Sprintf("fakegitlab: no project %d", id))
	}
	return p
}

func (s *Server) mr(projectID, iid int) *mrState {
	m, ok := s.project(projectID).mrs[iid]
	if !ok {
		panic(fmt.Sprintf("fakegitlab: no merge request !%d in project %d", iid, projectID))
	}
	return m
}

// SetFile stores a file at a ref (a branch, tag or SHA: refs are plain
// names here). A nil content removes it.
func (s *Server) SetFile(projectID int, ref, path string, content []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.project(projectID)
	if p.files[ref] == nil {
		p.files[ref] = map[string][]byte{}
	}
	if content == nil {
		delete(p.files[ref], path)
		return
	}
	p.files[ref][path] = append([]byte(nil), content...)
}

// SetMember gives a user an access level on a project (NoAccess removes).
func (s *Server) SetMember(projectID, userID, level int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.project(projectID)
	if level == NoAccess {
		delete(p.members, userID)
		return
	}
	p.members[userID] = level
}

// AddGroup adds a group by its full path (e.g. "acme/sre").
func (s *Server) AddGroup(id int, fullPath string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[strings.ToLower(fullPath)] = &groupState{id: id, fullPath: fullPath, members: map[int]int{}}
}

// SetGroupMember gives a user an access level in a group (NoAccess removes).
func (s *Server) SetGroupMember(fullPath string, userID, level int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[strings.ToLower(fullPath)]
	if !ok {
		panic("fakegitlab: no group " + fullPath)
	}
	if level == NoAccess {
		delete(g.members, userID)
		return
	}
	g.members[userID] = level
}

// AddMergeRequest adds a merge request; its commits also become commits of
// the repository (for compare and commit lookups).
func (s *Server) AddMergeRequest(projectID int, mr MergeRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.project(projectID)
	if mr.State == "" {
		mr.State = "opened"
	}
	now := s.now()
	p.mrs[mr.IID] = &mrState{MergeRequest: cloneMR(mr), createdAt: now, updatedAt: now}
	for _, c := range mr.Commits {
		p.commits[c.ID] = c
	}
	s.notePush(p, "", &p.mrs[mr.IID].MergeRequest)
}

// UpdateMergeRequest changes a merge request in place (a push: new SHA,
// diffs and commits; a retarget; a merge).
func (s *Server) UpdateMergeRequest(projectID, iid int, change func(*MergeRequest)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mr(projectID, iid)
	before := m.SHA
	change(&m.MergeRequest)
	s.notePush(s.project(projectID), before, &m.MergeRequest)
	m.MergeRequest = cloneMR(m.MergeRequest)
	m.updatedAt = s.now()
	for _, c := range m.Commits {
		s.project(projectID).commits[c.ID] = c
	}
}

func cloneMR(mr MergeRequest) MergeRequest {
	mr.Diffs = append([]Diff(nil), mr.Diffs...)
	mr.Commits = append([]Commit(nil), mr.Commits...)
	mr.ReviewerIDs = append([]int(nil), mr.ReviewerIDs...)
	return mr
}

// AddCommits adds commits to the repository (for compare and the commit
// merge_requests lookup).
func (s *Server) AddCommits(projectID int, commits ...Commit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.project(projectID)
	for _, c := range commits {
		p.commits[c.ID] = c
	}
}

// AddTag creates (or moves) a tag on a commit added with AddCommits or a
// merge request.
func (s *Server) AddTag(projectID int, name, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.project(projectID)
	for i := range p.tags {
		if p.tags[i].name == name {
			p.tags[i].sha = sha
			return
		}
	}
	p.tags = append(p.tags, tagState{name: name, sha: sha, createdAt: s.now()})
}

// Approve records an approval of the merge request by the user (as the
// "Approve" button does; re-approving is a no-op).
func (s *Server) Approve(projectID, iid, userID int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mr(projectID, iid)
	for _, a := range m.approvals {
		if a.userID == userID {
			return
		}
	}
	m.approvals = append(m.approvals, approval{userID: userID, at: s.now()})
}

// Unapprove withdraws the user's approval.
func (s *Server) Unapprove(projectID, iid, userID int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mr(projectID, iid)
	kept := m.approvals[:0]
	for _, a := range m.approvals {
		if a.userID != userID {
			kept = append(kept, a)
		}
	}
	m.approvals = kept
}

// SetApprovalsAPIStatus makes the approvals endpoint answer status (403 or
// 404, as on instances where it is unavailable); 0 restores it.
func (s *Server) SetApprovalsAPIStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.approvalsErr = status
}

// PostStatus posts a commit status as the user, with the same rules as the
// API (it returns the API's error message when GitLab would answer 400).
func (s *Server) PostStatus(projectID int, sha string, userID int, name, ref, state string) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, msg := s.postStatus(s.project(projectID), sha, userID, statusInput{Name: name, Ref: ref, State: state})
	if msg != "" {
		return Status{}, fmt.Errorf("fakegitlab: 400 %s", msg)
	}
	return *st, nil
}

// Statuses returns every status of the commit, oldest first, including the
// retried ones.
func (s *Server) Statuses(projectID int, sha string) []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Status
	for _, st := range s.project(projectID).statuses {
		if st.SHA == sha {
			out = append(out, *st)
		}
	}
	return out
}

// AddNote adds a note to a merge request as the user.
func (s *Server) AddNote(projectID, iid, userID int, body string) Note {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.addNote(s.mr(projectID, iid), userID, body, false)
}

// DeleteNote removes a note (as a maintainer may).
func (s *Server) DeleteNote(projectID, iid, noteID int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mr(projectID, iid)
	kept := m.notes[:0]
	for _, n := range m.notes {
		if n.ID != noteID {
			kept = append(kept, n)
		}
	}
	m.notes = kept
}

// Notes returns the notes of a merge request, oldest first.
func (s *Server) Notes(projectID, iid int) []Note {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Note
	for _, n := range s.mr(projectID, iid).notes {
		out = append(out, *n)
	}
	return out
}

// Issues returns the issues of a project, oldest first.
func (s *Server) Issues(projectID int) []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Issue
	for _, is := range s.project(projectID).issues {
		c := *is
		c.Labels = append([]string(nil), is.Labels...)
		out = append(out, c)
	}
	return out
}

// Requests returns the requests answered so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// RequestCount returns how many requests were answered so far.
func (s *Server) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.log)
}

// CountRequests counts the answered requests with the method (any when
// "") whose path contains substr.
func (s *Server) CountRequests(method, substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.log {
		if (method == "" || r.Method == method) && strings.Contains(r.Path, substr) {
			n++
		}
	}
	return n
}

// ResetRequests forgets the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
}

// --- state helpers (callers hold s.mu) ---

func (s *Server) id() int {
	s.nextID++
	return s.nextID
}

func (s *Server) addNote(m *mrState, userID int, body string, system bool) *Note {
	now := s.now()
	n := &Note{ID: s.id(), Body: body, AuthorID: userID, System: system, CreatedAt: now, UpdatedAt: now}
	m.notes = append(m.notes, n)
	return n
}

type statusInput struct {
	Name, Ref, State, Description, TargetURL string
}

// transitions names GitLab's state-machine events, for its error message.
var transitions = map[string]string{
	"pending":  "enqueue",
	"running":  "run",
	"success":  "succeed",
	"failed":   "drop",
	"canceled": "cancel",
}

// postStatus applies GitLab's rules: the poster's own latest pending or
// running status of that name and ref is moved to the new state (the
// same state is a 400); otherwise a new status is created and replaces
// (retries) the older ones of that name and ref.
func (s *Server) postStatus(p *projectState, sha string, userID int, in statusInput) (*Status, string) {
	if _, ok := transitions[in.State]; !ok {
		return nil, "state does not have a valid value"
	}
	if in.Name == "" {
		in.Name = "default"
	}
	now := s.now()
	var latest *Status
	for _, st := range p.statuses {
		if st.SHA == sha && st.Name == in.Name && st.Ref == in.Ref && !st.Retried {
			latest = st
		}
	}
	if latest != nil && latest.AuthorID == userID {
		active := latest.State == "pending" || latest.State == "running"
		if latest.State == in.State && (active || s.strict) {
			return nil, fmt.Sprintf("Cannot transition status via :%s from :%s (Reason(s): Status cannot transition via \"%s\")",
				transitions[in.State], latest.State, transitions[in.State])
		}
		if active {
			latest.State = in.State
			latest.Description = in.Description
			latest.TargetURL = in.TargetURL
			stamp(latest, now)
			return latest, ""
		}
	}
	for _, st := range p.statuses {
		if st.SHA == sha && st.Name == in.Name && st.Ref == in.Ref {
			st.Retried = true
		}
	}
	st := &Status{
		ID: s.id(), SHA: sha, Ref: in.Ref, Name: in.Name, State: in.State,
		Description: in.Description, TargetURL: in.TargetURL, AuthorID: userID, CreatedAt: now,
	}
	stamp(st, now)
	p.statuses = append(p.statuses, st)
	return st, ""
}

func stamp(st *Status, now time.Time) {
	switch st.State {
	case "running":
		st.StartedAt = now
	case "success", "failed", "canceled":
		if st.StartedAt.IsZero() {
			st.StartedAt = now
		}
		st.FinishedAt = now
	}
}

// compare lists the commits reachable from to but not from from, oldest
// first, as GitLab's compare API does.
func (p *projectState) compare(from, to string) []Commit {
	seen := map[string]bool{}
	walk := func(sha string, mark map[string]bool) {
		stack := []string{sha}
		for len(stack) > 0 {
			c := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if c == "" || mark[c] {
				continue
			}
			mark[c] = true
			stack = append(stack, p.commits[c].ParentIDs...)
		}
	}
	walk(from, seen)
	reach := map[string]bool{}
	walk(to, reach)
	var out []Commit
	for sha := range reach {
		if !seen[sha] {
			if c, ok := p.commits[sha]; ok {
				out = append(out, c)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Date.Equal(out[j].Date) {
			return out[i].Date.Before(out[j].Date)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// history lists the commits reachable from sha, newest first (by date,
// then ID), as GitLab's list of repository commits does.
func (p *projectState) history(sha string) []Commit {
	out := p.compare("", sha)
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
