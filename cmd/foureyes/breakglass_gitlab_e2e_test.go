package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/forge/gitlab"
	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
	"github.com/foureyes-dev/foureyes/store"
)

// noteHook is note.merge_request.json (GitLab's Note Hook example) patched
// to a note by user on mr, written while mr.SHA was its head.
func (e *glE2E) noteHook(mr fakegitlab.MergeRequest, user, noteID int, body string, at time.Time) map[string]any {
	m := glFixture(e.t, "note.merge_request.json")
	m["user"] = map[string]any{"id": user, "username": e.username(user), "name": e.username(user)}
	m["project_id"] = glProject
	obj(m, "project")["id"] = glProject
	obj(m, "project")["path_with_namespace"] = glPath
	oa := obj(m, "object_attributes")
	oa["id"] = noteID
	oa["note"] = body
	oa["author_id"] = user
	oa["created_at"] = at.UTC().Format("2006-01-02 15:04:05 UTC")
	mrm := obj(m, "merge_request")
	mrm["iid"] = mr.IID
	mrm["target_branch"] = glTarget
	obj(mrm, "last_commit")["id"] = mr.SHA
	return m
}

func (e *glE2E) sendNote(payload map[string]any) {
	e.t.Helper()
	body, _ := json.Marshal(payload)
	req, _ := http.NewRequest(http.MethodPost, e.sb.URL+"/webhooks/gitlab", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", gitlab.HookNote)
	req.Header.Set("X-Gitlab-Token", glSecret)
	req.Header.Set("Idempotency-Key", fmt.Sprintf("idem-%d", e.seq.Add(1)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		e.t.Fatalf("note delivery answered %d, want 202", resp.StatusCode)
	}
}

// comment adds a note by user on the fake and delivers its Note Hook.
func (e *glE2E) comment(mr fakegitlab.MergeRequest, user int, body string) map[string]any {
	e.t.Helper()
	n := e.fake.AddNote(glProject, mr.IID, user, body)
	m := e.noteHook(mr, user, n.ID, body, time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC).Add(time.Duration(n.ID)*time.Second))
	e.sendNote(m)
	return m
}

func (e *glE2E) replies(iid int) []string {
	var out []string
	for _, n := range e.fake.Notes(glProject, iid) {
		if n.AuthorID == glBot && strings.Contains(n.Body, "did not count") {
			out = append(out, n.Body)
		}
	}
	return out
}

func (e *glE2E) summaryNote(iid int) string {
	for _, n := range e.fake.Notes(glProject, iid) {
		if n.AuthorID == glBot && strings.HasPrefix(strings.TrimSpace(n.Body), gitlab.NoteMarker) {
			return n.Body
		}
	}
	e.t.Fatalf("no foureyes summary note on !%d", iid)
	return ""
}

func (e *glE2E) overrides() []audit.Record {
	recs, err := e.sb.srv.db.AuditRecords(context.Background(), store.AuditFilter{Repo: glPath})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []audit.Record
	for _, r := range recs {
		if r.Kind == audit.KindOverride {
			out = append(out, r)
		}
	}
	return out
}

func TestGitLabBreakGlass(t *testing.T) {
	e := newGLE2E(t)
	e.policy(`version: 1
break_glass:
  approvers: { teams: ["gitlabhq/sre"], users: ["alice", "carol", "renovate"] }
  required: 2
`)
	// alice authored the MR, carol committed its commit.
	mr := e.openMRWith(func(m *fakegitlab.MergeRequest) {
		m.Commits[0].CommitterName, m.Commits[0].CommitterEmail = "Carol", "carol@example.com"
	}, "src/app.go")
	if st := e.status(mr.SHA); st.State == "success" {
		t.Fatalf("before any note: %s %q", st.State, st.Description)
	}

	opening := e.comment(mr, glSam, "/foureyes break-glass checkout broken, INC-9")
	if st := e.status(mr.SHA); st.State == "success" {
		t.Fatalf("one key made the status succeed: %q", st.Description)
	}
	for _, u := range []int{glAlice, glCarol, glRenovate} {
		e.comment(mr, u, "/foureyes break-glass confirm")
	}
	if st := e.status(mr.SHA); st.State == "success" {
		t.Fatalf("the author, a committer or a bot made up a key: %q", st.Description)
	}
	got := e.replies(mr.IID)
	for _, want := range []string{"@alice, your break-glass comment did not count: author of the change",
		"@carol, your break-glass comment did not count: committed", "@renovate, your break-glass comment did not count: bot account"} {
		if !slices.ContainsFunc(got, func(b string) bool { return strings.HasPrefix(b, want) }) {
			t.Errorf("no reply %q among %q", want, got)
		}
	}
	e.sendNote(opening) // redelivered: still one key
	if st := e.status(mr.SHA); st.State == "success" {
		t.Fatalf("a redelivered note made a second key: %q", st.Description)
	}

	confirm := e.comment(mr, glSue, "/foureyes break-glass confirm")
	st := e.status(mr.SHA)
	if st.State != "success" || !strings.HasPrefix(st.Description, "break-glass: @sam and @sue overrode review") {
		t.Fatalf("two keys: %s %q", st.State, st.Description)
	}
	if note := e.summaryNote(mr.IID); !strings.Contains(note, "Review was overridden") || !strings.Contains(note, "checkout broken, INC-9") {
		t.Errorf("MR note:\n%s", note)
	}
	e.sendNote(confirm)
	e.status(mr.SHA)
	ov := e.overrides()
	if len(ov) != 1 || ov[0].HeadSHA != mr.SHA || ov[0].Forge != "gitlab" {
		t.Fatalf("override records: %+v", ov)
	}
	issues := e.fake.Issues(glProject)
	if len(issues) != 1 || !slices.Contains(issues[0].Labels, "break-glass") || !strings.Contains(issues[0].Description, "@sam and @sue") ||
		!strings.Contains(issues[0].Description, mr.SHA[:7]) {
		t.Fatalf("post-incident issues: %+v", issues)
	}
	if !hasMetric(t, e.sb.URL, `foureyes_overrides_total{forge="gitlab"} 1`) {
		t.Error(`foureyes_overrides_total{forge="gitlab"} is not 1`)
	}
	if len(e.replies(mr.IID)) != 3 {
		t.Errorf("replies: %q", e.replies(mr.IID))
	}

	mr = e.push(mr, glAlice, false)
	if st := e.status(mr.SHA); st.State == "success" {
		t.Fatalf("the override survived a push: %q", st.Description)
	}
	if len(e.overrides()) != 1 {
		t.Errorf("%d override records after the push", len(e.overrides()))
	}
}

// A note written on an earlier head binds there: after a push, a late
// confirmation of the old head does not complete an override of the new.
func TestGitLabBreakGlassNoteOnOldHead(t *testing.T) {
	e := newGLE2E(t)
	e.policy("version: 1\nbreak_glass:\n  approvers: { teams: [\"gitlabhq/sre\"] }\n")
	mr := e.openMR("src/app.go")
	e.comment(mr, glSam, "/foureyes break-glass outage")
	e.status(mr.SHA)
	old := mr
	mr = e.push(mr, glAlice, false)
	e.comment(mr, glSam, "/foureyes break-glass outage")
	n := e.fake.AddNote(glProject, mr.IID, glSue, "/foureyes break-glass confirm")
	e.sendNote(e.noteHook(old, glSue, n.ID, "/foureyes break-glass confirm", time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)))
	if st := e.status(mr.SHA); st.State == "success" {
		t.Fatalf("a confirmation of the old head overrode the new one: %q", st.Description)
	}
	// The old head is no longer the change: it is not judged, so nothing
	// was overridden, and sue is told her note came too late.
	if n := len(e.overrides()); n != 0 {
		t.Errorf("%d override records, want 0", n)
	}
	if r := e.replies(mr.IID); len(r) != 1 || !strings.Contains(r[0], "@sue") || !strings.Contains(r[0], "moved on from head") {
		t.Errorf("replies: %q", r)
	}
}
