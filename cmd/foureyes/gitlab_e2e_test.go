package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/internal/fakegithub"
	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
	"github.com/foureyes-dev/foureyes/internal/testfixtures"
)

// The GitLab side end to end: real GitLab payload examples (patched) in,
// through the real server and go-gitlab, a `foureyes` commit status and one
// MR note out on the fake GitLab.

const (
	glProject = 1 // the project of the fixtures: gitlabhq/gitlab-test
	glPath    = "gitlabhq/gitlab-test"
	glTarget  = "master"
	glSecret  = "gitlab-hook-secret"
)

// GitLab users of the scenarios.
const (
	glBot = iota + 500
	glAlice
	glBob
	glCarol
	glRita
	glRenovate
	glErin
	glSam
	glSue
	glMallory
)

type glE2E struct {
	t    *testing.T
	sb   *sandbox
	fake *fakegitlab.Server
	n    int
	seq  atomic.Int64
}

func newGLE2E(t *testing.T) *glE2E { return newGLE2EWith(t, nil) }

// newGLE2EWith starts the scenario's GitLab and server with more settings.
func newGLE2EWith(t *testing.T, extra map[string]string) *glE2E {
	t.Helper()
	fake := fakegitlab.New()
	t.Cleanup(fake.Close)
	users := []fakegitlab.User{
		{ID: glBot, Username: "foureyes-bot"},
		{ID: glAlice, Username: "alice", PublicEmail: "alice@example.com"},
		{ID: glBob, Username: "bob", PublicEmail: "bob@example.com"},
		{ID: glCarol, Username: "carol", PublicEmail: "carol@example.com"},
		{ID: glRita, Username: "rita"},
		{ID: glRenovate, Username: "renovate", Bot: true},
		{ID: glErin, Username: "erin"},
		{ID: glSam, Username: "sam"},
		{ID: glSue, Username: "sue"},
		{ID: glMallory, Username: "mallory"},
	}
	for _, u := range users {
		fake.AddUser(u)
	}
	fake.AddToken("bot-token", glBot)
	fake.AddProject(fakegitlab.Project{ID: glProject, PathWithNamespace: glPath, DefaultBranch: glTarget})
	for id, level := range map[int]int{glBot: fakegitlab.Developer, glAlice: fakegitlab.Developer, glBob: fakegitlab.Developer,
		glCarol: fakegitlab.Developer, glRita: fakegitlab.Reporter, glRenovate: fakegitlab.Developer, glErin: fakegitlab.Developer,
		glSam: fakegitlab.Developer, glSue: fakegitlab.Maintainer, glMallory: fakegitlab.Developer} {
		fake.SetMember(glProject, id, level)
	}
	fake.AddGroup(300, "gitlabhq/sre")
	fake.SetGroupMember("gitlabhq/sre", glSam, fakegitlab.Developer)
	fake.SetGroupMember("gitlabhq/sre", glSue, fakegitlab.Developer)

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	env := map[string]string{
		"FOUREYES_GITLAB_URL":            fake.URL(),
		"FOUREYES_GITLAB_TOKEN":          "bot-token",
		"FOUREYES_GITLAB_WEBHOOK_SECRET": glSecret,
	}
	maps.Copy(env, extra)
	sb, err := newSandbox(ctx, t.TempDir(), logger, env, withoutReconcileLoop)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	return &glE2E{t: t, sb: sb, fake: fake}
}

func glFixture(t testing.TB, name string) map[string]any {
	t.Helper()
	raw := testfixtures.Read(t, "gitlab", name)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

func (e *glE2E) policy(content string) {
	e.fake.SetFile(glProject, glTarget, ".gitlab/foureyes.yml", []byte(content))
}

func (e *glE2E) username(id int) string {
	for _, u := range []struct {
		id   int
		name string
	}{{glAlice, "alice"}, {glBob, "bob"}, {glCarol, "carol"}, {glRita, "rita"}, {glRenovate, "renovate"}, {glErin, "erin"}, {glSam, "sam"}, {glSue, "sue"}, {glMallory, "mallory"}} {
		if u.id == id {
			return u.name
		}
	}
	e.t.Fatalf("unknown user %d", id)
	return ""
}

// mrHook is merge_request.open.json patched to describe mr, with action
// and the acting user (GitLab's documentation has no example of the other
// actions; they differ in object_attributes.action and oldrev).
func (e *glE2E) mrHook(mr fakegitlab.MergeRequest, action string, actor int, oldrev string) map[string]any {
	m := glFixture(e.t, "merge_request.open.json")
	m["user"] = map[string]any{"id": actor, "username": e.username(actor), "name": e.username(actor)}
	obj(m, "project")["id"] = glProject
	obj(m, "project")["path_with_namespace"] = glPath
	oa := obj(m, "object_attributes")
	oa["iid"] = mr.IID
	oa["action"] = action
	oa["target_branch"] = glTarget
	oa["author_id"] = mr.AuthorID
	obj(oa, "last_commit")["id"] = mr.SHA
	if oldrev != "" {
		oa["oldrev"] = oldrev
	}
	delete(m, "changes")
	return m
}

func (e *glE2E) send(payload map[string]any, token, idemKey string) int {
	e.t.Helper()
	body, _ := json.Marshal(payload)
	req, _ := http.NewRequest(http.MethodPost, e.sb.URL+"/webhooks/gitlab", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", "Merge Request Hook")
	req.Header.Set("X-Gitlab-Token", token)
	if idemKey == "" {
		idemKey = fmt.Sprintf("idem-%d", e.seq.Add(1))
	}
	req.Header.Set("Idempotency-Key", idemKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (e *glE2E) deliver(payload map[string]any) {
	e.t.Helper()
	if s := e.send(payload, glSecret, ""); s != http.StatusAccepted {
		e.t.Fatalf("delivery answered %d, want 202", s)
	}
}

// glSHA makes a distinct 40-hex commit SHA from a name.
func glSHA(s string) string { return fakegithub.SHA(s) }

// openMR adds an MR by alice and sends "open" (alice pushed it).
func (e *glE2E) openMR(files ...string) fakegitlab.MergeRequest {
	e.t.Helper()
	return e.openMRWith(nil, files...)
}

// openMRWith is openMR with edit applied to the MR before GitLab first
// serves it: a commit's identity is fixed once it exists (real git cannot
// change the committer of a SHA), so tests shape commits here, never after.
func (e *glE2E) openMRWith(edit func(*fakegitlab.MergeRequest), files ...string) fakegitlab.MergeRequest {
	e.t.Helper()
	e.n++
	head := glSHA(fmt.Sprintf("%s-%d-1", e.t.Name(), e.n))
	mr := fakegitlab.MergeRequest{IID: e.n, Title: "change", AuthorID: glAlice, SourceBranch: fmt.Sprintf("f%d", e.n), TargetBranch: glTarget,
		SHA: head, Commits: []fakegitlab.Commit{{ID: head, Message: "change", AuthorName: "Alice", AuthorEmail: "alice@example.com"}}}
	for _, p := range files {
		mr.Diffs = append(mr.Diffs, fakegitlab.Diff{OldPath: p, NewPath: p, Diff: "@@ -1 +1 @@\n-a\n+b " + p + "\n"})
	}
	if edit != nil {
		edit(&mr)
	}
	e.fake.AddMergeRequest(glProject, mr)
	e.deliver(e.mrHook(mr, "open", glAlice, ""))
	return mr
}

func (e *glE2E) approve(mr fakegitlab.MergeRequest, user int) {
	e.t.Helper()
	e.fake.Approve(glProject, mr.IID, user)
	e.deliver(e.mrHook(mr, "approved", user, ""))
}

// push adds a commit by pusher as the new head and sends "update" with oldrev.
func (e *glE2E) push(mr fakegitlab.MergeRequest, pusher int, samePatch bool) fakegitlab.MergeRequest {
	e.t.Helper()
	old := mr.SHA
	head := glSHA(fmt.Sprintf("%s-%d-%d", e.t.Name(), mr.IID, len(mr.Commits)+1))
	e.fake.UpdateMergeRequest(glProject, mr.IID, func(m *fakegitlab.MergeRequest) {
		m.SHA = head
		m.PushedByID = pusher
		m.Commits = append([]fakegitlab.Commit{{ID: head, Message: "rebase", AuthorName: "Alice", AuthorEmail: "alice@example.com"}}, m.Commits...)
		if !samePatch {
			m.Diffs[0].Diff += "+more\n"
		}
	})
	mr.SHA = head
	e.deliver(e.mrHook(mr, "update", pusher, old))
	return mr
}

// status waits for the queue and returns foureyes' latest status on sha.
func (e *glE2E) status(sha string) fakegitlab.Status {
	e.t.Helper()
	if err := e.sb.Drain(context.Background(), 30*time.Second); err != nil {
		e.t.Fatal(err)
	}
	var last fakegitlab.Status
	for _, s := range e.fake.Statuses(glProject, sha) {
		if s.Name == "foureyes" && s.AuthorID == glBot && !s.Retried {
			last = s
		}
	}
	if last.ID == 0 {
		e.t.Fatalf("no foureyes status on %s", sha[:7])
	}
	return last
}

func (e *glE2E) note(iid int) string {
	e.t.Helper()
	var bodies []string
	for _, n := range e.fake.Notes(glProject, iid) {
		if n.AuthorID == glBot && !n.System {
			bodies = append(bodies, n.Body)
		}
	}
	if len(bodies) != 1 {
		e.t.Fatalf("MR !%d has %d foureyes notes, want exactly 1", iid, len(bodies))
	}
	return bodies[0]
}

func TestGitLabEndToEnd(t *testing.T) {
	const groupPolicy = `version: 1
categories:
  infra:
    paths: ["deploy/**"]
    approvals: 2
    reviewers: { teams: ["gitlabhq/sre"] }
  code:
    paths: ["**"]
    approvals: 1
`
	cases := []struct {
		name   string
		policy string
		run    func(e *glE2E) fakegitlab.MergeRequest
		state  string
		want   []string // in the MR note
	}{
		{"independent developer approves", "", func(e *glE2E) fakegitlab.MergeRequest {
			mr := e.openMR("app/main.go")
			e.approve(mr, glBob)
			return mr
		}, "success", []string{"@bob"}},
		{"author approves", "", func(e *glE2E) fakegitlab.MergeRequest {
			mr := e.openMR("app/main.go")
			e.approve(mr, glAlice)
			return mr
		}, "pending", []string{"author of the change"}},
		{"committer (by e-mail) approves", "", func(e *glE2E) fakegitlab.MergeRequest {
			mr := e.openMRWith(func(m *fakegitlab.MergeRequest) {
				m.Commits[0].CommitterName, m.Commits[0].CommitterEmail = "Carol", "carol@example.com"
			}, "app/main.go")
			e.approve(mr, glCarol)
			return mr
		}, "pending", []string{"committed to the change"}},
		{"reporter approves", "", func(e *glE2E) fakegitlab.MergeRequest {
			mr := e.openMR("app/main.go")
			e.approve(mr, glRita)
			return mr
		}, "pending", []string{"permission below write"}},
		{"bot user approves", "", func(e *glE2E) fakegitlab.MergeRequest {
			mr := e.openMR("app/main.go")
			e.approve(mr, glRenovate)
			return mr
		}, "pending", []string{"bot account"}},
		{"the pusher of the head approves", "", func(e *glE2E) fakegitlab.MergeRequest {
			mr := e.openMR("app/main.go")
			mr = e.push(mr, glErin, false)
			e.approve(mr, glErin)
			return mr
		}, "pending", []string{"pushed the current head"}},
		{"approval made stale by a push with a new diff", "", func(e *glE2E) fakegitlab.MergeRequest {
			mr := e.openMR("app/main.go")
			e.approve(mr, glBob)
			e.status(mr.SHA)
			return e.push(mr, glAlice, false)
		}, "pending", []string{"stale"}},
		{"approval survives a rebase that leaves the diff unchanged", "", func(e *glE2E) fakegitlab.MergeRequest {
			mr := e.openMR("app/main.go")
			e.approve(mr, glBob)
			e.status(mr.SHA)
			return e.push(mr, glAlice, true)
		}, "success", []string{"@bob"}},
		{"a category needs two approvals from a group", groupPolicy, func(e *glE2E) fakegitlab.MergeRequest {
			mr := e.openMR("deploy/job.yml")
			e.approve(mr, glSam)
			e.approve(mr, glBob)
			return mr
		}, "pending", []string{"infra needs 1 more approval from @gitlabhq/sre"}},
		{"two group members approve", groupPolicy, func(e *glE2E) fakegitlab.MergeRequest {
			mr := e.openMR("deploy/job.yml")
			e.approve(mr, glSam)
			e.approve(mr, glSue)
			return mr
		}, "success", []string{"@sam", "@sue"}},
		{"an invalid target-branch policy fails", "version: 1\nreview:\n  min_permission: writer\n", func(e *glE2E) fakegitlab.MergeRequest {
			mr := e.openMR("app/main.go")
			e.approve(mr, glBob)
			return mr
		}, "failed", []string{".gitlab/foureyes.yml:3:19", "min_permission"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newGLE2E(t)
			if tc.policy != "" {
				e.policy(tc.policy)
			}
			mr := tc.run(e)
			st := e.status(mr.SHA)
			note := e.note(mr.IID)
			if st.State != tc.state {
				t.Errorf("status %s, want %s (%s)\n%s", st.State, tc.state, st.Description, note)
			}
			// An edited note names people in code spans (TestGitLabNoteMentionsOnce);
			// whether this one was edited depends on when the events were read.
			plain := strings.ReplaceAll(note, "`", "")
			for _, w := range tc.want {
				if !strings.Contains(plain, w) {
					t.Errorf("note does not say %q:\n%s", w, note)
				}
			}
			// GitLab caps target_url at 255 characters: a longer signed
			// details link is in the note and the status links the MR.
			if !strings.Contains(st.TargetURL, "/details/") && !strings.Contains(st.TargetURL, "/-/merge_requests/") {
				t.Errorf("status target_url %q is neither a details page nor the merge request", st.TargetURL)
			}
			if !strings.Contains(st.TargetURL, "/details/") && !strings.Contains(note, "/details/") {
				t.Errorf("neither the status nor the note links the details page:\n%s", note)
			}
		})
	}
}

// A group mention notifies the whole group, and GitLab notifies whom an
// edit newly mentions: the note mentions @gitlabhq/sre once, when it is
// posted, and every later edit names the group without mentioning it.
func TestGitLabNoteMentionsOnce(t *testing.T) {
	e := newGLE2E(t)
	e.policy("version: 1\ncategories:\n  infra:\n    paths: [\"deploy/**\"]\n    approvals: 2\n    reviewers: { teams: [\"gitlabhq/sre\"] }\n")
	mr := e.openMR("deploy/job.yml")
	e.status(mr.SHA)
	first := e.note(mr.IID)
	if !strings.Contains(first, "from @gitlabhq/sre") {
		t.Fatalf("the first note does not mention the group:\n%s", first)
	}
	e.approve(mr, glSam)
	e.status(mr.SHA)
	edited := e.note(mr.IID)
	if edited == first {
		t.Fatalf("the note was not edited after an approval:\n%s", edited)
	}
	if !strings.Contains(edited, "`@gitlabhq/sre`") || !strings.Contains(edited, "`@sam`") {
		t.Errorf("the edit does not name the group and the approver quietly:\n%s", edited)
	}
	if regexp.MustCompile("(^|[^`])@(gitlabhq|sam)").MatchString(edited) {
		t.Errorf("the edit mentions someone again:\n%s", edited)
	}
}

func TestGitLabBadTokenStoresNothing(t *testing.T) {
	e := newGLE2E(t)
	e.n++
	mr := fakegitlab.MergeRequest{IID: e.n, AuthorID: glAlice, SourceBranch: "f", TargetBranch: glTarget, SHA: glSHA("bad-token"),
		Diffs: []fakegitlab.Diff{{OldPath: "a", NewPath: "a", Diff: "+x\n"}}}
	e.fake.AddMergeRequest(glProject, mr)
	if s := e.send(e.mrHook(mr, "open", glAlice, ""), "wrong", ""); s != http.StatusUnauthorized {
		t.Fatalf("bad token answered %d, want 401", s)
	}
	st, _ := e.sb.srv.db.QueueStats(context.Background(), time.Now())
	if st.Pending+st.Leased+st.Done != 0 {
		t.Fatalf("a delivery with a bad token was stored: %+v", st)
	}
	if n := len(e.fake.Statuses(glProject, mr.SHA)); n != 0 {
		t.Fatalf("%d statuses after a bad token", n)
	}
}

func TestGitLabRetriedDeliveryDoesNothingAndOneNote(t *testing.T) {
	e := newGLE2E(t)
	mr := e.openMR("app/main.go")
	e.status(mr.SHA)
	e.fake.Approve(glProject, mr.IID, glBob)
	hook := e.mrHook(mr, "approved", glBob, "")
	if s := e.send(hook, glSecret, "retry-me"); s != http.StatusAccepted {
		t.Fatalf("first delivery %d", s)
	}
	e.status(mr.SHA)
	before := e.fake.RequestCount()
	if s := e.send(hook, glSecret, "retry-me"); s != http.StatusOK {
		t.Fatalf("retried delivery answered %d, want 200", s)
	}
	e.status(mr.SHA)
	if after := e.fake.RequestCount(); after != before {
		t.Fatalf("a retried delivery caused %d GitLab API requests", after-before)
	}
	// Many more evaluations of the same MR: still one note, edited in place.
	for i := 0; i < 3; i++ {
		e.deliver(e.mrHook(mr, "approved", glBob, ""))
	}
	mr = e.push(mr, glAlice, false)
	if st := e.status(mr.SHA); st.State != "pending" {
		t.Fatalf("after a new push: %s", st.State)
	}
	if note := e.note(mr.IID); !strings.Contains(note, "stale") {
		t.Fatalf("the one note was not updated:\n%s", note)
	}
}

func TestGitLabForeignStatusIsReplacedAndAudited(t *testing.T) {
	e := newGLE2E(t)
	mr := e.openMR("app/main.go")
	if st := e.status(mr.SHA); st.State != "pending" {
		t.Fatalf("before: %s", st.State)
	}
	// mallory, a Developer, forges a green foureyes status on the head.
	if _, err := e.fake.PostStatus(glProject, mr.SHA, glMallory, "foureyes", mr.SourceBranch, "success"); err != nil {
		t.Fatal(err)
	}
	// Any later event re-reads the statuses: here rita's approval, which
	// cannot count (Reporter), so the honest verdict stays pending.
	e.approve(mr, glRita)
	if err := e.sb.Drain(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	var latest fakegitlab.Status
	for _, s := range e.fake.Statuses(glProject, mr.SHA) {
		if s.Name == "foureyes" && !s.Retried && s.ID > latest.ID {
			latest = s
		}
	}
	if latest.AuthorID != glBot || latest.State != "pending" {
		t.Fatalf("latest foureyes status is %s by user %d; want foureyes' own pending", latest.State, latest.AuthorID)
	}
	recs, err := e.sb.srv.db.AuditRecords(context.Background(), storeFilter(glPath))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		if r.Kind == "tamper" && strings.Contains(string(r.Data), "mallory") {
			found = true
		}
	}
	if !found {
		t.Fatal("the forged status was not audited with who did it")
	}
	// The server keeps the token's user in its store (forge/gitlab/self.go),
	// so a restarted process tells such a forgery from its own status
	// without asking GET /user.
	if self, err := e.sb.srv.db.Facts(context.Background(), "gitlab/self"); err != nil || len(self) != 1 {
		t.Fatalf("the token's user is not kept in the store: %v (%v)", self, err)
	}
}
