package release

import (
	"context"
	"fmt"

	"github.com/foureyes-dev/foureyes/bot"
)

// Idempotence. Each push (forge, repo, ref, before, after) and each tag
// push has a fact scope; each effect has a key in it. An effect is claimed
// with PutFactIfAbsent before it is done and its result (a check run ID,
// an issue URL, "done") is recorded after, so:
//   - a redelivered or re-processed push finds every key done and does
//     nothing, whatever its delivery ID;
//   - a crash between effects resumes with the missing ones only;
//   - a crash between a forge call and recording its result leaves the
//     in-flight marker, and the next attempt looks for the object (the
//     check run by its external ID, the issue by the marker in its body)
//     before creating one.
//
// Two workers processing the same push at the same moment (a redelivery
// picked up by another replica while the first is still publishing) can
// both see the in-flight marker; the one that looks finds nothing yet and
// may create a second object. The queue's per-key ordering makes this a
// rare race, not a path of normal operation.

// Effect keys within a push or tag scope.
const (
	keyAnalysis = "analysis" // the stored analysis (JSON), so every retry does the same effects
	keyAudit    = "audit"
	keyCheck    = "check"  // the check run ID / status state
	keyIssue    = "issue"  // the issue URL
	keyMetric   = "metric" // "done" once the metric was counted
	keyReport   = "report" // a tag's report (JSON)
)

// inFlight is the value of a claimed effect whose result was not recorded
// yet (bot.ReportInFlight, which the adapters understand as "look first").
const inFlight = bot.ReportInFlight

// done is the value of a completed effect that has no forge object.
const done = "done"

// effect runs do at most once per scope/key (see above). do receives ""
// for a first attempt or inFlight when an earlier attempt may have done
// it, and returns the value to record. It returns the recorded value.
func (g *Guard) effect(ctx context.Context, scope, key string, facts map[string]string, do func(prior string) (string, error)) (string, error) {
	prior, seen := facts[key]
	if seen && prior != inFlight {
		return prior, nil
	}
	if !seen {
		stored, err := g.Store.PutFactIfAbsent(ctx, scope, key, inFlight)
		if err != nil {
			return "", fmt.Errorf("claim %s: %w", key, err)
		}
		if !stored {
			// Someone claimed it since Facts was read: use their result if
			// they recorded one.
			now, err := g.Store.Facts(ctx, scope)
			if err != nil {
				return "", fmt.Errorf("re-read %s: %w", key, err)
			}
			if v := now[key]; v != inFlight {
				return v, nil
			}
			prior = inFlight
		}
	}
	v, err := do(prior)
	if err != nil {
		return "", err
	}
	if err := g.Store.PutFact(ctx, scope, key, v); err != nil {
		return "", fmt.Errorf("record %s: %w", key, err)
	}
	facts[key] = v
	return v, nil
}
