package reconcile_test

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/forge/gitlab"
	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
	"github.com/foureyes-dev/foureyes/reconcile"
	"github.com/foureyes-dev/foureyes/store"
)

// The GitLab side, through the real adapter and the fake GitLab, with the
// real SQLite store: what reconciliation queues when GitLab sent no hooks
// (more than three branches or tags pushed at once).

const project = 42

var repo = bot.Repo{FullName: "acme/app", ID: project, DefaultBranch: "main"}

type env struct {
	t       *testing.T
	ctx     context.Context
	fake    *fakegitlab.Server
	db      *store.DB
	r       *reconcile.Reconciler
	queued  []bot.Event
	seen    map[string]bool
	counted int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), seen: map[string]bool{}}
	e.fake = fakegitlab.New()
	t.Cleanup(e.fake.Close)
	e.fake.AddUser(fakegitlab.User{ID: 1, Username: "foureyes-bot"})
	e.fake.AddToken("tok", 1)
	e.fake.AddProject(fakegitlab.Project{ID: project, PathWithNamespace: repo.FullName, DefaultBranch: "main"})
	e.fake.SetMember(project, 1, fakegitlab.Developer)
	f, err := gitlab.New(gitlab.Config{BaseURL: e.fake.URL(), Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(e.ctx, "sqlite:"+filepath.Join(t.TempDir(), "foureyes.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	e.r = &reconcile.Reconciler{
		Forges: map[bot.ForgeName]reconcile.Forge{bot.GitLab: f},
		Store:  db,
		// The queue's contract: a delivery ID stored once is a duplicate.
		Enqueue: func(_ context.Context, ev bot.Event) (bool, error) {
			if e.seen[ev.DeliveryID] {
				return true, nil
			}
			e.seen[ev.DeliveryID] = true
			e.queued = append(e.queued, ev)
			return false, nil
		},
		Observer: func(string) { e.counted++ },
	}
	return e
}

// judged records a push as handled by the guard (what Tracker does).
func (e *env) judged(ref, after string) {
	e.t.Helper()
	ev := bot.Event{Forge: bot.GitLab, Repo: repo, Kind: bot.EventBranchPush, Push: &bot.PushEvent{Ref: ref, After: after}}
	if err := reconcile.Record(e.ctx, e.db, ev); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) run() int {
	e.t.Helper()
	n, err := e.r.Run(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) take() []string {
	var out []string
	for _, ev := range e.queued {
		out = append(out, string(ev.Kind)+" "+ev.Push.Ref+" "+ev.Push.Before[:min(2, len(ev.Push.Before))]+".."+ev.Push.After)
		if !ev.Push.Reconciled || ev.Action != "reconciled" {
			e.t.Errorf("%s is not marked reconciled", ev.DeliveryID)
		}
	}
	sort.Strings(out)
	e.queued = nil
	return out
}

func TestReconcileQueuesWhatMovedSinceLastJudged(t *testing.T) {
	e := newEnv(t)
	e.fake.SetBranch(project, "main", "a1")
	e.fake.SetBranch(project, "release/1", "r1")
	e.fake.SetBranch(project, "topic", "t1") // not guarded by the default policy
	e.fake.AddTag(project, "v1.0", "a1")
	e.judged("refs/heads/main", "a1")

	// First run: the baseline. release/1 and v1.0 predate foureyes' record
	// of this repository and are taken as they are.
	if n := e.run(); n != 0 {
		t.Fatalf("first run queued %d: %v", n, e.take())
	}

	// Four refs moved in one push: GitLab sent no hook at all.
	e.fake.SetBranch(project, "main", "a2")
	e.fake.SetBranch(project, "release/1", "r2")
	e.fake.SetBranch(project, "release/2", "n1")
	e.fake.SetBranch(project, "topic", "t2")
	e.fake.AddTag(project, "v1.1", "a2")
	e.fake.AddTag(project, "nightly", "a2") // not a release tag
	e.fake.ResetRequests()
	if n := e.run(); n != 4 {
		t.Fatalf("queued %d pushes, want 4", n)
	}
	got := e.take()
	want := []string{
		"branch_push refs/heads/main a1..a2",
		"branch_push refs/heads/release/1 r1..r2",
		"branch_push refs/heads/release/2 00..n1",
		"policy_push refs/heads/main a1..a2",
		"policy_push refs/heads/release/1 r1..r2",
		"tag_push refs/tags/v1.1 00..a2",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("queued\n%q\nwant\n%q", got, want)
	}
	// Cost of one repository: the policy lookup (three paths, none here),
	// one page of branches, one of tags, and for each moved branch one
	// read of the project's push events (who pushed it).
	if n := e.fake.RequestCount(); n > 5+3 {
		t.Errorf("one repository cost %d requests, want <= 8: %v", n, e.fake.Requests())
	}
	if e.counted != 4 {
		t.Errorf("metric counted %d pushes, want 4", e.counted)
	}
	// Not judged yet (still queued): the next run queues nothing new.
	if n := e.run(); n != 0 || len(e.queued) != 0 {
		t.Fatalf("a waiting push was queued again: %d %v", n, e.take())
	}
	// Judged: nothing left.
	e.judged("refs/heads/main", "a2")
	if n := e.run(); n != 0 {
		t.Fatalf("queued %d after the push was judged", n)
	}
}

// A reconciled push names its pusher from GitLab's own record of pushes
// (the project events API), as the push hook would have; without a record
// the pusher stays unknown, never someone else.
func TestReconcileNamesThePusherFromTheForgesRecord(t *testing.T) {
	e := newEnv(t)
	e.fake.AddUser(fakegitlab.User{ID: 7, Username: "mallory"})
	e.fake.SetBranch(project, "main", "a1")
	e.fake.SetBranch(project, "release/1", "r1")
	e.judged("refs/heads/main", "a1")
	e.judged("refs/heads/release/1", "r1")
	if n := e.run(); n != 0 {
		t.Fatalf("baseline queued %d", n)
	}
	e.fake.SetBranch(project, "main", "a2")
	e.fake.SetBranch(project, "release/1", "r2")
	e.fake.AddPushEvent(project, fakegitlab.PushEvent{AuthorID: 7, Ref: "main", From: "a1", To: "a2"})
	if n := e.run(); n != 2 {
		t.Fatalf("queued %d, want 2", n)
	}
	pushers := map[string]bot.User{}
	for _, ev := range e.queued {
		if ev.Kind == bot.EventBranchPush {
			pushers[ev.Push.Ref] = ev.Push.Pusher
		}
	}
	if p := pushers["refs/heads/main"]; p.Login != "mallory" {
		t.Errorf("main's reconciled pusher = %+v, want mallory from the push events", p)
	}
	if p := pushers["refs/heads/release/1"]; p.Known() || !strings.Contains(p.Name, "unknown pusher") {
		t.Errorf("release/1 has no push event, pusher = %+v, want unknown", p)
	}
}

func TestReconcileIsBoundedAndStopsOnForgeErrors(t *testing.T) {
	e := newEnv(t)
	e.r.MaxPushes = 2
	e.judged("refs/heads/main", "a1")
	e.fake.SetBranch(project, "main", "a1")
	e.run() // baseline
	for _, tag := range []string{"v1", "v2", "v3", "v4"} {
		e.fake.AddTag(project, tag, "a1")
	}
	if n := e.run(); n != 2 {
		t.Fatalf("a bounded run queued %d, want 2", n)
	}
	if n := e.run(); n != 2 {
		t.Fatalf("the next run queued %d, want the remaining 2", n)
	}
	e.take()

	// A spent rate limit: the run fails, records nothing, queues nothing.
	e.fake.AddTag(project, "v5", "a1")
	e.fake.SetFailure("GET", "/repository/tags", http.StatusForbidden)
	if n, err := e.r.Run(e.ctx); err == nil || n != 0 {
		t.Fatalf("run with a failing forge: %d, %v", n, err)
	}
	e.fake.SetFailure("GET", "/repository/tags", 0)
	if n := e.run(); n != 1 {
		t.Fatalf("after the forge recovered: %d, want 1", n)
	}
}

// Many repositories: a run visits at most MaxRepos, the next goes on.
func TestReconcileVisitsRepositoriesInTurns(t *testing.T) {
	e := newEnv(t)
	e.r.MaxRepos = 1
	other := bot.Repo{FullName: "acme/lib", ID: 43, DefaultBranch: "main"}
	e.fake.AddProject(fakegitlab.Project{ID: 43, PathWithNamespace: other.FullName, DefaultBranch: "main"})
	for _, r := range []bot.Repo{repo, other} {
		ev := bot.Event{Forge: bot.GitLab, Repo: r, Kind: bot.EventBranchPush, Push: &bot.PushEvent{Ref: "refs/heads/main", After: "a1"}}
		if err := reconcile.Record(e.ctx, e.db, ev); err != nil {
			t.Fatal(err)
		}
		e.fake.SetBranch(int(r.ID), "main", "a1")
	}
	e.run() // baselines: one repository per run
	e.run()
	e.fake.SetBranch(project, "main", "a2")
	e.fake.SetBranch(43, "main", "b2")
	seen := map[string]bool{}
	for range 2 {
		if n := e.run(); n != 1 {
			t.Fatalf("a run visiting one repository queued %d", n)
		}
		for _, ev := range e.queued {
			seen[ev.Repo.FullName] = true
		}
		e.queued = nil
	}
	if !seen[repo.FullName] || !seen[other.FullName] {
		t.Fatalf("two runs did not visit both repositories: %v", seen)
	}
}

// Loop reconciles at once when the server starts (a push lost while it was
// down is found without waiting an interval), then every interval, until
// its context ends.
func TestLoopRunsAtStartThenEveryInterval(t *testing.T) {
	e := newEnv(t)
	e.fake.SetBranch(project, "main", "a1")
	e.judged("refs/heads/main", "a1")
	e.run() // the baseline
	queued := make(chan string, 16)
	r := *e.r
	r.Enqueue = func(_ context.Context, ev bot.Event) (bool, error) {
		if ev.Kind == bot.EventBranchPush {
			queued <- ev.Push.Before + ".." + ev.Push.After
		}
		return false, nil
	}
	wait := func(want string) {
		t.Helper()
		select {
		case got := <-queued:
			if got != want {
				t.Fatalf("queued %s, want %s", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("nothing queued; want %s", want)
		}
	}

	// Moved while foureyes was down: an interval of an hour cannot be what
	// finds it.
	e.fake.SetBranch(project, "main", "a2")
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { r.Loop(ctx, time.Hour); close(done) }()
	wait("a1..a2")
	cancel()
	<-done

	// Every interval: the judged tip is still a1 (nothing handled the
	// queued push), and the branch moves on.
	e.fake.SetBranch(project, "main", "a3")
	ctx, cancel = context.WithCancel(e.ctx)
	defer cancel()
	go r.Loop(ctx, 20*time.Millisecond)
	wait("a1..a3")
	wait("a1..a3") // the next interval queues it again: the queue drops the duplicate ID

	// No interval: no loop at all.
	returned := make(chan struct{})
	go func() { r.Loop(e.ctx, 0); close(returned) }()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Loop with no interval did not return")
	}
}
