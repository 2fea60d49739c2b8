package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

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
			if pushers[pr.HeadSHA] != "bob" {
				t.Fatalf("pusher facts %v: the folded push was not recorded", pushers)
			}
		})
	}
}
