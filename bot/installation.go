package bot

import (
	"context"
	"fmt"
)

// maxInstallChanges bounds the open changes one installed repository
// queues: past it the rest wait for their next event.
const maxInstallChanges = 1000

// handleInstallation queues an evaluation of every open change of a
// repository foureyes was just installed on, so its checks appear at
// once instead of after the next push. Each is its own queued delivery
// (ID derived from the installation delivery and the change), so the work
// runs with the pool's bounded concurrency and per-change ordering, and
// survives a crash: a retry of this event re-queues only what is missing.
func (s *Service) handleInstallation(ctx context.Context, f Forge, ev Event) error {
	refs, err := f.OpenChanges(ctx, ev.Repo, "")
	if err != nil {
		return fmt.Errorf("event %s: list the open changes of %s: %w", ev.DeliveryID, ev.Repo.FullName, err)
	}
	if len(refs) > maxInstallChanges {
		s.logger().Warn("installation: too many open changes; the rest are judged on their next event",
			"repo", ev.Repo.FullName, "open", len(refs), "queued", maxInstallChanges)
		refs = refs[:maxInstallChanges]
	}
	for _, ref := range refs {
		follow := Event{
			Forge: ev.Forge, DeliveryID: fmt.Sprintf("%s/%s#%d@%s", ev.DeliveryID, ev.Repo.FullName, ref.Number, ref.HeadSHA),
			Name: ev.Name, Action: ev.Action, Kind: EventChange, Repo: ev.Repo, Sender: ev.Sender, Received: ev.Received,
			Change: &ChangeEvent{Number: ref.Number, HeadSHA: ref.HeadSHA},
		}
		if s.Enqueue == nil {
			if _, err := s.Evaluate(ctx, ref, "", ""); err != nil {
				return err
			}
			continue
		}
		if _, err := s.Enqueue(ctx, follow); err != nil {
			return fmt.Errorf("event %s: queue %s: %w", ev.DeliveryID, ref.Key(), err)
		}
	}
	s.logger().Info("installation: queued the open changes", "repo", ev.Repo.FullName, "changes", len(refs))
	return nil
}
