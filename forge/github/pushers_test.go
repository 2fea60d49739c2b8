package github_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
)

// TestHeadPushesReadsTheWholeActivityHistory: the activity API lists a
// branch's pushes newest first, 100 a page behind a cursor. An early push
// of the change's first commit by bob, 150 pushes back, still makes bob a
// pusher of that commit; pushes of commits not in the change and deletions
// do not count, and the force-push that made the head names its actor.
func TestHeadPushesReadsTheWholeActivityHistory(t *testing.T) {
	e := newEnv(t, envOpt{})
	c1, c2 := fakegithub.SHA("c1"), fakegithub.SHA("c2")
	e.fake.AddRepo(repo.FullName)
	e.fake.AddActivity(repo.FullName, fakegithub.Activity{Before: strings.Repeat("0", 40), After: c1, Ref: "fix", Type: "branch_creation", Actor: user("bob")})
	for i := range 150 {
		// Abandoned heads of the same branch: not commits of the change.
		e.fake.AddActivity(repo.FullName, fakegithub.Activity{After: fakegithub.SHA(fmt.Sprint("other", i)), Ref: "fix", Type: "force_push", Actor: user("mallory")})
	}
	e.fake.AddActivity(repo.FullName, fakegithub.Activity{Before: c1, After: c2, Ref: "fix", Type: "force_push", Actor: user("alice")})
	e.fake.AddActivity(repo.FullName, fakegithub.Activity{Before: c2, After: strings.Repeat("0", 40), Ref: "fix", Type: "branch_deletion", Actor: user("erin")})
	e.fake.AddPR(repo.FullName, fakegithub.PR{Number: 1, Author: user("alice"), HeadRef: "fix", BaseSHA: baseSHA, HeadSHA: c2,
		PushedBy: user("alice"),
		Files:    []fakegithub.File{{Filename: "a.go", Patch: "+a"}},
		Commits: []fakegithub.Commit{
			{SHA: c1, Author: ident("A", "a@x", "alice"), Committer: ident("A", "a@x", "alice")},
			{SHA: c2, Author: ident("A", "a@x", "alice"), Committer: ident("A", "a@x", "alice")},
		}})
	ch := mustChange(t, e, prRef(1, c2))
	if err := e.forge.HeadPushes(e.ctx, ch); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, p := range ch.Pushes {
		got[p.HeadSHA] = append(got[p.HeadSHA], p.Pusher.Login)
		if p.Via != bot.ViaActivity {
			t.Errorf("push %+v not from the activity API", p)
		}
	}
	if !strings.Contains(","+strings.Join(got[c1], ",")+",", ",bob,") {
		t.Errorf("pushers of c1 = %v, want bob among them (150 entries back)", got[c1])
	}
	if h := ch.HeadPushers(c2); len(h) != 1 || h[0].Login != "alice" {
		t.Errorf("pushers of the head = %+v, want alice (the AddPR push and the force-push)", h)
	}
	for _, p := range ch.Pushes {
		if p.Pusher.Login == "erin" || p.Pusher.Login == "mallory" {
			t.Errorf("counted %+v", p)
		}
	}
	if n := e.countPath("GET", "/activity"); n < 2 {
		t.Errorf("activity pages read = %d, want the cursor followed", n)
	}
}
