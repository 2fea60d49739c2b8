package gitlab_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/forge/gitlab"
	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
)

func (e *env) publish(f *gitlab.Forge, state bot.State, markdown, prior string) string {
	e.t.Helper()
	id, err := f.Publish(e.ctx, bot.Report{
		Ref: e.ref(), Verdict: bot.Verdict{State: state}, Title: "title " + string(state),
		Markdown: markdown, DetailsURL: "https://foureyes.example/details/tok", PriorID: prior,
	})
	if err != nil {
		e.t.Fatalf("Publish(%s): %v", state, err)
	}
	return id
}

// ownStatuses returns the states of foureyes' statuses on the head.
func (e *env) ownStatuses() []string {
	var out []string
	for _, st := range e.fake.Statuses(projectID, headSHA) {
		if st.AuthorID == idFoureyes {
			out = append(out, st.State)
		}
	}
	return out
}

func TestPublishOneStatusOneNote(t *testing.T) {
	e := newEnv(t)
	id := e.publish(e.forge, bot.PendingState, "needs 1 approval", "")
	if got := e.ownStatuses(); strings.Join(got, ",") != "pending" {
		t.Fatalf("statuses: %v", got)
	}
	st := e.fake.Statuses(projectID, headSHA)[0]
	if st.Name != "foureyes" || st.Ref != "feature" || st.TargetURL != "https://foureyes.example/details/tok" || st.Description != "title pending" {
		t.Errorf("status: %+v", st)
	}
	notes := e.fake.Notes(projectID, mrIID)
	if len(notes) != 1 || !strings.HasPrefix(notes[0].Body, gitlab.NoteMarker) || !strings.Contains(notes[0].Body, "needs 1 approval") {
		t.Fatalf("notes: %+v", notes)
	}
	if !strings.HasPrefix(id, "pending|") {
		t.Errorf("ID %q", id)
	}

	// The same verdict again: nothing to do.
	e.fake.ResetRequests()
	id2 := e.publish(e.forge, bot.PendingState, "needs 1 approval", id)
	if n := e.fake.RequestCount(); n != 0 {
		t.Errorf("re-publishing an unchanged verdict made %d requests: %v", n, e.fake.Requests())
	}
	if id2 != id {
		t.Errorf("ID changed: %q -> %q", id, id2)
	}

	// Same state, new summary: the note is edited, no status is posted.
	e.fake.ResetRequests()
	id3 := e.publish(e.forge, bot.PendingState, "needs 1 approval from acme/sre", id2)
	if n := e.fake.CountRequests("POST", "/statuses/"); n != 0 {
		t.Errorf("status posted although its state did not change")
	}
	if n := e.fake.CountRequests("PUT", "/notes/"); n != 1 {
		t.Errorf("note edits: %d, want 1", n)
	}

	// New state: one status, note edited in place.
	e.fake.ResetRequests()
	e.publish(e.forge, bot.Success, "all approved", id3)
	if got := e.ownStatuses(); strings.Join(got, ",") != "success" {
		t.Errorf("statuses: %v (pending moved to success)", got)
	}
	if n := e.fake.CountRequests("POST", "/statuses/"); n != 1 {
		t.Errorf("status posts: %d, want 1", n)
	}
	notes = e.fake.Notes(projectID, mrIID)
	if len(notes) != 1 || !strings.Contains(notes[0].Body, "all approved") {
		t.Errorf("notes: %+v", notes)
	}
	e.noErrorsLogged()
}

func TestPublishAfterRestartFindsItsNote(t *testing.T) {
	e := newEnv(t)
	e.fake.AddNote(projectID, mrIID, idMallory, gitlab.NoteMarker+"\nforged summary")
	e.publish(e.forge, bot.Failure, "policy error at .gitlab/foureyes.yml:3:5", "")
	if notes := e.fake.Notes(projectID, mrIID); len(notes) != 2 || notes[1].AuthorID != idFoureyes {
		t.Fatalf("someone else's marker note must not be taken for ours: %+v", notes)
	}

	// A restarted process that lost the ID ("lookup": the service crashed
	// between publishing and recording it) re-posts the same state.
	f := e.fresh()
	e.fake.ResetRequests()
	e.publish(f, bot.Failure, "policy error at .gitlab/foureyes.yml:3:6", bot.ReportInFlight)
	notes := e.fake.Notes(projectID, mrIID)
	if len(notes) != 2 || !strings.Contains(notes[1].Body, ":3:6") {
		t.Errorf("the note was not edited in place: %+v", notes)
	}
	if got := e.ownStatuses(); strings.Join(got, ",") != "failed" {
		t.Errorf("statuses: %v", got)
	}
	// GitLab refused the same-state status (400); Publish did not fail.
	if n := e.fake.CountRequests("POST", "/statuses/"); n != 1 {
		t.Errorf("status posts: %d", n)
	}

	// A deleted note is re-created once.
	e.fake.DeleteNote(projectID, mrIID, notes[1].ID)
	e.publish(f, bot.Failure, "policy error at .gitlab/foureyes.yml:3:7", "failed|"+strconv.Itoa(notes[1].ID)+"|x")
	if notes := e.fake.Notes(projectID, mrIID); len(notes) != 2 || !strings.Contains(notes[1].Body, ":3:7") {
		t.Errorf("notes after deletion: %+v", notes)
	}
}

func TestForeignStatusDetectedAndReasserted(t *testing.T) {
	e := newEnv(t)
	e.change()
	id := e.publish(e.forge, bot.PendingState, "needs 1 approval", "")

	// A Developer posts a green "foureyes" status of their own.
	if _, err := e.fake.PostStatus(projectID, headSHA, idMallory, "foureyes", "feature", "success"); err != nil {
		t.Fatal(err)
	}
	c := e.change()
	if len(c.Foreign) != 1 {
		t.Fatalf("foreign: %+v", c.Foreign)
	}
	fc := c.Foreign[0]
	if fc.By.Login != "mallory" || fc.Conclusion != "success" || fc.HeadSHA != headSHA || fc.ID == 0 {
		t.Errorf("foreign check: %+v", fc)
	}
	if len(c.Notices) == 0 || !strings.Contains(c.Notices[len(c.Notices)-1], "mallory") {
		t.Errorf("notices: %v", c.Notices)
	}

	// The verdict is still pending: foureyes posts it again over mallory's.
	e.fake.ResetRequests()
	e.publish(e.forge, bot.PendingState, "needs 1 approval", id)
	if n := e.fake.CountRequests("POST", "/statuses/"); n != 1 {
		t.Errorf("re-assert posts: %d, want 1", n)
	}
	var latest []string
	for _, st := range e.fake.Statuses(projectID, headSHA) {
		if !st.Retried {
			latest = append(latest, st.State+" by "+strconv.Itoa(st.AuthorID))
		}
	}
	if strings.Join(latest, ",") != "pending by 1" {
		t.Errorf("latest statuses: %v, want foureyes' pending only", latest)
	}
	if c := e.change(); len(c.Foreign) != 0 {
		t.Errorf("after re-asserting: foreign %+v", c.Foreign)
	}
	e.noErrorsLogged()
}

func TestPublishTruncatesDescription(t *testing.T) {
	e := newEnv(t)
	_, err := e.forge.Publish(e.ctx, bot.Report{Ref: e.ref(), Verdict: bot.Verdict{State: bot.Success}, Title: strings.Repeat("é", 300), Markdown: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	st := e.fake.Statuses(projectID, headSHA)[0]
	if n := len([]rune(st.Description)); n != 255 {
		t.Errorf("description: %d characters, want 255", n)
	}
}

// TestRequestCounts measures what one evaluation of a small merge request
// costs: Policy + Change + Publish, as the service calls them. The
// merge request has 2 files, 2 commits by the author with a co-author, one
// approval, and a policy naming one group.
func TestRequestCounts(t *testing.T) {
	e := newEnv(t)
	e.fake.SetFile(projectID, "main", ".gitlab/foureyes.yml", []byte("version: 1\n"))
	e.fake.Approve(projectID, mrIID, idBob)
	evaluate := func(markdown, prior string) string {
		if _, err := e.forge.Policy(e.ctx, repo, "main"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.forge.Change(e.ctx, e.ref(), []string{"acme/sre"}); err != nil {
			t.Fatal(err)
		}
		return e.publish(e.forge, bot.Success, markdown, prior)
	}
	e.fake.ResetRequests()
	id := evaluate("ok", "")
	cold := e.fake.Requests()
	e.fake.ResetRequests()
	evaluate("ok", id)
	warm := e.fake.Requests()
	t.Logf("cold evaluation: %d requests", len(cold))
	for _, r := range cold {
		t.Logf("  %s", r)
	}
	t.Logf("warm evaluation (same head, same verdict): %d requests", len(warm))
	for _, r := range warm {
		t.Logf("  %s", r)
	}
	// A push: a new head, evaluated by the same process (the service has no
	// report ID for the new head yet).
	const newHead = "f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3"
	e.fake.UpdateMergeRequest(projectID, mrIID, func(m *fakegitlab.MergeRequest) {
		m.SHA = newHead
		m.Commits[0].ID = newHead
	})
	e.fake.ResetRequests()
	if _, err := e.forge.Policy(e.ctx, repo, "main"); err != nil {
		t.Fatal(err)
	}
	ref := e.ref()
	ref.HeadSHA = newHead
	if _, err := e.forge.Change(e.ctx, ref, []string{"acme/sre"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.forge.Publish(e.ctx, bot.Report{Ref: ref, Verdict: bot.Verdict{State: bot.PendingState}, Markdown: "stale"}); err != nil {
		t.Fatal(err)
	}
	pushed := e.fake.Requests()
	t.Logf("new head, warm process: %d requests", len(pushed))
	for _, r := range pushed {
		t.Logf("  %s", r)
	}
	// Cold: one GET /users/:id per commit identity found by search — only
	// the full user's public e-mail, compared exactly, links a commit (older
	// GitLab search matches e-mails by substring); the author's e-mail is
	// matched on the author's full user, without a search — and one read of
	// the project's push events: who pushed the head is a fact of its own
	// (issue 10), not the opener of the MR. The per-request reasons are in
	// TestRequestBudget (budget_test.go).
	// Warm: the policy (read here through the adapter, without the domain's
	// cache), the merge request and its approvals; the statuses are not
	// read again after foureyes' own success (statusread.go).
	if len(cold) > 13 || len(warm) > 3 || len(pushed) > 8 {
		t.Errorf("cold %d (want <= 13), warm %d (want <= 3), new head %d (want <= 8) requests", len(cold), len(warm), len(pushed))
	}
	e.noErrorsLogged()
}
