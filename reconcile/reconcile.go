// Package reconcile finds the pushes a forge never delivered. GitHub sends
// no push event for tags when more than three are pushed at once; GitLab
// fires no push hook for a push that updates more than three branches and
// no tag hook for more than three tags; and any delivery can be lost. At
// start and every FOUREYES_RECONCILE_INTERVAL the Reconciler compares each
// guarded branch's tip and each release tag with the last ones foureyes
// judged, and queues what changed as the push that was never delivered
// (bot.PushEvent.Reconciled), through the same durable queue as webhook
// deliveries: the release guard then judges it like any push.
//
// The refs foureyes judged are recorded by Tracker, which wraps the
// release guard: a push handled without error records its ref's new tip.
package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/policies"
)

// Forge is what reconciling needs from a code host; forge/github.Forge and
// forge/gitlab.Forge implement it.
type Forge interface {
	Policy(ctx context.Context, repo bot.Repo, ref string) (bot.PolicyFile, error)
	// Branches and Tags map every branch (tag) name to its commit SHA.
	Branches(ctx context.Context, repo bot.Repo) (map[string]string, error)
	Tags(ctx context.Context, repo bot.Repo) (map[string]string, error)
}

// Store keeps the refs foureyes judged (bot.Store has these methods).
type Store interface {
	PutFact(ctx context.Context, scope, key, value string) error
	Facts(ctx context.Context, scope string) (map[string]string, error)
}

// Fact scopes: reposScope(forge) maps a repository's full name to its
// bot.Repo (JSON); refsScope(forge, repo) maps a full ref to the SHA last
// judged there. baselineKey marks a repository whose refs were all
// recorded once, so that a ref not recorded since is new.
func reposScope(forge bot.ForgeName) string { return "reconcile/" + string(forge) + "/repos" }

func refsScope(forge bot.ForgeName, repo string) string {
	return "reconcile/" + string(forge) + "/" + strings.ToLower(repo) + "/refs"
}

const baselineKey = "\x00baseline"

// cursorKey (in reposScope) is the repository the last run stopped at.
const cursorKey = "\x00cursor"

// window is the repositories one run visits: at most MaxRepos, starting
// after the one the previous run stopped at, wrapping around.
func (r *Reconciler) window(keys []string, after string) []string {
	max := r.MaxRepos
	if max <= 0 {
		max = 200
	}
	if len(keys) <= max {
		return keys
	}
	start := sort.SearchStrings(keys, after)
	if start < len(keys) && keys[start] == after {
		start++
	}
	out := make([]string, 0, max)
	for i := 0; i < max; i++ {
		out = append(out, keys[(start+i)%len(keys)])
	}
	return out
}

// Tracker wraps the release guard and records, for every push it handled
// without error, the ref's new tip: the last one foureyes judged.
type Tracker struct {
	Next  bot.PushHandler
	Store Store
}

var _ bot.PushHandler = Tracker{}

// HandlePush implements bot.PushHandler.
func (t Tracker) HandlePush(ctx context.Context, ev bot.Event) error {
	if err := t.Next.HandlePush(ctx, ev); err != nil {
		return err
	}
	return Record(ctx, t.Store, ev)
}

// Record notes that foureyes judged ev's push.
func Record(ctx context.Context, st Store, ev bot.Event) error {
	p := ev.Push
	if p == nil || p.Ref == "" || ev.Repo.FullName == "" {
		return nil
	}
	repo, err := json.Marshal(ev.Repo)
	if err != nil {
		return fmt.Errorf("reconcile: encode repository: %w", err)
	}
	if err := st.PutFact(ctx, reposScope(ev.Forge), strings.ToLower(ev.Repo.FullName), string(repo)); err != nil {
		return fmt.Errorf("reconcile: record repository %s: %w", ev.Repo.FullName, err)
	}
	tip := p.After
	if p.Deleted || strings.Trim(tip, "0") == "" {
		tip = ""
	}
	if err := st.PutFact(ctx, refsScope(ev.Forge, ev.Repo.FullName), p.Ref, tip); err != nil {
		return fmt.Errorf("reconcile: record %s of %s: %w", p.Ref, ev.Repo.FullName, err)
	}
	return nil
}

// Reconciler queues the pushes foureyes never judged.
type Reconciler struct {
	Forges map[bot.ForgeName]Forge
	Store  Store
	// Enqueue stores an event durably for the workers (the webhook intake);
	// duplicate is true when its delivery ID was already queued.
	Enqueue func(ctx context.Context, ev bot.Event) (duplicate bool, err error)
	// DefaultPolicy is the server-wide policy (as bot.Service's).
	DefaultPolicy *bot.PolicyFile
	// MaxPushes bounds the pushes queued per run (default 100); the rest
	// wait for the next run, so one run never spends the rate limit.
	MaxPushes int
	// MaxRepos bounds the repositories visited per forge and run (default
	// 200: about four requests each); the next run goes on from where
	// this one stopped.
	MaxRepos int
	// Observer is called once per push queued (metric
	// foureyes_reconciled_pushes_total).
	Observer func(forge string)
	Logger   *slog.Logger
	Now      func() time.Time
}

func (r *Reconciler) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

// Loop runs Run at once and then every interval until ctx ends.
func (r *Reconciler) Loop(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := r.Run(ctx); err != nil {
			r.logger().Warn("reconcile run incomplete; the next run retries", "queued", n, "error", err)
		} else if n > 0 {
			r.logger().Info("reconciled pushes the forge never delivered", "queued", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Run reconciles every repository foureyes has judged a push of and
// returns how many pushes it queued. A forge call that fails (a spent
// rate limit, an outage) ends that forge's run: the next one retries, and
// nothing is recorded as judged that was not.
func (r *Reconciler) Run(ctx context.Context) (int, error) {
	limit := r.MaxPushes
	if limit <= 0 {
		limit = 100
	}
	forges := make([]string, 0, len(r.Forges))
	for name := range r.Forges {
		forges = append(forges, string(name))
	}
	sort.Strings(forges)
	queued := 0
	var errs []error
	for _, name := range forges {
		forge := bot.ForgeName(name)
		repos, err := r.Store.Facts(ctx, reposScope(forge))
		if err != nil {
			return queued, fmt.Errorf("reconcile: read repositories of %s: %w", forge, err)
		}
		keys := make([]string, 0, len(repos))
		for k := range repos {
			if k != cursorKey {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		keys = r.window(keys, repos[cursorKey])
		last := ""
		for _, k := range keys {
			if queued >= limit {
				r.logger().Info("reconcile: per-run bound reached; the rest waits for the next run", "bound", limit)
				break
			}
			var repo bot.Repo
			if err := json.Unmarshal([]byte(repos[k]), &repo); err != nil {
				errs = append(errs, fmt.Errorf("reconcile: stored repository %s: %w", k, err))
				last = k
				continue
			}
			budget := limit - queued
			n, err := r.repo(ctx, forge, r.Forges[forge], repo, budget)
			queued += n
			if err != nil {
				errs = append(errs, err)
				break // this forge: the next run retries from this repository
			}
			if n < budget {
				last = k // done with it; a repository cut short is visited again first
			}
		}
		if last != "" {
			// The next run starts after the last repository fully visited.
			if err := r.Store.PutFact(ctx, reposScope(forge), cursorKey, last); err != nil {
				return queued, fmt.Errorf("reconcile: record progress: %w", err)
			}
		}
	}
	return queued, errors.Join(errs...)
}

// repo reconciles one repository, queueing at most budget pushes.
func (r *Reconciler) repo(ctx context.Context, forge bot.ForgeName, f Forge, repo bot.Repo, budget int) (int, error) {
	scope := refsScope(forge, repo.FullName)
	judged, err := r.Store.Facts(ctx, scope)
	if err != nil {
		return 0, fmt.Errorf("reconcile: read refs of %s: %w", repo.FullName, err)
	}
	pol, err := r.policy(ctx, f, repo)
	if err != nil {
		return 0, err
	}
	branches, err := f.Branches(ctx, repo)
	if err != nil {
		return 0, fmt.Errorf("reconcile: %w", err)
	}
	tags, err := f.Tags(ctx, repo)
	if err != nil {
		return 0, fmt.Errorf("reconcile: %w", err)
	}
	current := map[string]string{}
	for name, sha := range branches {
		if pol.IsReleaseBranch(name, repo.DefaultBranch) {
			current["refs/heads/"+name] = sha
		}
	}
	for name, sha := range tags {
		if pol.IsReleaseTag(name) {
			current["refs/tags/"+name] = sha
		}
	}
	refs := make([]string, 0, len(current))
	for ref := range current {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	if _, ok := judged[baselineKey]; !ok {
		// First visit: refs not recorded by a push are taken as they are.
		// Judging a branch's whole history, or every old tag, as new would
		// flag what predates foureyes.
		for _, ref := range refs {
			if _, ok := judged[ref]; !ok {
				if err := r.Store.PutFact(ctx, scope, ref, current[ref]); err != nil {
					return 0, fmt.Errorf("reconcile: record baseline of %s: %w", repo.FullName, err)
				}
				judged[ref] = current[ref]
			}
		}
		if err := r.Store.PutFact(ctx, scope, baselineKey, r.now().Format(time.RFC3339)); err != nil {
			return 0, fmt.Errorf("reconcile: record baseline of %s: %w", repo.FullName, err)
		}
	}
	queued := 0
	for _, ref := range refs {
		if queued >= budget {
			break
		}
		tip, last := current[ref], judged[ref]
		if tip == last {
			continue
		}
		evs := r.events(forge, repo, ref, last, tip, r.pusher(ctx, f, forge, repo, ref, tip))
		for _, ev := range evs {
			dup, err := r.Enqueue(ctx, ev)
			if err != nil {
				return queued, fmt.Errorf("reconcile: queue %s of %s: %w", ref, repo.FullName, err)
			}
			if !dup && ev.Kind != bot.EventPolicyPush {
				queued++
				if r.Observer != nil {
					r.Observer(string(forge))
				}
				r.logger().Warn("found a push the forge never delivered", "forge", forge, "repo", repo.FullName,
					"ref", ref, "judged", last, "now", tip)
			}
		}
	}
	return queued, nil
}

// unknownPusher stands for the pusher of a push nobody reported.
var unknownPusher = bot.User{Name: "unknown pusher (reconciled: the forge sent no push event)"}

// pusher asks the forge's own record of pushes (GitHub's repository
// activity API, GitLab's project push events) who pushed tip to a branch,
// as the webhook would have said. A forge without that record, a tag, or
// a record that does not name tip leaves the pusher unknown: the push is
// still judged and flagged, never taken as reviewed.
func (r *Reconciler) pusher(ctx context.Context, f Forge, forge bot.ForgeName, repo bot.Repo, ref, tip string) bot.User {
	pr, ok := f.(bot.PushReader)
	branch, isBranch := strings.CutPrefix(ref, "refs/heads/")
	if !ok || !isBranch {
		return unknownPusher
	}
	c := &bot.Change{Ref: bot.ChangeRef{Forge: forge, Repo: repo, HeadSHA: tip}, HeadRef: branch}
	if err := pr.HeadPushes(ctx, c); err != nil {
		r.logger().Warn("reconcile: cannot read who pushed", "forge", forge, "repo", repo.FullName, "ref", ref, "error", err)
		return unknownPusher
	}
	if ps := c.HeadPushers(tip); len(ps) > 0 {
		return ps[0]
	}
	return unknownPusher
}

// events are the deliveries the push from last to tip would have caused.
// The delivery ID names the push, so a push queued once is not queued
// again by the next run while it waits.
func (r *Reconciler) events(forge bot.ForgeName, repo bot.Repo, ref, last, tip string, pusher bot.User) []bot.Event {
	created := last == ""
	before := last
	if created {
		before = strings.Repeat("0", len(tip))
	}
	id := fmt.Sprintf("reconcile/%s/%s/%s/%s..%s", forge, repo.FullName, ref, before, tip)
	push := &bot.PushEvent{
		Ref: ref, Before: before, After: tip, Created: created,
		// From the forge's record of pushes when it has one.
		Pusher: pusher,
		// The commits are not known either: the guard completes them
		// through the compare API.
		Truncated: true, FilesIncomplete: true, Reconciled: true,
	}
	ev := bot.Event{Forge: forge, DeliveryID: id, Name: "reconcile", Action: "reconciled", Repo: repo, Received: r.now(), Push: push}
	if strings.HasPrefix(ref, "refs/tags/") {
		ev.Kind = bot.EventTagPush
		return []bot.Event{ev}
	}
	ev.Kind = bot.EventBranchPush
	out := []bot.Event{ev}
	if !created {
		// The push may have changed the policy: bot.Service compares the
		// policy before and after and re-judges the open changes if so.
		pol := ev
		pc := *push
		pol.Push = &pc
		pol.Kind = bot.EventPolicyPush
		pol.DeliveryID = id + "/policy"
		out = append(out, pol)
	}
	return out
}

// policy is the repository's policy on its default branch, with the
// service's fallbacks; an invalid file reconciles with the built-in
// default (the guard flags the invalid file itself).
func (r *Reconciler) policy(ctx context.Context, f Forge, repo bot.Repo) (*policies.Policy, error) {
	pf, err := f.Policy(ctx, repo, repo.DefaultBranch)
	if err != nil {
		return nil, fmt.Errorf("reconcile: read policy of %s: %w", repo.FullName, err)
	}
	var (
		pol  *policies.Policy
		perr error
	)
	switch {
	case pf.Found:
		pol, perr = policies.Parse(pf.Source, pf.Data)
	case r.DefaultPolicy != nil:
		pol, perr = policies.Parse(r.DefaultPolicy.Source, r.DefaultPolicy.Data)
	default:
		pol = policies.Default()
	}
	if perr != nil {
		pol = policies.Default()
	}
	return pol, nil
}
