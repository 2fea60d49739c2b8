package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
	"github.com/foureyes-dev/foureyes/store"
)

// decodeGitHub turns a webhook payload into the events the queue stores.
func (e *e2e) decodeGitHub(event string, payload map[string]any) []bot.Event {
	e.t.Helper()
	body, err := json.Marshal(payload)
	if err != nil {
		e.t.Fatal(err)
	}
	d, ok := e.sb.srv.forges[bot.GitHub].(interface {
		Decode(string, []byte) ([]bot.Event, error)
	})
	if !ok {
		e.t.Fatal("GitHub forge cannot decode")
	}
	evs, err := d.Decode(event, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := range evs {
		e.n++
		evs[i].DeliveryID = fmt.Sprintf("fold-%d", e.n)
	}
	return evs
}

func (e *e2e) evaluations(pr fakegithub.PR) int {
	e.t.Helper()
	recs, err := e.sb.srv.db.AuditRecords(context.Background(), store.AuditFilter{Repo: e2eRepo})
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Kind == audit.KindEvaluation && r.Change == pr.Number {
			n++
		}
	}
	return n
}

// Folded deliveries still record every fact they carry. The attack: bob
// pushes a commit to alice's pull request and approves it himself; folded
// behind carol's earlier approval of the old head, the push's pusher fact
// must still make bob's approval not count. The honest path beside it: the
// same fold with an independent approval passes, judged once.
func TestFoldedDeliveriesKeepEveryFact(t *testing.T) {
	for _, tc := range []struct {
		approver string
		want     string
	}{
		{"bob", "in_progress"}, // bob pushed the head: his approval does not count
		{"carol", "success"},
	} {
		t.Run(tc.approver, func(t *testing.T) {
			e := newE2E(t, nil)
			e.basePolicy("version: 1\n")
			pr := e.openPR([]string{"app.go"})
			if got := conclusion(e.check(pr)); got != "in_progress" {
				t.Fatalf("opened: %s", got)
			}
			before := e.evaluations(pr)
			old := pr
			var evs []bot.Event
			// carol approved the old head; then bob pushed; then tc.approver
			// approved the new head. All three waited behind each other.
			id := e.sb.Fake.AddReview(e2eRepo, old.Number, fakegithub.Review{User: fakegithub.User{Login: "carol"}, State: "APPROVED", CommitID: old.HeadSHA})
			evs = append(evs, e.decodeGitHub("pull_request_review", reviewFixture(t, old, id, "carol", "approved", old.HeadSHA))...)
			c := fakegithub.Commit{SHA: fakegithub.SHA(t.Name() + "-2"), Message: "more", Author: ident("alice"), Committer: ident("alice")}
			e.sb.Fake.UpdatePR(e2eRepo, pr.Number, func(p *fakegithub.PR) {
				p.Commits = append(p.Commits, c)
				p.HeadSHA = c.SHA
				p.Files[0].Patch += "\n+more"
			})
			pr, _ = e.sb.Fake.PR(e2eRepo, pr.Number)
			evs = append(evs, e.decodeGitHub("pull_request", prFixture(t, "synchronize", pr, "bob"))...)
			id = e.sb.Fake.AddReview(e2eRepo, pr.Number, fakegithub.Review{User: fakegithub.User{Login: tc.approver}, State: "APPROVED", CommitID: pr.HeadSHA})
			evs = append(evs, e.decodeGitHub("pull_request_review", reviewFixture(t, pr, id, tc.approver, "approved", pr.HeadSHA))...)
			// A late delivery about the old head comes last: the fold must
			// still judge the head the pull request is at.
			evs = append(evs, evs[0])
			evs[len(evs)-1].DeliveryID += "-late"

			if err := e.sb.srv.service.HandleFolded(context.Background(), evs); err != nil {
				t.Fatal(err)
			}
			if got := conclusion(e.check(pr)); got != tc.want {
				t.Fatalf("after the fold: %s, want %s", got, tc.want)
			}
			if n := e.evaluations(pr) - before; n != 1 {
				t.Fatalf("%d evaluations for %d folded deliveries, want 1", n, len(evs))
			}
			pushers, err := e.sb.srv.db.Facts(context.Background(), bot.FactScope(bot.ChangeRef{Forge: bot.GitHub, Repo: bot.Repo{FullName: e2eRepo}, Number: pr.Number}, "pusher"))
			if err != nil {
				t.Fatal(err)
			}
			// Pushers are a history keyed "head/login" (issue 10).
			if pushers[pr.HeadSHA+"/bob"] != "bob" {
				t.Fatalf("pusher facts %v: the folded push was not recorded", pushers)
			}
		})
	}
}

// approvedPR opens a pull request under the default policy and has carol
// approve it: the success the tests below start from.
func (e *e2e) approvedPR() fakegithub.PR {
	e.t.Helper()
	e.basePolicy("version: 1\n")
	pr := e.openPR([]string{"app.go"})
	e.review(pr, "carol", "approved")
	if got := conclusion(e.check(pr)); got != "success" {
		e.t.Fatalf("approved: %s", got)
	}
	return pr
}

// lowBudget leaves 50 requests in the installation's window, below the
// reserve of evaluations, and lets foureyes learn it: the answers to the
// evaluation of a review on pr report the low budget.
func (e *e2e) lowBudget(pr fakegithub.PR) {
	e.t.Helper()
	e.sb.Fake.SetRateLimit(e.sb.Fake.Used(sandboxInstallation) + 60)
	e.review(pr, "dave", "approved")
	if err := e.sb.Drain(context.Background(), 30*time.Second); err != nil {
		e.t.Fatal(err)
	}
}

// When the installation's budget is nearly spent, a change that cannot be
// evaluated shows pending with the reset time, never the success it had:
// the attack is a "changes requested" arriving while the budget is low,
// which must not leave the earlier success standing. The delivery waits
// for the reset (no attempt counted) with its facts recorded.
func TestRateLimitLowShowsPendingNeverSuccess(t *testing.T) {
	e := newE2E(t, nil)
	pr := e.approvedPR()
	e.lowBudget(pr)
	id := e.sb.Fake.AddReview(e2eRepo, pr.Number, fakegithub.Review{User: fakegithub.User{Login: "erin"}, State: "CHANGES_REQUESTED", CommitID: pr.HeadSHA})
	e.send("pull_request_review", reviewFixture(t, pr, id, "erin", "changes_requested", pr.HeadSHA))
	run, err := e.sb.WaitCheck(context.Background(), e2eRepo, pr.HeadSHA, 10*time.Second, func(r fakegithub.CheckRun) bool { return r.Status != "completed" })
	if err != nil {
		t.Fatalf("the head kept its old verdict while the budget was low: %v", err)
	}
	if !strings.Contains(run.Title, "Waiting for GitHub's rate limit, resets at") {
		t.Fatalf("pending check title %q", run.Title)
	}
	// The delivery waits for the reset: pending, not dead, no attempt spent.
	var ds []store.LeasedDelivery
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ds, err = e.sb.srv.db.ListDeliveries(context.Background(), store.StatePending, 10); err != nil {
			t.Fatal(err)
		}
		if len(ds) > 0 {
			break
		}
	}
	if len(ds) != 1 || ds[0].Attempts != 0 || !ds[0].AvailableAt.After(time.Now().Add(30*time.Minute)) {
		t.Fatalf("waiting deliveries %+v, want the review put back until the reset", ds)
	}
}

// A change first seen while the budget is low gets a pending check, and the
// check's ID is recorded: the next publish updates that check instead of
// looking for it again (an API request each time, while the budget is low).
func TestRateLimitLowFirstSightRecordsItsCheck(t *testing.T) {
	e := newE2E(t, nil)
	e.basePolicy("version: 1\n")
	first := e.openPR([]string{"app.go"})
	e.check(first)
	e.lowBudget(first)
	pr := e.openPR([]string{"app.go"})
	run, err := e.sb.WaitCheck(context.Background(), e2eRepo, pr.HeadSHA, 10*time.Second, func(r fakegithub.CheckRun) bool { return r.Status != "completed" })
	if err != nil || !strings.Contains(run.Title, "Waiting for GitHub's rate limit") {
		t.Fatalf("first sight while the budget is low: %+v, %v", run, err)
	}
	ref := bot.ChangeRef{Forge: bot.GitHub, Repo: bot.Repo{FullName: e2eRepo}, Number: pr.Number, HeadSHA: pr.HeadSHA}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		reports, err := e.sb.srv.db.Facts(context.Background(), bot.FactScope(ref, "report"))
		if err != nil {
			t.Fatal(err)
		}
		if got, _, _ := strings.Cut(reports[pr.HeadSHA], ":"); got == strconv.FormatInt(run.ID, 10) {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("recorded report of the pending check: %q, want its ID %d", got, run.ID)
		}
	}
}

// A merge group's check carries the verdict of its pull request, and its
// ID is recorded: a second checks_requested for the same group updates the
// check rather than looking for it again.
func TestMergeGroupRecordsItsCheck(t *testing.T) {
	e := newE2E(t, nil)
	pr := e.approvedPR()
	groupHead := fakegithub.SHA(t.Name() + "-group")
	mg := fixture(t, "merge_group.checks_requested.json")
	mg["repository"] = prFixture(t, "opened", pr, "alice")["repository"]
	mg["installation"] = map[string]any{"id": sandboxInstallation}
	g := obj(mg, "merge_group")
	g["head_sha"] = groupHead
	g["head_ref"] = fmt.Sprintf("refs/heads/gh-readonly-queue/%s/pr-%d-%s", e2eBase, pr.Number, pr.HeadSHA)
	g["base_ref"] = "refs/heads/" + e2eBase
	ref := bot.ChangeRef{Forge: bot.GitHub, Repo: bot.Repo{FullName: e2eRepo}, Number: pr.Number, HeadSHA: groupHead}
	for round := range 2 {
		e.send("merge_group", mg)
		if err := e.sb.Drain(context.Background(), 30*time.Second); err != nil {
			t.Fatal(err)
		}
		runs := e.sb.Fake.CheckRuns(e2eRepo, groupHead)
		if len(runs) != 1 || conclusion(runs[0]) != "success" {
			t.Fatalf("round %d: check runs on the group head: %+v", round, runs)
		}
		reports, err := e.sb.srv.db.Facts(context.Background(), bot.FactScope(ref, "report"))
		if err != nil {
			t.Fatal(err)
		}
		// The ID, and the status it was last given ("1005:completed").
		if got, _, _ := strings.Cut(reports[groupHead], ":"); got != strconv.FormatInt(runs[0].ID, 10) {
			t.Fatalf("round %d: recorded report of the group's check: %q, want %d", round, got, runs[0].ID)
		}
	}
}
