package fakegitlab

import (
	"strconv"
	"strings"
	"time"
)

// PushEvent is a "pushed" project event, as GitLab records one for every
// push (GET /projects/:id/events, https://docs.gitlab.com/api/events/):
// action_name "pushed to" / "pushed new", author, and push_data with
// commit_count, action (pushed, created, removed), ref_type, commit_from,
// commit_to, ref and commit_title.
type PushEvent struct {
	ID       int
	AuthorID int
	Ref      string // branch name
	From     string // commit_from ("" for a new branch)
	To       string // commit_to
	Count    int
	At       time.Time
}

// AddPushEvent records a push event in a project.
func (s *Server) AddPushEvent(projectID int, e PushEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addPushEvent(s.project(projectID), e)
}

func (s *Server) addPushEvent(p *projectState, e PushEvent) {
	if e.ID == 0 {
		e.ID = s.id()
	}
	if e.At.IsZero() {
		e.At = s.now()
	}
	if e.Count == 0 {
		e.Count = 1
	}
	p.events = append(p.events, e)
}

// notePush records the push that moved a merge request's source branch to
// its head, by PushedByID (default: the author), as GitLab does for every
// push: AddMergeRequest and UpdateMergeRequest call it (in the fork, for a
// merge request from a fork the fake knows).
func (s *Server) notePush(p *projectState, before string, m *MergeRequest) {
	if m.SHA == "" || m.SHA == before {
		return
	}
	who := m.PushedByID
	if who == 0 {
		who = m.AuthorID
	}
	if m.SourceProjectID != 0 && m.SourceProjectID != p.ID {
		// A fork's source branch is pushed to the fork: its events hold it.
		fork, ok := s.projects[m.SourceProjectID]
		if !ok {
			return
		}
		p = fork
	}
	s.addPushEvent(p, PushEvent{AuthorID: who, Ref: m.SourceBranch, From: before, To: m.SHA})
}

// listEvents serves GET /projects/:id/events, newest first, filtered by
// action (only "pushed" events are modelled; any other action lists none).
func (s *Server) listEvents(r *request, p *projectState) reply {
	action := r.URL.Query().Get("action")
	items := []any{}
	if action == "" || action == "pushed" {
		for i := len(p.events) - 1; i >= 0; i-- {
			e := p.events[i]
			u := s.users[e.AuthorID]
			var author any
			username := ""
			if u != nil {
				author, username = s.userBasicJSON(u), u.Username
			}
			name, act := "pushed to", "pushed"
			from := any(e.From)
			if e.From == "" || strings.Trim(e.From, "0") == "" {
				name, act, from = "pushed new", "created", nil
			}
			items = append(items, map[string]any{
				"id": e.ID, "project_id": p.ID, "action_name": name,
				"target_id": nil, "target_iid": nil, "target_type": nil, "target_title": nil,
				"author_id": e.AuthorID, "author": author, "author_username": username,
				"created_at": ts(e.At), "imported": false, "imported_from": "none",
				"push_data": map[string]any{
					"commit_count": e.Count, "action": act, "ref_type": "branch",
					"commit_from": from, "commit_to": e.To, "ref": e.Ref, "ref_count": nil,
					"commit_title": "commit " + strconv.Itoa(e.ID),
				},
			})
		}
	}
	return s.page(r, items)
}

// filesAt returns the files of a ref as GitLab resolves it: refs/heads/X is
// the branch X, refs/tags/X the tag X, and a bare name is looked up the way
// git does (gitrevisions(7): refs/tags/NAME before refs/heads/NAME), so a
// tag named like a branch shadows the branch for a bare name.
func (p *projectState) filesAt(ref string) map[string][]byte {
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		return p.files[strings.TrimPrefix(ref, "refs/heads/")]
	case strings.HasPrefix(ref, "refs/tags/"):
		if sha, ok := p.tagSHA(strings.TrimPrefix(ref, "refs/tags/")); ok {
			return p.files[sha]
		}
		return nil
	}
	if sha, ok := p.tagSHA(ref); ok {
		return p.files[sha]
	}
	return p.files[ref]
}
