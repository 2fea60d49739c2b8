package bot

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// GitLab's approvals API does not say which head an approval was given on;
// its approval events do (the MR's head at the time). The service stores,
// per approver, the latest approval event: "TIME|HEAD" ("TIME|" once
// revoked). Deliveries arrive out of order, so an event replaces the stored
// one only when it is not older: an unapproval delivered before the
// approval it revokes leaves no approval standing.

func encodeApproval(at time.Time, head string) string {
	return at.UTC().Format(time.RFC3339Nano) + "|" + head
}

// decodeApproval reads a stored approval; the older format is a bare head.
func decodeApproval(v string) (time.Time, string) {
	ts, head, ok := strings.Cut(v, "|")
	if !ok {
		return time.Time{}, v
	}
	t, _ := time.Parse(time.RFC3339Nano, ts)
	return t, head
}

// recordApproval stores a GitLab approval or unapproval event unless a
// later one for the same approver is stored already.
func (s *Service) recordApproval(ctx context.Context, ev Event, ref ChangeRef, r *Review) error {
	head := r.CommitSHA
	if r.State != Approved {
		head = ""
	}
	at := r.At
	if at.IsZero() {
		at = ev.Received
	}
	scope := FactScope(ref, factApproval)
	key := strings.ToLower(r.Reviewer.Login)
	stored, err := s.Store.Facts(ctx, scope)
	if err != nil {
		return fmt.Errorf("read approval of %s: %w", r.Reviewer.Login, err)
	}
	if old, ok := stored[key]; ok {
		if prev, _ := decodeApproval(old); !prev.IsZero() && at.Before(prev) {
			s.logger().Info("approval event older than the one stored; ignored", "change", ref.Key(), "approver", key, "event_time", at, "stored_time", prev)
			return nil
		}
	}
	if err := s.Store.PutFact(ctx, scope, key, encodeApproval(at, head)); err != nil {
		return fmt.Errorf("record approval of %s: %w", r.Reviewer.Login, err)
	}
	return nil
}
