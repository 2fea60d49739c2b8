package release

import (
	"context"
	"fmt"
	"strings"

	"github.com/foureyes-dev/foureyes/bot"
)

// showOverrides publishes, once, a success check on a pushed commit whose
// only notable commits came in on break-glass overrides: the push needs no
// alarm (each override raised its own), but it must not pass silently.
func (g *Guard) showOverrides(ctx context.Context, f Forge, ev bot.Event, scope string, facts map[string]string, an pushAnalysis) error {
	_, err := g.effect(ctx, scope, keyCheck, facts, func(prior string) (string, error) {
		return f.PublishCommit(ctx, ev.Repo, an.Ref, an.After, overrideTitle(an), overrideMarkdown(an), "", bot.Success, prior)
	})
	if err != nil {
		return fmt.Errorf("release: show overrides of push to %s of %s: %w", an.Branch, an.Repo, err)
	}
	return nil
}

func overrideTitle(an pushAnalysis) string {
	return fmt.Sprintf("push to %s: %d commit(s) merged on a break-glass override", an.Branch, len(an.Overrides))
}

// overrideMarkdown lists the overridden commits (also part of a flag's
// summary when the same push has flags).
func overrideMarkdown(an pushAnalysis) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Merged on a break-glass override\n\n%s pushed `%s..%s` to `%s`. These commits came through changes whose missing approvals were overridden; each override has its own audit record and post-incident issue.\n\n",
		an.Pusher, short(an.Before), short(an.After), an.Branch)
	flagTable(&b, an.Overrides)
	fmt.Fprintf(&b, "\nWhat `override` means: %s\n", docsURL)
	return b.String()
}
