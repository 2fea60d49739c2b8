package bot

import (
	"context"
	"fmt"
	"time"
)

// HandleFolded processes events of one change that waited behind each other
// in the queue, oldest first, as one (the queue's coalescing). Every event's
// facts are recorded, in order, exactly as Handle would (pushers, GitLab
// approval heads), and then one evaluation judges the newest head: the head
// of the latest event, or, when the change has moved past it (a late
// delivery about an older head), the latest head named that the forge still
// shows. Evaluating the older heads would only find that the change moved on,
// which costs API requests and judges nothing.
//
// Before anything costs a request, the installation's rate-limit budget is
// checked (see gate): work that would eat into the budget kept for more
// urgent work waits for the reset instead (*DeferredError).
//
// Anything but change events of one change is handled one by one, in order.
// Events are idempotent, so an error retries the whole batch.
func (s *Service) HandleFolded(ctx context.Context, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	if err := s.gate(ctx, evs, time.Now()); err != nil {
		return err
	}
	if len(evs) == 1 {
		return s.Handle(ctx, evs[0])
	}
	for _, ev := range evs {
		// Number 0 names a head, not a change (handleByHead): never folded.
		if ev.Kind != EventChange || ev.Change == nil || ev.Change.Number == 0 || !sameChange(ev, evs[0]) {
			return s.handleEach(ctx, evs)
		}
	}
	if _, ok := s.Forges[evs[0].Forge]; !ok {
		return fmt.Errorf("event %s: %w: %s", evs[0].DeliveryID, ErrUnknownForge, evs[0].Forge)
	}
	facts, err := s.changeFacts(ctx, evs)
	if err != nil {
		return err
	}
	last := evs[len(evs)-1]
	s.logger().Debug("folded change events", "change", fmt.Sprintf("%s/%s#%d", last.Forge, last.Repo.FullName, last.Change.Number), "events", len(evs))
	tried := map[string]bool{}
	for i := len(evs) - 1; i >= 0; i-- {
		ce := evs[i].Change
		if tried[ce.HeadSHA] {
			continue
		}
		tried[ce.HeadSHA] = true
		ref := ChangeRef{Forge: evs[i].Forge, Repo: evs[i].Repo, Number: ce.Number, HeadSHA: ce.HeadSHA}
		v, err := s.evaluate(ctx, ref, ce.BaseRef, facts)
		if err != nil {
			return err
		}
		if v.State != "" {
			return nil // judged: the other heads named are older ones
		}
	}
	return nil
}

func (s *Service) handleEach(ctx context.Context, evs []Event) error {
	for _, ev := range evs {
		if err := s.Handle(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

func sameChange(a, b Event) bool {
	return a.Forge == b.Forge && a.Repo.FullName == b.Repo.FullName && a.Change.Number == b.Change.Number
}
