package github_test

import (
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
)

// The adapter keeps each installation's budget as GitHub's answers report
// it, and forgets it once the window has reset.
func TestRateBudgetPerInstallation(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.smallPR()
	if _, ok := e.forge.RateBudget(repo); ok {
		t.Fatal("budget known before any request")
	}
	e.fake.SetRateLimit(300)
	mustChange(t, e, prRef(1, headSHA))
	b, ok := e.forge.RateBudget(repo)
	used := e.fake.Used(repo.Installation)
	if !ok || b.Limit != 300 || b.Remaining != 300-used || b.Reset.IsZero() {
		t.Fatalf("budget = %+v, %v; want 300 - %d used", b, ok, used)
	}
	other := repo
	other.Installation = 2
	if _, ok := e.forge.RateBudget(other); ok {
		t.Fatal("another installation shares the budget")
	}
	if _, allowed := bot.BudgetAllows(e.forge, repo, 300, e.clock.Now()); allowed {
		t.Fatal("work that must leave 300 requests allowed with fewer left")
	}
	if _, allowed := bot.BudgetAllows(e.forge, repo, 10, e.clock.Now()); !allowed {
		t.Fatal("work with a small reserve refused")
	}
	e.clock.Advance(61 * time.Minute) // past the reset (the fake resets hourly)
	if _, ok := e.forge.RateBudget(repo); ok {
		t.Fatal("budget of a window that has reset still reported")
	}
}
