package fakegithub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Comment is a comment on an issue or pull request.
type Comment struct {
	ID        int64
	Issue     int // issue or pull request number
	Body      string
	Author    string
	CreatedAt time.Time
}

// createComment implements POST /repos/{owner}/{repo}/issues/{number}/comments
// ("Create an issue comment", REST API docs: issues/comments): pull
// requests are issues to this endpoint, the body needs "body", the answer
// is 201 with the comment, and an unknown number is 404.
func (f *Fake) createComment(w http.ResponseWriter, r *http.Request, rp *repo) {
	t, _ := r.Context().Value(tokenKey).(*token)
	n, _ := strconv.Atoi(r.PathValue("number"))
	if _, isPR := rp.prs[n]; !isPR && f.findIssue(rp, r.PathValue("number")) == nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	var b struct {
		Body *string `json:"body"`
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	if b.Body == nil {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed: body")
		return
	}
	c := &Comment{ID: f.id(), Issue: n, Body: *b.Body, Author: t.app.Slug + "[bot]", CreatedAt: f.now()}
	rp.comments = append(rp.comments, c)
	api := "https://api.github.com/repos/" + rp.fullName
	writeJSON(w, http.StatusCreated, map[string]any{
		"id":                       c.ID,
		"url":                      fmt.Sprintf("%s/issues/comments/%d", api, c.ID),
		"html_url":                 fmt.Sprintf("https://github.com/%s/pull/%d#issuecomment-%d", rp.fullName, n, c.ID),
		"issue_url":                fmt.Sprintf("%s/issues/%d", api, n),
		"body":                     c.Body,
		"user":                     f.userJSON(User{Login: c.Author, Type: "Bot"}),
		"created_at":               fmtTime(c.CreatedAt),
		"updated_at":               fmtTime(c.CreatedAt),
		"author_association":       "NONE",
		"performed_via_github_app": f.appJSON(t.app),
		// node_id, and user and performed_via_github_app as the simple-user and
		// integration the OpenAPI component "issue-comment" requires.
		"node_id": fmt.Sprintf("IC_%d", c.ID),
	})
}

// Comments returns the comments posted on issue or pull request number,
// oldest first.
func (f *Fake) Comments(repo string, number int) []Comment {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Comment
	for _, c := range f.repoOf(repo).comments {
		if c.Issue == number {
			out = append(out, *c)
		}
	}
	return out
}
