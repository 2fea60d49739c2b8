package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/bot"
)

// pushAnalysis is what the guard concluded about one push. It is stored
// before any effect, so every retry of the push does the same effects
// even if the forge's answers changed meanwhile.
type pushAnalysis struct {
	Forge        bot.ForgeName `json:"forge"`
	Repo         string        `json:"repo"`
	Ref          string        `json:"ref"`
	Branch       string        `json:"branch"`
	Before       string        `json:"before"`
	After        string        `json:"after"`
	Pusher       string        `json:"pusher"`
	Forced       bool          `json:"forced"`
	PushedAt     time.Time     `json:"pushed_at"`
	Judged       int           `json:"judged"` // commits judged
	Skipped      int           `json:"skipped,omitempty"`
	Note         string        `json:"note,omitempty"`
	Reconciled   bool          `json:"reconciled,omitempty"`
	PolicySource string        `json:"policy_source"`
	PolicyDigest string        `json:"policy_digest"`
	PolicyError  string        `json:"policy_error,omitempty"`
	AlertIssue   bool          `json:"alert_issue"`
	Labels       []string      `json:"labels"`
	Flags        []Flag        `json:"flags"`
	// Overrides lists the commits that came in on a break-glass override:
	// shown on the pushed commit, never flagged.
	Overrides []Flag `json:"overrides,omitempty"`
}

// Flag is one flagged commit of a push (or the push itself, for
// force-push and invalid-policy, which name the pushed commit).
type Flag struct {
	SHA       string `json:"sha"`
	Title     string `json:"title,omitempty"`
	Author    string `json:"author"`
	Reason    Reason `json:"reason"`
	Change    int    `json:"change,omitempty"`
	ChangeURL string `json:"change_url,omitempty"`
	Detail    string `json:"detail,omitempty"`
}

// pushScope is the fact scope of one push: the idempotency key is the
// push itself (forge, repo, ref, before, after), not the delivery.
func pushScope(forge bot.ForgeName, repo bot.Repo, p *bot.PushEvent) string {
	return fmt.Sprintf("%s/%s/release-push/%s/%s..%s", forge, repo.FullName, p.Ref, p.Before, p.After)
}

func (g *Guard) handleBranchPush(ctx context.Context, f Forge, ev bot.Event) error {
	p := ev.Push
	if p.Deleted || isZeroSHA(p.After) || !strings.HasPrefix(p.Ref, "refs/heads/") {
		return nil
	}
	branch := strings.TrimPrefix(p.Ref, "refs/heads/")
	scope := pushScope(ev.Forge, ev.Repo, p)
	facts, err := g.Store.Facts(ctx, scope)
	if err != nil {
		return fmt.Errorf("release: read state of push %s: %w", scope, err)
	}
	var an pushAnalysis
	if raw, ok := facts[keyAnalysis]; ok {
		if err := json.Unmarshal([]byte(raw), &an); err != nil {
			return fmt.Errorf("release: decode stored analysis of push %s: %w", scope, err)
		}
	} else {
		var guarded bool
		an, guarded, err = g.analyzePush(ctx, f, ev, branch)
		if err != nil {
			return fmt.Errorf("release: push to %s of %s: %w", branch, ev.Repo.FullName, err)
		}
		if !guarded {
			g.logger().Debug("push to an unguarded branch", "repo", ev.Repo.FullName, "branch", branch)
			return nil
		}
		data, err := json.Marshal(an)
		if err != nil {
			return fmt.Errorf("release: encode analysis: %w", err)
		}
		stored, err := g.Store.PutFactIfAbsent(ctx, scope, keyAnalysis, string(data))
		if err != nil {
			return fmt.Errorf("release: store analysis of push %s: %w", scope, err)
		}
		if !stored {
			// A concurrent attempt analysed it first: do its effects.
			if facts, err = g.Store.Facts(ctx, scope); err != nil {
				return fmt.Errorf("release: read state of push %s: %w", scope, err)
			}
			if err := json.Unmarshal([]byte(facts[keyAnalysis]), &an); err != nil {
				return fmt.Errorf("release: decode stored analysis of push %s: %w", scope, err)
			}
		}
	}
	if len(an.Flags) == 0 {
		g.logger().Info("release push reviewed", "repo", an.Repo, "branch", an.Branch, "after", an.After, "commits", an.Judged, "overridden", len(an.Overrides))
		if len(an.Overrides) > 0 {
			return g.showOverrides(ctx, f, ev, scope, facts, an)
		}
		return nil
	}
	return g.flag(ctx, f, ev, scope, facts, an)
}

// analyzePush judges a push; guarded=false when the branch is no release
// branch.
func (g *Guard) analyzePush(ctx context.Context, f Forge, ev bot.Event, branch string) (pushAnalysis, bool, error) {
	p, repo := ev.Push, ev.Repo
	created := p.Created || isZeroSHA(p.Before)
	lp, guarded, err := g.pushPolicy(ctx, f, ev.Forge, repo, p, branch, created)
	if err != nil {
		return pushAnalysis{}, false, err
	}
	if !guarded && !created && (p.Truncated || touchesPolicy(p.ChangedFiles)) {
		// The push changed the policy: a branch it starts guarding is
		// guarded from this push on.
		after, err := g.loadPolicy(ctx, f, ev.Forge, repo, p.After)
		if err != nil {
			return pushAnalysis{}, false, err
		}
		guarded = after.Policy.IsReleaseBranch(branch, repo.DefaultBranch)
	}
	if !guarded {
		return pushAnalysis{}, false, nil
	}
	pushedAt := ev.Received.UTC()
	if pushedAt.IsZero() {
		pushedAt = g.now()
	}
	pol := lp.Policy
	an := pushAnalysis{
		Forge: ev.Forge, Repo: repo.FullName, Ref: p.Ref, Branch: branch, Before: p.Before, After: p.After,
		Pusher: at(p.Pusher), PushedAt: pushedAt, PolicySource: pol.Source, PolicyDigest: pol.Digest,
		AlertIssue: pol.Release.Alert.Issue, Labels: append([]string{}, pol.Release.Alert.Labels...), Flags: []Flag{},
	}
	if lp.Err != nil {
		an.PolicyError = firstLine(lp.Err.Error())
		an.Flags = append(an.Flags, Flag{SHA: p.After, Author: an.Pusher, Reason: InvalidPolicy,
			Detail: "the policy file is invalid, so this branch is guarded with the built-in default until it is fixed: " + an.PolicyError})
	}

	commits, note, err := g.newCommits(ctx, f, repo, p, branch, created)
	if err != nil {
		return pushAnalysis{}, false, err
	}
	an.Note = note
	if p.Reconciled {
		// Named in the check, the issue and the audit record: nobody was
		// told of this push, and its pusher is unknown.
		an.Reconciled = true
		an.Note = strings.TrimPrefix(an.Note+"; "+reconciledNote, "; ")
	}

	an.Forced = p.Forced
	var dropped int
	if !an.Forced && !created && ev.Forge == bot.GitLab {
		// GitLab's push hook has no "forced": the push rewrote history
		// exactly when the old head has commits the new one lacks.
		back, err := f.Compare(ctx, repo, p.After, p.Before)
		if err != nil {
			return pushAnalysis{}, false, fmt.Errorf("check for a force-push: %w", err)
		}
		dropped = len(back)
		an.Forced = dropped > 0
	}
	if an.Forced {
		detail := fmt.Sprintf("the push replaced %s with %s without keeping it in the history: reviewed commits may have been rewritten or removed", short(p.Before), short(p.After))
		if dropped > 0 {
			detail = fmt.Sprintf("the push dropped %d commit(s) that were on %s (old head %s): the history was rewritten", dropped, branch, short(p.Before))
		}
		an.Flags = append(an.Flags, Flag{SHA: p.After, Author: an.Pusher, Reason: ForcePush, Detail: detail})
	}

	a := g.newAnalyzer(f, ev.Forge, repo, branch, pol)
	for _, c := range commits {
		fd, known, err := a.stored(ctx, c.SHA)
		if err != nil {
			return pushAnalysis{}, false, err
		}
		switch {
		case known && created:
			// A new release branch starts from commits judged on the
			// branch they first landed on: not new to release branches.
			an.Skipped++
			continue
		case !known:
			if fd, err = a.judge(ctx, c, pushedAt); err != nil {
				return pushAnalysis{}, false, err
			}
			if err := a.remember(ctx, fd); err != nil {
				return pushAnalysis{}, false, err
			}
		}
		an.Judged++
		if fd.Reviewed() {
			continue
		}
		if fd.Reason == Override {
			// Not flagged: the override opened its own issue and alert. Not
			// silent either: the pushed commit's check names the people.
			ov := Flag{SHA: fd.SHA, Title: fd.Title, Author: fd.Author, Reason: fd.Reason, Detail: fd.Detail}
			if fd.Change != nil {
				ov.Change, ov.ChangeURL = fd.Change.Number, fd.Change.URL
			}
			an.Overrides = append(an.Overrides, ov)
			continue
		}
		fl := Flag{SHA: fd.SHA, Title: fd.Title, Author: fd.Author, Reason: fd.Reason, Detail: fd.Detail}
		if fd.Change != nil {
			fl.Change, fl.ChangeURL = fd.Change.Number, fd.Change.URL
		}
		an.Flags = append(an.Flags, fl)
	}
	return an, true, nil
}

// newCommits returns the commits a push brought, oldest first: the
// payload's, completed through the compare API when the payload is
// truncated (GitLab lists at most 20) or lists none.
func (g *Guard) newCommits(ctx context.Context, f Forge, repo bot.Repo, p *bot.PushEvent, branch string, created bool) ([]bot.PushCommit, string, error) {
	commits, note := p.Commits, ""
	if created && branch != repo.DefaultBranch && repo.DefaultBranch != "" {
		// A new branch brings every commit the default branch (guarded
		// itself) does not have, whatever the payload lists: GitHub sends
		// "commits": [] for a branch created at an existing commit, and a
		// direct push may sit below a reviewed merge.
		full, err := f.Compare(ctx, repo, repo.DefaultBranch, p.After)
		if err != nil {
			return nil, "", fmt.Errorf("list the commits of the new branch: %w", err)
		}
		commits = full
	} else if p.Truncated || (len(commits) == 0 && p.Before != p.After) {
		base := p.Before
		if created {
			// No before to compare with: what the new branch has that the
			// default branch lacks (the default branch is guarded itself).
			base = repo.DefaultBranch
			if branch == repo.DefaultBranch || base == "" {
				base = ""
				note = fmt.Sprintf("new branch with a truncated payload: only the %d commits listed in it were judged", len(commits))
			}
		}
		if base != "" {
			full, err := f.Compare(ctx, repo, base, p.After)
			if err != nil {
				return nil, "", fmt.Errorf("complete the push's commits: %w", err)
			}
			commits = full
		}
	}
	seen := make(map[string]bool, len(commits))
	out := commits[:0:0]
	for _, c := range commits {
		if c.SHA != "" && !seen[c.SHA] {
			seen[c.SHA] = true
			out = append(out, c)
		}
	}
	return out, note, nil
}

// flagData is the audit record's data of a flagged push.
type flagData struct {
	Branch      string     `json:"branch"`
	Pusher      string     `json:"pusher"`
	Before      string     `json:"before"`
	After       string     `json:"after"`
	Forced      bool       `json:"forced"`
	PolicyError string     `json:"policy_error,omitempty"`
	Reconciled  bool       `json:"reconciled,omitempty"`
	Commits     []flagItem `json:"commits"`
}

type flagItem struct {
	SHA    string `json:"sha"`
	Author string `json:"author"`
	Reason Reason `json:"reason"`
	Change int    `json:"change,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// flag produces a flagged push's effects, each once (see once.go): the
// audit record, the issue, the failing check on the pushed commit and the
// metric. It carries on past a failed effect so that one forge problem
// (say, issues disabled) does not hold the others back; the error makes
// the queue retry what is missing.
func (g *Guard) flag(ctx context.Context, f Forge, ev bot.Event, scope string, facts map[string]string, an pushAnalysis) error {
	repo := ev.Repo
	var errs []error

	_, err := g.effect(ctx, scope, keyAudit, facts, func(string) (string, error) {
		// After a crash between appending and recording, the record is
		// appended again: a duplicate audit record is better than none.
		d := flagData{Branch: an.Branch, Pusher: an.Pusher, Before: an.Before, After: an.After, Forced: an.Forced,
			PolicyError: an.PolicyError, Reconciled: an.Reconciled, Commits: []flagItem{}}
		for _, fl := range an.Flags {
			d.Commits = append(d.Commits, flagItem{SHA: fl.SHA, Author: fl.Author, Reason: fl.Reason, Change: fl.Change, Detail: fl.Detail})
		}
		data, err := json.Marshal(d)
		if err != nil {
			return "", fmt.Errorf("encode flag: %w", err)
		}
		return done, g.appendAudit(ctx, audit.Record{
			Kind: audit.KindFlag, Forge: string(an.Forge), Repo: an.Repo, HeadSHA: an.After,
			DeliveryID: ev.DeliveryID, PolicyDigest: an.PolicyDigest, Verdict: string(bot.Failure), Data: data,
		})
	})
	errs = append(errs, err)

	issueURL := ""
	if an.AlertIssue {
		marker := pushMarker(an)
		issueURL, err = g.effect(ctx, scope, keyIssue, facts, func(prior string) (string, error) {
			if prior == inFlight {
				if u, err := f.FindIssue(ctx, repo, marker); err != nil || u != "" {
					return u, err
				}
			}
			u, err := f.OpenIssue(ctx, repo, issueTitle(an), issueBody(an, marker), an.Labels)
			if errors.Is(err, bot.ErrIssuesDisabled) {
				// Permanent: recorded as done, so no retry; the check says
				// that no issue could be opened.
				g.logger().Warn("cannot open the alert issue: issues are disabled", "repo", an.Repo, "branch", an.Branch, "error", err)
				return issuesDisabled, nil
			}
			return u, err
		})
		errs = append(errs, err)
		if issueURL == issuesDisabled {
			issueURL = ""
			an.Note = strings.TrimPrefix(an.Note+"; "+issuesDisabledNote, "; ")
		}
	}

	_, err = g.effect(ctx, scope, keyCheck, facts, func(prior string) (string, error) {
		return f.PublishCommit(ctx, repo, an.Ref, an.After, checkTitle(an), flagMarkdown(an, issueURL), issueURL, bot.Failure, prior)
	})
	errs = append(errs, err)

	_, err = g.effect(ctx, scope, keyMetric, facts, func(prior string) (string, error) {
		// After a crash the count may or may not have happened: counting
		// twice would page someone for a flag that exists once.
		if prior == "" && g.Observer != nil {
			for _, fl := range an.Flags {
				if fl.Reason != InvalidPolicy {
					g.Observer(string(an.Forge), string(fl.Reason))
				}
			}
		}
		return done, nil
	})
	errs = append(errs, err)

	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release: flag push to %s of %s: %w", an.Branch, an.Repo, err)
	}
	g.logger().Warn("unreviewed push to a release branch", "repo", an.Repo, "branch", an.Branch, "pusher", an.Pusher,
		"after", an.After, "flags", len(an.Flags), "issue", issueURL)
	return nil
}

// issuesDisabled is the recorded result of the issue effect when the
// repository has issues turned off.
const issuesDisabled = "disabled"

const issuesDisabledNote = "no issue could be opened: issues are disabled in this repository (enable them, or set release.alert.issue: false to stop asking)"

// reconciledNote explains a push found by reconciliation.
const reconciledNote = "reconciled: the forge sent no push event for this push (GitHub sends none for more than three tags pushed at once, GitLab none for more than three branches or tags); foureyes found it by comparing the branch with the last tip it judged, so the pusher is unknown"

// pushMarker is hidden in the issue body so a crashed attempt's issue can
// be found again.
func pushMarker(an pushAnalysis) string {
	return fmt.Sprintf("<!-- foureyes:release-push %s %s %s %s..%s -->", an.Forge, an.Repo, an.Ref, an.Before, an.After)
}
