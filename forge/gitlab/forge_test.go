package gitlab_test

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/forge/gitlab"
	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
	"github.com/foureyes-dev/foureyes/policies"
)

// The cast of the tests. IDs are GitLab user IDs.
const (
	idFoureyes = 1  // the token's user (a project access token bot)
	idAlice    = 2  // author, Developer, public e-mail
	idBob      = 3  // Developer, in acme/sre, public e-mail
	idCarol    = 4  // Reporter
	idDave     = 5  // Maintainer
	idOlga     = 6  // Owner
	idGuest    = 7  // Guest
	idRenovate = 8  // bot flag on the full user
	idTokenBot = 9  // project access token user, bot flag not set here
	idMallory  = 10 // Developer who posts a status named foureyes
	idEve      = 11 // private e-mail only
	idStranger = 12 // not a member
	idMinimal  = 13 // minimal access in acme/sre

	projectID = 42
	mrIID     = 7
	headSHA   = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
	baseSHA   = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"
)

var repo = bot.Repo{FullName: "acme/app", ID: projectID, DefaultBranch: "main"}

type env struct {
	t     *testing.T
	fake  *fakegitlab.Server
	forge *gitlab.Forge
	ctx   context.Context
}

func newEnv(t *testing.T) *env {
	t.Helper()
	fake := fakegitlab.New()
	t.Cleanup(fake.Close)
	for _, u := range []fakegitlab.User{
		{ID: idFoureyes, Username: "project_42_bot_5f2c", Name: "foureyes", Bot: true},
		{ID: idAlice, Username: "alice", PublicEmail: "alice@example.com", Email: "alice@example.com"},
		{ID: idBob, Username: "Bob", PublicEmail: "bob@example.com", Email: "bob@example.com"},
		{ID: idCarol, Username: "carol"},
		{ID: idDave, Username: "dave"},
		{ID: idOlga, Username: "olga"},
		{ID: idGuest, Username: "gus"},
		{ID: idRenovate, Username: "renovate", Bot: true},
		{ID: idTokenBot, Username: "group_77_bot_9a8b7c"},
		{ID: idMallory, Username: "mallory"},
		{ID: idEve, Username: "eve", Email: "eve@corp.example"},
		{ID: idStranger, Username: "stranger"},
		{ID: idMinimal, Username: "minnie"},
	} {
		fake.AddUser(u)
	}
	fake.AddToken("tok-foureyes", idFoureyes)
	fake.AddToken("tok-mallory", idMallory)
	fake.AddProject(fakegitlab.Project{ID: projectID, PathWithNamespace: "acme/app", DefaultBranch: "main"})
	for id, level := range map[int]int{
		idFoureyes: fakegitlab.Developer, idAlice: fakegitlab.Developer, idBob: fakegitlab.Developer,
		idCarol: fakegitlab.Reporter, idDave: fakegitlab.Maintainer, idOlga: fakegitlab.Owner,
		idGuest: fakegitlab.Guest, idRenovate: fakegitlab.Developer, idTokenBot: fakegitlab.Maintainer,
		idMallory: fakegitlab.Developer, idEve: fakegitlab.Developer,
	} {
		fake.SetMember(projectID, id, level)
	}
	fake.AddGroup(100, "acme/sre")
	fake.SetGroupMember("acme/sre", idBob, fakegitlab.Developer)
	fake.SetGroupMember("acme/sre", idMinimal, fakegitlab.MinimalAccess)
	fake.AddGroup(101, "acme/dba")
	fake.SetGroupMember("acme/dba", idDave, fakegitlab.Maintainer)

	fake.AddMergeRequest(projectID, fakegitlab.MergeRequest{
		IID: mrIID, Title: "Add deploy job", AuthorID: idAlice,
		SourceBranch: "feature", TargetBranch: "main", SHA: headSHA, BaseSHA: baseSHA,
		Diffs: []fakegitlab.Diff{
			{OldPath: "deploy/job.yml", NewPath: "deploy/job.yml", Diff: "@@ -1 +1 @@\n-a\n+b\n"},
			{OldPath: "main.go", NewPath: "main.go", Diff: "@@ -2 +2 @@\n-x\n+y\n"},
		},
		Commits: []fakegitlab.Commit{
			{ID: headSHA, Message: "Deploy job\n\nCo-authored-by: Bob <bob@example.com>\n", AuthorName: "Alice", AuthorEmail: "alice@example.com",
				Date: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC), ParentIDs: []string{"c0"}},
			{ID: "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0", Message: "Start", AuthorName: "Alice", AuthorEmail: "alice@example.com",
				Date: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)},
		},
	})
	f, err := gitlab.New(gitlab.Config{BaseURL: fake.URL(), Token: "tok-foureyes"})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, fake: fake, forge: f, ctx: context.Background()}
}

// fresh returns another adapter on the same instance: a restarted process
// with empty caches.
func (e *env) fresh() *gitlab.Forge {
	e.t.Helper()
	f, err := gitlab.New(gitlab.Config{BaseURL: e.fake.URL(), Token: "tok-foureyes"})
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

func (e *env) ref() bot.ChangeRef {
	return bot.ChangeRef{Forge: bot.GitLab, Repo: repo, Number: mrIID, HeadSHA: headSHA}
}

func (e *env) change(teams ...string) *bot.Change {
	e.t.Helper()
	c, err := e.forge.Change(e.ctx, e.ref(), teams)
	if err != nil {
		e.t.Fatalf("Change: %v", err)
	}
	return c
}

func (e *env) noErrorsLogged() {
	e.t.Helper()
	for _, r := range e.fake.Requests() {
		if r.Status >= 400 && r.Status != 404 {
			e.t.Errorf("request answered with an error: %s", r)
		}
	}
}

func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestNewValidatesConfig(t *testing.T) {
	if _, err := gitlab.New(gitlab.Config{}); err == nil {
		t.Error("New without a token: want an error")
	}
	if _, err := gitlab.New(gitlab.Config{Token: "x", BaseURL: "not a url"}); err == nil {
		t.Error("New with a relative base URL: want an error")
	}
	if _, err := gitlab.New(gitlab.Config{Token: "x"}); err != nil {
		t.Errorf("New with the default base URL: %v", err)
	}
}

func TestBadTokenFails(t *testing.T) {
	e := newEnv(t)
	f, err := gitlab.New(gitlab.Config{BaseURL: e.fake.URL(), Token: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Change(e.ctx, e.ref(), nil); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Change with a bad token: got %v, want a 401 error", err)
	}
	if _, err := f.Publish(e.ctx, bot.Report{Ref: e.ref(), Verdict: bot.Verdict{State: bot.Success}}); err == nil {
		t.Error("Publish with a bad token: want an error")
	}
	if n := len(e.fake.Statuses(projectID, headSHA)); n != 0 {
		t.Errorf("statuses after a bad token: %d, want 0", n)
	}
}

func TestPolicyLookupOrderOnTargetBranch(t *testing.T) {
	e := newEnv(t)
	pf, err := e.forge.Policy(e.ctx, repo, "main")
	if err != nil || pf.Found {
		t.Fatalf("no policy anywhere: got %+v, %v; want Found=false", pf, err)
	}

	e.fake.SetFile(projectID, "main", ".github/foureyes.yml", []byte("version: 1 # github\n"))
	e.fake.SetFile(projectID, "main", ".foureyes.yml", []byte("version: 1 # root\n"))
	// On the head branch only: must never be read for a change into main.
	e.fake.SetFile(projectID, "feature", ".gitlab/foureyes.yml", []byte("version: 1 # head\n"))

	pf, err = e.forge.Policy(e.ctx, repo, "main")
	if err != nil {
		t.Fatal(err)
	}
	if !pf.Found || pf.Source != "acme/app@main:.foureyes.yml" || string(pf.Data) != "version: 1 # root\n" {
		t.Errorf("got %+v (%q), want .foureyes.yml from main", pf, pf.Data)
	}

	e.fake.SetFile(projectID, "main", ".gitlab/foureyes.yml", []byte("version: 1 # gitlab\n"))
	pf, _ = e.forge.Policy(e.ctx, repo, "main")
	if pf.Source != "acme/app@main:.gitlab/foureyes.yml" {
		t.Errorf("got %s, want .gitlab/foureyes.yml first", pf.Source)
	}
	e.noErrorsLogged()
}

func TestChangeBasics(t *testing.T) {
	e := newEnv(t)
	c := e.change()
	if c.Ref.HeadSHA != headSHA || c.BaseRef != "main" || c.BaseSHA != "" || c.State != "open" {
		t.Errorf("change: %+v", c)
	}
	if c.Author.Login != "alice" || c.Title != "Add deploy job" || !strings.HasSuffix(c.URL, "/acme/app/-/merge_requests/7") {
		t.Errorf("author/title/url: %+v %q %q", c.Author, c.Title, c.URL)
	}
	if len(c.Files) != 2 || c.Files[0].Path != "deploy/job.yml" || c.Files[0].PatchDigest != digest("100644 100644\n@@ -1 +1 @@\n-a\n+b\n") {
		t.Errorf("files: %+v", c.Files)
	}
	if len(c.Commits) != 2 || c.Commits[0].Author.Login != "alice" || c.Commits[0].Committer.Login != "alice" {
		t.Errorf("commits: %+v", c.Commits)
	}
	if len(c.Reviews) != 0 || c.ReviewsFromEvents || len(c.Foreign) != 0 || c.EvalError != "" {
		t.Errorf("unexpected facts: %+v", c)
	}
}

func TestDiffsPaginationAndDigest(t *testing.T) {
	e := newEnv(t)
	var diffs []fakegitlab.Diff
	for i := range 150 {
		p := fmt.Sprintf("src/f%03d.go", i)
		diffs = append(diffs, fakegitlab.Diff{OldPath: p, NewPath: p, Diff: "@@ -1 +1 @@\n-" + p + "\n+x\n"})
	}
	diffs = append(diffs,
		fakegitlab.Diff{OldPath: "old/name.sql", NewPath: "new/name.sql", RenamedFile: true, Diff: ""},
		fakegitlab.Diff{OldPath: "gone.txt", NewPath: "gone.txt", DeletedFile: true, Diff: "@@ -1 +0,0 @@\n-bye\n"},
		fakegitlab.Diff{OldPath: "new.txt", NewPath: "new.txt", NewFile: true, Diff: "@@ -0,0 +1 @@\n+hi\n"},
		fakegitlab.Diff{OldPath: "huge.json", NewPath: "huge.json", TooLarge: true},
	)
	e.fake.UpdateMergeRequest(projectID, mrIID, func(m *fakegitlab.MergeRequest) { m.Diffs = diffs })

	c := e.change()
	if len(c.Files) != 154 {
		t.Fatalf("files: %d, want 154", len(c.Files))
	}
	if n := e.fake.CountRequests("GET", "/diffs"); n != 2 {
		t.Errorf("diffs requests: %d, want 2 pages of 100", n)
	}
	if got, want := c.Files[149].PatchDigest, digest("100644 100644\n@@ -1 +1 @@\n-src/f149.go\n+x\n"); got != want {
		t.Errorf("digest of file 149: %s, want %s", got, want)
	}
	byPath := map[string]bot.File{}
	for _, f := range c.Files {
		byPath[f.Path] = f
	}
	if f := byPath["new/name.sql"]; f.Status != "renamed" || f.PreviousPath != "old/name.sql" || f.PatchDigest != digest("100644 100644\n") {
		t.Errorf("rename: %+v", f)
	}
	if f := byPath["gone.txt"]; f.Status != "removed" {
		t.Errorf("deletion: %+v", f)
	}
	if f := byPath["new.txt"]; f.Status != "added" {
		t.Errorf("addition: %+v", f)
	}
	if f := byPath["huge.json"]; f.PatchDigest == digest("") || f.PatchDigest == "" {
		t.Errorf("a diff GitLab does not render must not digest as an empty patch: %+v", f)
	}

	// The head is unchanged: diffs and commits come from the cache.
	e.fake.ResetRequests()
	e.change()
	if n := e.fake.CountRequests("GET", "/diffs") + e.fake.CountRequests("GET", "/merge_requests/7/commits"); n != 0 {
		t.Errorf("re-reading the same head fetched diffs/commits %d times, want 0", n)
	}
	// A new head is read again.
	e.fake.UpdateMergeRequest(projectID, mrIID, func(m *fakegitlab.MergeRequest) { m.SHA = "d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2" })
	e.fake.ResetRequests()
	if c := e.change(); c.Ref.HeadSHA != "d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2" {
		t.Errorf("head: %s", c.Ref.HeadSHA)
	}
	if n := e.fake.CountRequests("GET", "/diffs"); n != 2 {
		t.Errorf("diffs requests for a new head: %d, want 2", n)
	}
}

func TestAccessLevelMapping(t *testing.T) {
	e := newEnv(t)
	want := map[string]policies.Permission{
		"gus":      policies.PermissionRead,
		"carol":    policies.PermissionRead,
		"bob":      policies.PermissionWrite,
		"dave":     policies.PermissionMaintain,
		"olga":     policies.PermissionAdmin,
		"stranger": policies.PermissionNone,
	}
	for _, id := range []int{idGuest, idCarol, idBob, idDave, idOlga, idStranger} {
		e.fake.Approve(projectID, mrIID, id)
	}
	c := e.change()
	if len(c.Reviews) != len(want) {
		t.Fatalf("reviews: %+v", c.Reviews)
	}
	for login, p := range want {
		if got := c.Facts(login).Permission; got != p {
			t.Errorf("%s: permission %v, want %v", login, got, p)
		}
		if _, ok := c.Reviewers[login]; !ok {
			t.Errorf("reviewer key %q missing (keys are lower-case logins): %v", login, c.Reviewers)
		}
	}
	for _, r := range c.Reviews {
		if r.State != bot.Approved || r.CommitSHA != "" || r.At.IsZero() {
			t.Errorf("review %+v: want approved, no commit (bound by the service), with approved_at", r)
		}
	}
}

func TestGroupMembership(t *testing.T) {
	e := newEnv(t)
	e.fake.Approve(projectID, mrIID, idBob)
	e.fake.Approve(projectID, mrIID, idDave)
	e.fake.Approve(projectID, mrIID, idMinimal)
	c := e.change("acme/sre", "acme/dba", "acme/nosuchgroup")
	if f := c.Facts("bob"); !f.InTeam("acme/sre") || f.InTeam("acme/dba") {
		t.Errorf("bob teams: %v", f.Teams)
	}
	if f := c.Facts("dave"); !f.InTeam("acme/dba") || f.InTeam("acme/sre") {
		t.Errorf("dave teams: %v", f.Teams)
	}
	if f := c.Facts("minnie"); len(f.Teams) != 0 {
		t.Errorf("minimal access is not membership: %v", f.Teams)
	}
	// Without teams in the policy, no group is asked about.
	e.fake.ResetRequests()
	e.change()
	if n := e.fake.CountRequests("GET", "/groups/"); n != 0 {
		t.Errorf("group requests without teams: %d", n)
	}
}

func TestBots(t *testing.T) {
	e := newEnv(t)
	for _, id := range []int{idRenovate, idTokenBot, idBob} {
		e.fake.Approve(projectID, mrIID, id)
	}
	c := e.change()
	for _, r := range c.Reviews {
		wantBot := r.Reviewer.Login != "Bob"
		if r.Reviewer.Bot != wantBot || c.Facts(r.Reviewer.Login).Bot != wantBot {
			t.Errorf("%s: review bot %v, facts bot %v; want %v", r.Reviewer.Login, r.Reviewer.Bot, c.Facts(r.Reviewer.Login).Bot, wantBot)
		}
	}
	if n := e.fake.CountRequests("GET", "/users/8") + e.fake.CountRequests("GET", "/users/9") + e.fake.CountRequests("GET", "/users/3"); n != 3 {
		t.Errorf("GET /users/:id: %d, want one per approver (the bot flag is only on the full user)", n)
	}
}

func TestCommittersByEmail(t *testing.T) {
	e := newEnv(t)
	host := strings.TrimPrefix(e.fake.URL(), "http://")
	host = host[:strings.IndexByte(host, ':')]
	e.fake.UpdateMergeRequest(projectID, mrIID, func(m *fakegitlab.MergeRequest) {
		m.Commits = []fakegitlab.Commit{
			{ID: headSHA, Message: "Fix\n\nCo-authored-by: Bob <BOB@example.com>\nCo-authored-by: Ghost <ghost@nowhere.example>\n",
				AuthorName: "Eve", AuthorEmail: "eve@corp.example", CommitterName: "Alice", CommitterEmail: "alice@example.com"},
			{ID: "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1", Message: "Web IDE",
				AuthorName: "Eve", AuthorEmail: fmt.Sprintf("%d-eve@users.noreply.%s", idEve, host)},
		}
	})
	c := e.change()
	c0 := c.Commits[0]
	if c0.Author.Known() || c0.Author.Email != "eve@corp.example" {
		t.Errorf("private e-mail must stay unlinked: %+v", c0.Author)
	}
	if c0.Committer.Login != "alice" {
		t.Errorf("committer: %+v", c0.Committer)
	}
	if len(c0.CoAuthors) != 2 || c0.CoAuthors[0].Login != "Bob" || c0.CoAuthors[1].Known() {
		t.Errorf("co-authors: %+v", c0.CoAuthors)
	}
	if a := c.Commits[1].Author; a.Login != "eve" || a.ID != idEve {
		t.Errorf("no-reply e-mail: %+v", a)
	}
	if strings.Join(c.Unverified, ",") != "eve@corp.example,ghost@nowhere.example" {
		t.Errorf("unverified: %v", c.Unverified)
	}

	// E-mail lookups are cached.
	e.fake.ResetRequests()
	e.forge.Change(e.ctx, bot.ChangeRef{Repo: repo, Number: mrIID}, nil)
	if n := e.fake.CountRequests("GET", "/users"); n != 0 {
		t.Errorf("user lookups on a warm cache: %d", n)
	}
}

func TestApprovalsUnavailableFallsBackToEvents(t *testing.T) {
	for _, status := range []int{403, 404} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			e := newEnv(t)
			e.fake.Approve(projectID, mrIID, idBob)
			e.fake.SetApprovalsAPIStatus(status)
			c := e.change("acme/sre")
			if !c.ReviewsFromEvents || len(c.Reviews) != 0 {
				t.Fatalf("ReviewsFromEvents=%v reviews=%v", c.ReviewsFromEvents, c.Reviews)
			}
			if len(c.Notices) == 0 || !strings.Contains(c.Notices[0], fmt.Sprint(status)) {
				t.Errorf("notices: %v", c.Notices)
			}
			// The approver is known only from its event; its facts must be
			// there for the service.
			if f, ok := c.Reviewers["bob"]; !ok || f.Permission != policies.PermissionWrite || !f.InTeam("acme/sre") {
				t.Errorf("facts of bob: %+v (present %v)", f, ok)
			}
		})
	}
}

func TestOpenChanges(t *testing.T) {
	e := newEnv(t)
	e.fake.AddMergeRequest(projectID, fakegitlab.MergeRequest{IID: 8, AuthorID: idBob, SourceBranch: "x", TargetBranch: "release/1", SHA: "e1"})
	e.fake.AddMergeRequest(projectID, fakegitlab.MergeRequest{IID: 9, AuthorID: idBob, SourceBranch: "y", TargetBranch: "main", SHA: "e2", State: "merged"})
	e.fake.AddMergeRequest(projectID, fakegitlab.MergeRequest{IID: 10, AuthorID: idBob, SourceBranch: "z", TargetBranch: "main", SHA: "e3"})
	refs, err := e.forge.OpenChanges(e.ctx, repo, "main")
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 || refs[0].Number != 7 || refs[1].Number != 10 || refs[1].HeadSHA != "e3" || refs[0].Forge != bot.GitLab {
		t.Errorf("open changes into main: %+v", refs)
	}
}

func TestReleaseGuardHelpers(t *testing.T) {
	e := newEnv(t)
	changes, mergedAt, err := e.forge.ChangesOfCommit(e.ctx, repo, "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0")
	if err != nil || len(changes) != 1 || changes[0].Ref.Number != mrIID || changes[0].Author.Login != "alice" || len(mergedAt) != 1 || !mergedAt[0].IsZero() {
		t.Errorf("ChangesOfCommit: %+v, %v, %v", changes, mergedAt, err)
	}
	at := time.Date(2025, 3, 2, 8, 0, 0, 0, time.UTC)
	e.fake.UpdateMergeRequest(projectID, mrIID, func(m *fakegitlab.MergeRequest) { m.State, m.MergedAt = "merged", at })
	changes, mergedAt, err = e.forge.ChangesOfCommit(e.ctx, repo, headSHA)
	if err != nil || len(changes) != 1 || changes[0].State != "merged" || changes[0].Ref.HeadSHA != headSHA || !mergedAt[0].Equal(at) {
		t.Errorf("ChangesOfCommit of a merged MR: %+v, %v, %v", changes, mergedAt, err)
	}

	// A push of 25 commits: GitLab's payload lists only 20.
	var prev string = "r0"
	e.fake.AddCommits(projectID, fakegitlab.Commit{ID: "r0", Message: "root", Date: time.Unix(0, 0)})
	for i := 1; i <= 25; i++ {
		id := fmt.Sprintf("r%d", i)
		e.fake.AddCommits(projectID, fakegitlab.Commit{ID: id, Message: id, AuthorName: "Dave", AuthorEmail: "dave@example.com",
			Date: time.Unix(int64(i)*60, 0), ParentIDs: []string{prev}})
		prev = id
	}
	commits, err := e.forge.Compare(e.ctx, repo, "r0", "r25")
	if err != nil || len(commits) != 25 || commits[0].SHA != "r1" || commits[24].SHA != "r25" || commits[0].Author.Email != "dave@example.com" {
		t.Errorf("Compare: %d commits, %v", len(commits), err)
	}

	// History walks parents: newest first, capped.
	hist, err := e.forge.History(e.ctx, repo, "r25", 10)
	if err != nil || len(hist) != 10 || hist[0].SHA != "r25" || hist[9].SHA != "r16" {
		t.Errorf("History: %d commits, %v", len(hist), err)
	}
	// Compare(after, before) is empty for a fast-forward and lists the
	// dropped commits for a rewrite.
	if back, err := e.forge.Compare(e.ctx, repo, "r25", "r20"); err != nil || len(back) != 0 {
		t.Errorf("Compare back: %d commits, %v", len(back), err)
	}
	e.fake.AddTag(projectID, "v1.0.0", "r10")
	e.fake.AddTag(projectID, "v1.1.0", "r20")
	if tags, err := e.forge.Tags(e.ctx, repo); err != nil || len(tags) != 2 || tags["v1.0.0"] != "r10" || tags["v1.1.0"] != "r20" {
		t.Errorf("Tags: %v, %v", tags, err)
	}

	url, err := e.forge.OpenIssue(e.ctx, repo, "Unreviewed push to main", "details <!-- m1 -->", []string{"foureyes", "unreviewed-push"})
	if err != nil || !strings.Contains(url, "/acme/app/-/issues/1") {
		t.Fatalf("OpenIssue: %q, %v", url, err)
	}
	if found, err := e.forge.FindIssue(e.ctx, repo, "<!-- m1 -->"); err != nil || found != url {
		t.Errorf("FindIssue: %q, %v", found, err)
	}
	if found, err := e.forge.FindIssue(e.ctx, repo, "<!-- m2 -->"); err != nil || found != "" {
		t.Errorf("FindIssue of an unknown marker: %q, %v", found, err)
	}

	// The release status: posted once per state, for the ref it is about.
	id, err := e.forge.PublishCommit(e.ctx, repo, "main", "r25", "1 unreviewed commit", "md", "", bot.Failure, "")
	if err != nil || id != "failed" {
		t.Fatalf("PublishCommit: %q, %v", id, err)
	}
	for _, prior := range []string{id, bot.ReportInFlight} {
		if again, err := e.forge.PublishCommit(e.ctx, repo, "main", "r25", "1 unreviewed commit", "md", "", bot.Failure, prior); err != nil || again != "failed" {
			t.Fatalf("PublishCommit again (prior %q): %q, %v", prior, again, err)
		}
	}
	if sts := e.fake.Statuses(projectID, "r25"); len(sts) != 1 || sts[0].State != "failed" || sts[0].Ref != "main" || sts[0].Name != "foureyes" {
		t.Errorf("statuses: %+v", sts)
	}
	if is := e.fake.Issues(projectID); len(is) != 1 || strings.Join(is[0].Labels, ",") != "foureyes,unreviewed-push" || is[0].AuthorID != idFoureyes {
		t.Errorf("issue: %+v", is)
	}
}

// TestDigestsFollowContentIdentity: GitLab's diff text of a binary file
// names only its paths, and a mode change (chmod +x, a symlink) shows no
// text at all; neither may let two different contents share a digest.
func TestDigestsFollowContentIdentity(t *testing.T) {
	e := newEnv(t)
	digestOf := func(head string, d fakegitlab.Diff) string {
		t.Helper()
		e.fake.UpdateMergeRequest(projectID, mrIID, func(m *fakegitlab.MergeRequest) {
			m.SHA = head
			m.Diffs = []fakegitlab.Diff{d}
		})
		return bot.DiffDigest(e.change().Files)
	}
	bin := "Binary files a/logo.png and b/logo.png differ\n"
	b1 := digestOf(fakeSHA("bin-1"), fakegitlab.Diff{OldPath: "logo.png", NewPath: "logo.png", Diff: bin})
	b2 := digestOf(fakeSHA("bin-2"), fakegitlab.Diff{OldPath: "logo.png", NewPath: "logo.png", Diff: bin})
	if b1 == b2 {
		t.Error("two heads with a changed binary share a digest: an approval of one would count for the other")
	}
	patch := "@@ -1 +1 @@\n-a\n+b\n"
	plain := digestOf(fakeSHA("m-1"), fakegitlab.Diff{OldPath: "run.sh", NewPath: "run.sh", Diff: patch})
	exec := digestOf(fakeSHA("m-2"), fakegitlab.Diff{OldPath: "run.sh", NewPath: "run.sh", Diff: patch, BMode: "100755"})
	link := digestOf(fakeSHA("m-3"), fakegitlab.Diff{OldPath: "run.sh", NewPath: "run.sh", Diff: patch, BMode: "120000"})
	if plain == exec || plain == link || exec == link {
		t.Errorf("modes are not part of the digest: %s %s %s", plain, exec, link)
	}
	// The same text diff on another head (a rebase) keeps its digest.
	if again := digestOf(fakeSHA("m-4"), fakegitlab.Diff{OldPath: "run.sh", NewPath: "run.sh", Diff: patch}); again != plain {
		t.Error("the same diff on a rebased head changed its digest")
	}
}

// fakeSHA is a deterministic 40-hex SHA for s.
func fakeSHA(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
