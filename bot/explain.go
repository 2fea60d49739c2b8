package bot

import (
	"context"
	"errors"
	"fmt"
)

// ErrMoved is returned by Explain when a change's head moved on while its
// facts were read: the facts belong to the newer head.
var ErrMoved = errors.New("the change moved to a newer head while it was read")

// Explain judges a change as Evaluate does — the same facts, completed from
// the same store, the same Decide — and returns the verdict and the facts
// it was decided on, without publishing, storing or auditing anything
// (`foureyes explain --repo --pr`). ref.HeadSHA "" judges the current
// head. candidate, when set, replaces the policy file of the base branch:
// what a policy change would do to an open change before it is merged.
func (s *Service) Explain(ctx context.Context, ref ChangeRef, candidate *PolicyFile) (Verdict, *Change, error) {
	f, ok := s.Forges[ref.Forge]
	if !ok {
		return Verdict{}, nil, fmt.Errorf("%w: %s", ErrUnknownForge, ref.Forge)
	}
	j, err := s.judge(ctx, f, ref, "", candidate, s.Store)
	if err != nil {
		return Verdict{}, nil, fmt.Errorf("explain %s: %w", ref.Key(), err)
	}
	if j.moved {
		return Verdict{}, nil, fmt.Errorf("explain %s at %s (now %s): %w", ref.Key(), shortSHA(j.ref.HeadSHA), shortSHA(j.change.Ref.HeadSHA), ErrMoved)
	}
	return j.verdict, j.change, nil
}
