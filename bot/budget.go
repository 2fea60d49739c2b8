package bot

import (
	"context"
	"fmt"
	"time"
)

// Reserves: how many requests of an installation's budget each kind of work
// leaves for more urgent work. When the budget runs low the least urgent
// work waits first: re-evaluating every open change (a policy push),
// reconciliation and scans stop at ReserveBulk, evaluations of changes at
// ReserveChange, and the release guard may spend down to ReserveRelease,
// because an unreviewed push to a release branch must be flagged at once.
const (
	ReserveRelease = 10
	ReserveChange  = 100
	ReserveBulk    = 500
)

// DeferredError says that work must wait until the forge's rate-limit
// window resets (Until). The queue puts the delivery back until then
// without counting an attempt.
type DeferredError struct {
	Until     time.Time
	Remaining int
	Reserve   int
}

func (e *DeferredError) Error() string {
	return fmt.Sprintf("rate limit nearly spent (%d requests left, %d kept for more urgent work): waiting until it resets at %s",
		e.Remaining, e.Reserve, e.Until.UTC().Format(time.RFC3339))
}

// BudgetAllows reports whether work that must leave reserve requests for
// more urgent work may run now against repo's installation. Forges without
// a budget, and budgets not known yet, always allow; so does a window that
// has reset.
func BudgetAllows(f Forge, repo Repo, reserve int, now time.Time) (RateBudget, bool) {
	rl, ok := f.(RateLimited)
	if !ok {
		return RateBudget{}, true
	}
	b, ok := rl.RateBudget(repo)
	if !ok || b.Remaining > reserve || (!b.Reset.IsZero() && !now.Before(b.Reset)) {
		return b, true
	}
	return b, false
}

// reserveFor is the reserve of the work an event asks for.
func reserveFor(kind EventKind) int {
	switch kind {
	case EventBranchPush, EventTagPush:
		return ReserveRelease
	case EventPolicyPush:
		return ReserveBulk
	}
	return ReserveChange
}

// RateLimitTitle is the title of the pending check of a change that waits
// for the rate limit.
func RateLimitTitle(forge ForgeName, reset time.Time) string {
	name := "the forge"
	if forge == GitHub {
		name = "GitHub"
	}
	return fmt.Sprintf("Waiting for %s's rate limit, resets at %s", name, reset.UTC().Format("15:04 UTC"))
}

// gate holds back the events when their installation's budget is too low
// for them. Change events still have their facts recorded (that costs no
// request) and their newest head is shown pending, so that a verdict
// published earlier on that head (say, a success before a "changes
// requested") does not stand while the change cannot be judged. It returns
// a *DeferredError when the events must wait.
func (s *Service) gate(ctx context.Context, evs []Event, now time.Time) error {
	last := evs[len(evs)-1]
	f, ok := s.Forges[last.Forge]
	if !ok {
		return nil // Handle reports the unknown forge
	}
	reserve := reserveFor(last.Kind)
	for _, ev := range evs {
		reserve = min(reserve, reserveFor(ev.Kind))
	}
	b, ok := BudgetAllows(f, last.Repo, reserve, now)
	if ok {
		return nil
	}
	deferred := &DeferredError{Until: b.Reset, Remaining: b.Remaining, Reserve: reserve}
	var head *Event
	var changes []Event
	for i := range evs {
		ev := &evs[i]
		if ev.Kind != EventChange || ev.Change == nil {
			continue
		}
		changes = append(changes, *ev)
		if ev.Change.HeadSHA != "" {
			head = ev
		}
	}
	if err := s.recordAllChangeFacts(ctx, changes); err != nil {
		return err
	}
	// Showing pending costs one request: only while the release guard's
	// own reserve is untouched.
	if head != nil && b.Remaining > ReserveRelease {
		ref := ChangeRef{Forge: head.Forge, Repo: head.Repo, Number: head.Change.Number, HeadSHA: head.Change.HeadSHA}
		title := RateLimitTitle(ref.Forge, b.Reset)
		prior, found, err := LoadVerdict(ctx, s.Store, ref)
		if err != nil {
			return err
		}
		if !found || prior.State != PendingState || prior.Title != title {
			v := Verdict{State: PendingState, Ref: ref, Title: title}
			facts := newFactBatch(s.Store)
			if err := s.publish(ctx, f, ref, v, facts); err != nil {
				return fmt.Errorf("%w; showing it pending: %w", deferred, err)
			}
			if err := s.auditEvaluationWith(ctx, v, facts); err != nil {
				return err
			}
		}
	}
	s.logger().Warn("rate limit nearly spent: work waits for the reset",
		"forge", last.Forge, "repo", last.Repo.FullName, "installation", last.Repo.Installation,
		"remaining", b.Remaining, "reserve", reserve, "reset", b.Reset, "events", len(evs))
	return deferred
}
