package release_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/internal/fakegithub"
	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
)

// The request budget of a push of 250 commits (issue 6). A commit costs
// one lookup of its change unless an already evaluated change listed it;
// a merged change costs one evaluation however many of its commits the
// push holds. Budgets, per commit of the push:
//   - merged changes of many commits (merge or fast-forward):  ≤ 0.5
//   - direct pushes:                                           ≤ 1.1
//   - worst case, one squash-merged change per commit:         ≤ 4.5
//     (lookup + files + commits + reviews; permissions are cached)
// plus a constant for the policy, the force-push check and the flag's
// issue and check. Each is asserted below and the numbers are logged.

func TestGitHubBudget250Commits(t *testing.T) {
	cases := []struct {
		name      string
		build     func(e *ghEnv) []fakegithub.Commit
		perCommit float64
		flagged   bool
	}{
		{"5 merged PRs of 49 commits + merge commits", func(e *ghEnv) []fakegithub.Commit {
			var push []fakegithub.Commit
			for p := range 5 {
				cs := ghChain(fmt.Sprintf("pr%d", p), "alice", 49, t0.Add(-10*time.Hour))
				head := cs[len(cs)-1].SHA
				e.mergedPR(prSpec{number: 100 + p, author: "alice", commits: cs,
					reviews: []fakegithub.Review{approve("bob", head, t0.Add(-3*time.Hour))}, mergedAt: t0.Add(-2 * time.Hour), merge: fmt.Sprint("merge", p)})
				push = append(push, cs...)
				push = append(push, ghCommit(fmt.Sprint("merge", p), "alice", t0.Add(-2*time.Hour)))
			}
			return push
		}, 0.5, false},
		{"250 direct commits", func(e *ghEnv) []fakegithub.Commit {
			return ghChain("direct", "mallory", 250, t0.Add(-5*time.Hour))
		}, 1.1, true},
		{"250 squash-merged PRs", func(e *ghEnv) []fakegithub.Commit {
			var push []fakegithub.Commit
			for p := range 250 {
				c := ghCommit(fmt.Sprint("squash", p), "alice", t0.Add(-3*time.Hour))
				e.mergedPR(prSpec{number: 1000 + p, author: "alice", commits: []fakegithub.Commit{c},
					reviews: []fakegithub.Review{approve("bob", c.SHA, t0.Add(-3*time.Hour))}, mergedAt: t0.Add(-2 * time.Hour)})
				push = append(push, c)
			}
			return push
		}, 4.5, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newGitHub(t)
			commits := tc.build(e)
			if len(commits) != 250 {
				t.Fatalf("scenario has %d commits", len(commits))
			}
			ev := ghPush("d1", before0, commits[len(commits)-1].SHA, "alice", false, commits...)
			e.fake.ResetRequests()
			start := time.Now()
			e.mustHandle(ev)
			took := time.Since(start)
			n := len(e.fake.Requests())
			t.Logf("GitHub, %s: %d requests (%.2f per commit) in %v", tc.name, n, float64(n)/250, took.Round(time.Millisecond))
			if float64(n) > tc.perCommit*250+10 {
				t.Errorf("%d requests, budget %.0f", n, tc.perCommit*250+10)
			}
			if got := len(e.flagAudits()) == 1; got != tc.flagged {
				t.Errorf("flagged = %v", got)
			}
		})
	}
}

// A GitLab push of 250 commits: the payload lists 20, the compare API the
// rest; five fast-forwarded merge requests of 50 commits each.
func TestGitLabBudget250Commits(t *testing.T) {
	e := newGitLab(t)
	e.fake.AddCommits(glProject, glCommit("r0", "dave", t0.Add(-100*time.Hour)))
	prev := "r0"
	var all []fakegitlab.Commit
	var head string
	for m := range 5 {
		var cs []fakegitlab.Commit
		for i := range 50 {
			c := glCommit(fmt.Sprintf("m%d-%02d", m, i), "alice", t0.Add(-50*time.Hour+time.Duration(m*50+i)*time.Minute), prev)
			cs = append(cs, c)
			prev = c.ID
		}
		e.fake.AddCommits(glProject, cs...)
		head = e.mergedMR(10+m, glAlice, "alice", cs, []int{glBob}, t0.Add(-3*time.Hour), t0.Add(-2*time.Hour))
		all = append(all, cs...)
	}
	ev := glPush("d1", "r0", head, "alice", 250, all[230:]...)
	e.fake.ResetRequests()
	start := time.Now()
	if err := e.guard.HandlePush(e.ctx, ev); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	n := e.fake.RequestCount()
	t.Logf("GitLab, 250 commits of 5 merge requests (payload 20): %d requests (%.2f per commit) in %v", n, float64(n)/250, took.Round(time.Millisecond))
	if n > 0.5*250+10 {
		t.Errorf("%d requests, budget %d", n, 135)
	}
	if fl := e.flagAudits(); len(fl) != 0 {
		t.Errorf("flagged: %+v", fl)
	}
}
