package bot

import (
	"context"
	"errors"
	"fmt"
)

// handleByHead judges the open changes whose head is the event's head SHA:
// a re-run request that names no change (GitHub leaves pull_requests empty
// for a fork's pull request). The changes are found by listing the open
// ones — GitHub's documented "List pull requests" — because the commit's
// own pulls endpoint does not reliably list pull requests from forks.
func (s *Service) handleByHead(ctx context.Context, f Forge, ev Event) error {
	head := ev.Change.HeadSHA
	if head == "" {
		return fmt.Errorf("event %s: change event names neither a change nor a head", ev.DeliveryID)
	}
	refs, err := f.OpenChanges(ctx, ev.Repo, "")
	if err != nil {
		return fmt.Errorf("event %s: find the open changes of head %s: %w", ev.DeliveryID, shortSHA(head), err)
	}
	var errs []error
	found := 0
	for _, ref := range refs {
		if ref.HeadSHA != head {
			continue
		}
		found++
		if _, err := s.Evaluate(ctx, ref, "", ""); err != nil {
			errs = append(errs, err)
		}
	}
	if found == 0 {
		s.logger().Info("re-run request names no change and no open change has its head",
			"repo", ev.Repo.FullName, "head", head, "delivery", ev.DeliveryID)
	}
	return errors.Join(errs...)
}
