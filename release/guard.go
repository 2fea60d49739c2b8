// Package release is foureyes' release-branch guard and release tag report
// (SPEC section 8). On every push to a release branch it finds, for each
// new commit, the merged change it came from and asks the engine
// (bot.Decide) whether that change's final head had its independent
// approvals at merge time; anything else is flagged — a failing "foureyes"
// check or status on the pushed commit, an issue, an audit record and a
// metric — exactly once per push. On a release tag it builds the review
// report of every commit since the previous release tag, publishes it and
// stores it for `foureyes report`.
//
// The package depends on bot, policies and audit only. Forges are reached
// through the small Forge interface below, whose methods use bot and
// builtin types so that the adapters never import this package.
package release

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/policies"
)

// Forge is what the guard needs from a code host: bot.Forge's Policy and
// Change, plus the release-specific calls. forge/github.Forge and
// forge/gitlab.Forge implement it.
type Forge interface {
	// Policy returns the policy file on ref (see bot.Forge).
	Policy(ctx context.Context, repo bot.Repo, ref string) (bot.PolicyFile, error)
	// Change gathers the facts of a change at its current head (for a
	// merged change: its final head). See bot.Forge.
	Change(ctx context.Context, ref bot.ChangeRef, teams []string) (*bot.Change, error)
	// ChangesOfCommit lists the changes that contain sha, as summaries:
	// Ref.HeadSHA is the final head, State "merged" for merged ones,
	// mergedAt[i] the merge time of changes[i] (zero if not merged).
	ChangesOfCommit(ctx context.Context, repo bot.Repo, sha string) (changes []bot.Change, mergedAt []time.Time, err error)
	// Compare lists the commits of head that base does not have, oldest
	// first, completely (all pages).
	Compare(ctx context.Context, repo bot.Repo, base, head string) ([]bot.PushCommit, error)
	// History lists up to limit commits reachable from sha, newest first.
	History(ctx context.Context, repo bot.Repo, sha string, limit int) ([]bot.PushCommit, error)
	// Tags maps every tag name to its commit SHA.
	Tags(ctx context.Context, repo bot.Repo) (map[string]string, error)
	// PublishCommit reports a verdict about ref (a full refs/heads/ or
	// refs/tags/ name) on commit sha: a "foureyes" check run on GitHub, a
	// "foureyes" commit status on GitLab. priorID is what the last call
	// returned ("" for none, bot.ReportInFlight when an earlier attempt may
	// have published without recording it); the object is updated, never
	// duplicated.
	PublishCommit(ctx context.Context, repo bot.Repo, ref, sha, title, markdown, detailsURL string, state bot.State, priorID string) (string, error)
	// OpenIssue opens an issue and returns its URL.
	OpenIssue(ctx context.Context, repo bot.Repo, title, body string, labels []string) (string, error)
	// FindIssue returns the URL of a recent issue whose body contains
	// marker, or "".
	FindIssue(ctx context.Context, repo bot.Repo, marker string) (string, error)
}

// ReportStore reads stored release reports (store.DB implements it).
type ReportStore interface {
	// Report returns the stored report of a tag; an error (wrapping the
	// store's not-found error) when there is none.
	Report(ctx context.Context, forge, repo, tag string) ([]byte, error)
}

// Store is what the guard remembers (store.DB implements it). The facts
// are shared with bot.Service: the guard reads the pushers, diff digests,
// approval heads and verdicts the service recorded for each change.
type Store interface {
	bot.Store
	ReportStore
	// PutFactIfAbsent stores scope/key=value unless key exists and reports
	// whether it stored it: the guard's idempotency marker.
	PutFactIfAbsent(ctx context.Context, scope, key, value string) (bool, error)
	// SaveReport stores (or replaces) the report of a tag.
	SaveReport(ctx context.Context, forge, repo, tag string, data []byte) error
}

// Reason says why a commit (or a push) was flagged.
type Reason string

// The reasons of SPEC section 8, plus InvalidPolicy.
const (
	// DirectPush: no merged change contains the commit.
	DirectPush Reason = "direct-push"
	// ForcePush: the push rewrote the branch's history.
	ForcePush Reason = "force-push"
	// StaleApproval: the change was merged after commits were pushed on
	// top of its last qualifying approval (a last-minute push).
	StaleApproval Reason = "stale-approval"
	// UnapprovedMerge: the change was merged while approvals were missing
	// (an admin bypass, a forged status, facts that cannot be verified).
	UnapprovedMerge Reason = "unapproved-merge"
	// InvalidPolicy: the policy file on the release branch does not parse;
	// the push is guarded with the built-in default and flagged so that
	// somebody fixes the file (fail closed). It is not an unreviewed
	// commit, so the unreviewed-commits metric does not count it.
	InvalidPolicy Reason = "invalid-policy"
	// Override: the change was merged under a break-glass override
	// (SPEC §5): agreed by the required eligible people, but not reviewed.
	// Reported with their names and never flagged: the override already
	// opened its own post-incident issue.
	Override Reason = "override"
)

// Guard is the release-branch guard. It implements bot.PushHandler: set
// it as bot.Service.Release. It keeps no state of its own between pushes
// beyond its dependencies, so several replicas may share a store.
type Guard struct {
	Forges map[bot.ForgeName]Forge
	Store  Store
	// DefaultPolicy is the server-wide policy file for repositories that
	// have none (as bot.Service.DefaultPolicy); nil means the built-in one.
	DefaultPolicy *bot.PolicyFile
	// Observer, when set, is called once per flagged commit with the
	// forge and the reason (metric foureyes_unreviewed_commits_total).
	Observer func(forge, reason string)
	// PolicyError, when set, is called when a release branch or tag has
	// an invalid policy file (metric foureyes_policy_errors_total).
	PolicyError func(forge string)
	Logger      *slog.Logger
	// Now is the clock (default time.Now); it stamps reports and, when an
	// event carries no receive time, pushes.
	Now func() time.Time
}

var _ bot.PushHandler = (*Guard)(nil)

func (g *Guard) logger() *slog.Logger {
	if g.Logger != nil {
		return g.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (g *Guard) now() time.Time {
	if g.Now != nil {
		return g.Now().UTC()
	}
	return time.Now().UTC()
}

// HandlePush handles bot.EventBranchPush (the guard) and bot.EventTagPush
// (the report). A returned error makes the queue retry the event: every
// effect is recorded once done, so a retry only does what is missing.
func (g *Guard) HandlePush(ctx context.Context, ev bot.Event) error {
	if ev.Push == nil {
		return fmt.Errorf("release: event %s: push without details", ev.DeliveryID)
	}
	f, ok := g.Forges[ev.Forge]
	if !ok {
		return fmt.Errorf("release: event %s: %w: %s", ev.DeliveryID, bot.ErrUnknownForge, ev.Forge)
	}
	if g.Store == nil {
		return errors.New("release: no store configured")
	}
	switch ev.Kind {
	case bot.EventBranchPush:
		return g.handleBranchPush(ctx, f, ev)
	case bot.EventTagPush:
		return g.handleTagPush(ctx, f, ev)
	}
	return fmt.Errorf("release: event %s: not a push (%s)", ev.DeliveryID, ev.Kind)
}

// loadedPolicy is the policy a push is judged by. When the file is
// invalid, Policy is the built-in default and Err says what is wrong.
type loadedPolicy struct {
	Policy *policies.Policy
	Err    error
}

// loadPolicy reads the policy at ref with the service's fallbacks: the
// repository's file, else the server default, else the built-in default.
// An invalid file still yields a policy to guard with (the built-in
// default: the guard never stops guarding) plus the error to flag.
func (g *Guard) loadPolicy(ctx context.Context, f Forge, forge bot.ForgeName, repo bot.Repo, ref string) (loadedPolicy, error) {
	pf, err := f.Policy(ctx, repo, ref)
	if err != nil {
		return loadedPolicy{}, fmt.Errorf("read policy of %s at %s: %w", repo.FullName, short(ref), err)
	}
	return g.resolve(forge, repo, pf, ref)
}

// touchesPolicy: a push touching a policy file location may change which
// branches are guarded.
func touchesPolicy(paths []string) bool { return bot.TouchesPolicy(paths) }

// appendAudit appends one record, wrapping the error with what it was.
func (g *Guard) appendAudit(ctx context.Context, rec audit.Record) error {
	if _, err := g.Store.AppendAudit(ctx, rec); err != nil {
		return fmt.Errorf("audit %s of %s@%s: %w", rec.Kind, rec.Repo, short(rec.HeadSHA), err)
	}
	return nil
}

func isZeroSHA(s string) bool { return s == "" || strings.Trim(s, "0") == "" }

func short(sha string) string {
	if len(sha) > 7 && !strings.ContainsAny(sha, "/ ") {
		return sha[:7]
	}
	return sha
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}

// at names a user: @login for an account, else the git identity
// ("Name <email>"), as a commit author that no account is linked to.
func at(u bot.User) string {
	switch {
	case u.Login != "":
		return "@" + u.Login
	case u.Name != "" && u.Email != "":
		return u.Name + " <" + u.Email + ">"
	case u.Display() != "":
		return u.Display()
	}
	return "(unknown)"
}

// pushPolicy returns the policy a push to branch is judged by and whether
// it guards the branch. The rules come from the repository, never from the
// pushed head (issue 10): the branch's own policy before the push, and the
// default branch's current policy; the branch is guarded when either says
// so, and judged by its own policy when that guards it. A new branch has
// no policy of its own before the push: the default branch's applies. (The
// default branch's "current" policy is, for a push to the default branch
// itself, the one before the push; for the first push of a repository
// there is none, and the server or built-in default applies.)
func (g *Guard) pushPolicy(ctx context.Context, f Forge, forge bot.ForgeName, repo bot.Repo, p *bot.PushEvent, branch string, created bool) (loadedPolicy, bool, error) {
	def := repo.DefaultBranch
	if branch == def || def == "" {
		if created {
			lp, err := g.resolve(forge, repo, bot.PolicyFile{}, branch)
			return lp, err == nil && lp.Policy.IsReleaseBranch(branch, def), err
		}
		lp, err := g.loadPolicy(ctx, f, forge, repo, p.Before)
		if err != nil {
			return loadedPolicy{}, false, err
		}
		return lp, lp.Policy.IsReleaseBranch(branch, def), nil
	}
	defPol, err := g.loadPolicy(ctx, f, forge, repo, def)
	if err != nil {
		return loadedPolicy{}, false, err
	}
	if created {
		return defPol, defPol.Policy.IsReleaseBranch(branch, def), nil
	}
	own, err := g.loadPolicy(ctx, f, forge, repo, p.Before)
	if err != nil {
		return loadedPolicy{}, false, err
	}
	switch {
	case own.Policy.IsReleaseBranch(branch, def):
		return own, true, nil
	case defPol.Policy.IsReleaseBranch(branch, def):
		return defPol, true, nil
	}
	return own, false, nil
}

// resolve turns a policy file (possibly none) into the policy to guard with.
func (g *Guard) resolve(forge bot.ForgeName, repo bot.Repo, pf bot.PolicyFile, ref string) (loadedPolicy, error) {
	pol, perr := bot.ResolvePolicy(pf, g.DefaultPolicy)
	if perr != nil {
		if g.PolicyError != nil {
			g.PolicyError(string(forge))
		}
		g.logger().Warn("invalid policy on a release ref; guarding with the built-in default", "repo", repo.FullName, "ref", ref, "error", perr)
		pol = policies.Default()
	}
	return loadedPolicy{Policy: pol, Err: perr}, nil
}
