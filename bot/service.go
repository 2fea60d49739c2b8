package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/policies"
)

// Observer receives what an operator wants to measure. The service stays
// free of any metrics library; cmd/foureyes adapts this to Prometheus.
type Observer interface {
	// StartEvaluation may attach a request counter to ctx; done is called
	// with the verdict once the evaluation is published.
	StartEvaluation(ctx context.Context, forge ForgeName) (context.Context, func(state State))
	PolicyError(forge ForgeName)
	Tampered(forge ForgeName)
}

// Service turns normalized events into published verdicts: it gathers the
// facts through a Forge, completes them with what only webhooks told
// (pushers, earlier diff digests, GitLab approval heads), decides, reports
// and audits. It holds no state of its own beyond its dependencies.
type Service struct {
	Forges map[ForgeName]Forge
	Store  Store
	// DefaultPolicy is the server-wide policy file for repositories that
	// have none (FOUREYES_DEFAULT_POLICY_FILE); nil means the built-in one.
	DefaultPolicy *PolicyFile
	// DetailsURL builds the signed link to the details page of a verdict.
	DetailsURL func(ref ChangeRef) string
	Observer   Observer
	Logger     *slog.Logger
	// Release handles branch and tag pushes (the release-branch guard);
	// nil leaves them alone.
	Release PushHandler
	// Enqueue stores follow-up work durably for the workers (the webhook
	// intake); an installation's open changes are queued through it. Nil
	// evaluates them in place.
	Enqueue func(ctx context.Context, ev Event) (duplicate bool, err error)
	// PolicyCacheTTL bounds how long a base branch's policy is reused while
	// no push to the branch is recorded (policycache.go): 0 means
	// DefaultPolicyCacheTTL, a negative value reads it every time.
	PolicyCacheTTL time.Duration
	// Now is the clock of the policy cache (nil: time.Now).
	Now func() time.Time

	parsed parsedPolicies
}

// PushHandler takes the pushes that are not about one change.
type PushHandler interface {
	HandlePush(ctx context.Context, ev Event) error
}

// Fact scopes. Each is suffixed to the change key, e.g.
// "github/acme/app#12/pusher"; the fact key is a head SHA or a login.
const (
	factPusher   = "pusher"   // head SHA + "/" + login -> login: everyone who pushed a head (a history)
	factDigest   = "digest"   // head SHA -> diff digest recorded at evaluation ("" once it was seen with two)
	factReport   = "report"   // head SHA -> forge object ID of the published verdict
	factVerdict  = "verdict"  // head SHA -> verdict JSON (details page)
	factApproval = "approval" // login -> "TIME|HEAD" of the latest approval event (GitLab), "TIME|" when revoked
	factForeign  = "foreign"  // head SHA + "/" + check ID -> who wrote a "foureyes" check that is not ours
)

// reportInFlight marks a publish that started but whose forge object ID
// was never recorded (the process died in between). The adapter then looks
// for its own object before creating one, so a crash never leaves two.
const reportInFlight = "lookup"

// ReportInFlight is the Report.PriorID an adapter receives when an earlier
// attempt may have created the forge object without recording it.
const ReportInFlight = reportInFlight

// FactScope returns the store scope of one kind of fact about a change.
func FactScope(ref ChangeRef, kind string) string { return ref.Key() + "/" + kind }

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// ErrUnreadableFact is returned for a stored fact that does not decode.
var ErrUnreadableFact = errors.New("stored fact is unreadable")

// ErrUnknownForge is returned for an event of a forge that is not configured.
var ErrUnknownForge = errors.New("forge not configured")

// Handle processes one event. A returned error makes the queue retry the
// event; evaluation failures that retrying cannot fix are published as a
// failing verdict instead of returned.
func (s *Service) Handle(ctx context.Context, ev Event) error {
	f, ok := s.Forges[ev.Forge]
	if !ok {
		return fmt.Errorf("event %s: %w: %s", ev.DeliveryID, ErrUnknownForge, ev.Forge)
	}
	switch ev.Kind {
	case EventChange:
		return s.handleChange(ctx, f, ev)
	case EventForeignCheck:
		return s.handleForeign(ctx, f, ev)
	case EventPolicyPush:
		return s.handlePolicyPush(ctx, f, ev)
	case EventMergeGroup:
		return s.handleMergeGroup(ctx, f, ev)
	case EventBreakGlass:
		return s.handleBreakGlass(ctx, f, ev)
	case EventInstallation:
		return s.handleInstallation(ctx, f, ev)
	case EventBranchPush, EventTagPush:
		// First: no evaluation from now on reuses a policy read before it.
		if err := RecordBranchPush(ctx, s.Store, ev); err != nil {
			return fmt.Errorf("event %s: %w", ev.DeliveryID, err)
		}
		if err := s.recordPushEvent(ctx, ev); err != nil {
			return fmt.Errorf("event %s: %w", ev.DeliveryID, err)
		}
		if s.Release == nil {
			return nil
		}
		return s.Release.HandlePush(ctx, ev)
	}
	return fmt.Errorf("event %s: unknown kind %q", ev.DeliveryID, ev.Kind)
}

func (s *Service) handleChange(ctx context.Context, f Forge, ev Event) error {
	if ev.Change != nil && ev.Change.Number == 0 {
		return s.handleByHead(ctx, f, ev)
	}
	facts, err := s.changeFacts(ctx, []Event{ev})
	if err != nil {
		return err
	}
	ce := ev.Change
	ref := ChangeRef{Forge: ev.Forge, Repo: ev.Repo, Number: ce.Number, HeadSHA: ce.HeadSHA}
	_, err = s.evaluate(ctx, ref, ce.BaseRef, facts)
	return err
}

// recordAllChangeFacts records the facts of the change events evs (see
// recordChangeFacts) and writes them in one commit.
func (s *Service) recordAllChangeFacts(ctx context.Context, evs []Event) error {
	b, err := s.changeFacts(ctx, evs)
	if err != nil {
		return err
	}
	return b.flush(ctx)
}

// changeFacts gathers the facts of the change events evs (see
// recordChangeFacts) in a batch, for the evaluation they cause to judge
// and to write with its verdict: one commit for both, before the verdict
// is reported anywhere. Writing them first cost every evaluation a commit
// of its own, and on PostgreSQL the commits were most of a burst's drain.
func (s *Service) changeFacts(ctx context.Context, evs []Event) (*factBatch, error) {
	b := newFactBatch(s.Store)
	for _, ev := range evs {
		if err := s.recordChangeFacts(ctx, b, ev); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// recordChangeFacts remembers what only the change event tells (see
// HandleFolded: every folded event's facts are recorded), in b; GitLab
// approvals are written at once, in event-time order.
func (s *Service) recordChangeFacts(ctx context.Context, b *factBatch, ev Event) error {
	ce := ev.Change
	if ce == nil {
		return fmt.Errorf("event %s: change event without change", ev.DeliveryID)
	}
	if ce.Number == 0 {
		return nil // names no change (see handleByHead): nothing to record
	}
	ref := ChangeRef{Forge: ev.Forge, Repo: ev.Repo, Number: ce.Number, HeadSHA: ce.HeadSHA}
	if w, ok := s.Forges[ev.Forge].(ChecksWatcher); ok && ce.ChecksChanged {
		// Before the evaluation this event causes, in the process that
		// runs it.
		w.ChecksChanged(ref)
	}
	if ce.Pushed && ev.Sender.Known() && ce.HeadSHA != "" {
		s.recordChangePush(b, ev, ref)
	}
	if ce.HeadSHA != "" {
		// Any delivery naming the head (a push, the opening of the change,
		// a review) shows it existed when the forge sent it: a break-glass
		// comment written after that receipt may be about it. Only the
		// first sighting is kept, so a later delivery cannot move it.
		if err := noteHeadSeen(ctx, b, ref, ev.Received); err != nil {
			return err
		}
	}
	if r := ce.Review; r != nil && r.Reviewer.Known() && ev.Forge == GitLab {
		// GitLab's approvals API does not say which head was approved: the
		// approval event does, so remember it (in event-time order).
		if err := s.recordApproval(ctx, ev, ref, r); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) handleForeign(ctx context.Context, f Forge, ev Event) error {
	fc := ev.Foreign
	if fc == nil || ev.Change == nil {
		return fmt.Errorf("event %s: foreign check without details", ev.DeliveryID)
	}
	ref := ChangeRef{Forge: ev.Forge, Repo: ev.Repo, Number: ev.Change.Number, HeadSHA: fc.HeadSHA}
	if err := s.auditTamper(ctx, ref, *fc, ev.DeliveryID); err != nil {
		return err
	}
	if ref.Number == 0 {
		return nil // not on a change: audited, nothing to re-evaluate
	}
	// Remembered so that every later verdict on this head calls it out.
	if err := s.Store.PutFact(ctx, FactScope(ref, factForeign), fc.HeadSHA+"/"+strconv.FormatInt(fc.ID, 10), foreignNotice(*fc)); err != nil {
		return fmt.Errorf("record foreign check: %w", err)
	}
	_, err := s.Evaluate(ctx, ref, ev.Change.BaseRef, ev.Change.BaseSHA)
	return err
}

func foreignNotice(fc ForeignCheck) string {
	who := fc.App
	if who == "" {
		who = fc.By.Display()
	}
	return fmt.Sprintf("A `foureyes` check (%s) on this head was written by %s, not by foureyes: it proves nothing. Require the `foureyes` check from the foureyes App itself in branch protection.", fc.Conclusion, who)
}

func (s *Service) auditTamper(ctx context.Context, ref ChangeRef, fc ForeignCheck, delivery string) error {
	if s.Observer != nil {
		s.Observer.Tampered(ref.Forge)
	}
	data, _ := json.Marshal(fc)
	_, err := s.Store.AppendAudit(ctx, audit.Record{
		Kind: audit.KindTamper, Forge: string(ref.Forge), Repo: ref.Repo.FullName,
		Change: ref.Number, HeadSHA: ref.HeadSHA, DeliveryID: delivery, Data: data,
	})
	if err != nil {
		return fmt.Errorf("audit foreign check on %s: %w", shortSHA(ref.HeadSHA), err)
	}
	s.logger().Warn("a foureyes check was written by someone else",
		"change", ref.Key(), "head", ref.HeadSHA, "by", fc.By.Display(), "app", fc.App, "conclusion", fc.Conclusion)
	return nil
}

func (s *Service) handlePolicyPush(ctx context.Context, f Forge, ev Event) error {
	p := ev.Push
	if p == nil {
		return fmt.Errorf("event %s: push without details", ev.DeliveryID)
	}
	branch := strings.TrimPrefix(p.Ref, "refs/heads/")
	// Recorded before the re-evaluations below, whichever of this event and
	// its branch push is handled first: they must read the pushed policy.
	if err := RecordBranchPush(ctx, s.Store, ev); err != nil {
		return fmt.Errorf("event %s: %w", ev.DeliveryID, err)
	}
	if p.FilesIncomplete {
		same, err := policyUnchanged(ctx, f, ev.Repo, p)
		if err != nil {
			return fmt.Errorf("event %s: the push's file list is cut; compare the policy before and after it: %w", ev.DeliveryID, err)
		}
		if same {
			return nil
		}
	}
	refs, err := f.OpenChanges(ctx, ev.Repo, branch)
	if err != nil {
		return fmt.Errorf("list open changes on %s: %w", branch, err)
	}
	var errs []error
	for _, ref := range refs {
		// The adapter reads the branch at its tip, which is this push or
		// a later one: never the base SHA the change last saw.
		if _, err := s.Evaluate(ctx, ref, branch, ""); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// handleMergeGroup evaluates the change a merge queue group was built from
// and reports that verdict on the group's head, so the queue cannot merge
// what the pull request itself could not.
func (s *Service) handleMergeGroup(ctx context.Context, f Forge, ev Event) error {
	mg := ev.MergeGroup
	if mg == nil {
		return fmt.Errorf("event %s: merge group without details", ev.DeliveryID)
	}
	number, ok := mergeGroupPR(mg.HeadRef)
	if !ok {
		return fmt.Errorf("event %s: cannot tell the pull request of merge group %q", ev.DeliveryID, mg.HeadRef)
	}
	ref := ChangeRef{Forge: ev.Forge, Repo: ev.Repo, Number: number}
	v, err := s.Evaluate(ctx, ref, strings.TrimPrefix(mg.BaseRef, "refs/heads/"), "")
	if err != nil {
		return err
	}
	group := ChangeRef{Forge: ev.Forge, Repo: ev.Repo, Number: number, HeadSHA: mg.HeadSHA}
	facts := newFactBatch(s.Store)
	if err := s.publish(ctx, f, group, v, facts); err != nil {
		return err
	}
	// The report's ID (no audit record to write it with: the evaluation
	// above has its own).
	return facts.flush(ctx)
}

// mergeGroupPR reads N out of GitHub's "gh-readonly-queue/main/pr-N-SHA".
func mergeGroupPR(headRef string) (int, bool) {
	i := strings.LastIndex(headRef, "/pr-")
	if i < 0 {
		return 0, false
	}
	rest := headRef[i+4:]
	if j := strings.IndexByte(rest, '-'); j >= 0 {
		rest = rest[:j]
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n > 0
}

// Evaluate judges one change at ref.HeadSHA (or, when that is empty, at its
// current head), publishes the verdict and audits it. It returns the
// verdict, or an error when the work should be retried. The base SHA an
// event names is deliberately not used: see the policy below.
func (s *Service) Evaluate(ctx context.Context, ref ChangeRef, baseRef, _ string) (Verdict, error) {
	return s.evaluate(ctx, ref, baseRef, newFactBatch(s.Store))
}

// evaluate is Evaluate with facts recorded but not yet written (see
// changeFacts): the evaluation reads through them and writes them with
// its verdict, or, when it judges nothing or fails, before it returns.
func (s *Service) evaluate(ctx context.Context, ref ChangeRef, baseRef string, facts *factBatch) (Verdict, error) {
	f, ok := s.Forges[ref.Forge]
	if !ok {
		return Verdict{}, fmt.Errorf("%w: %s", ErrUnknownForge, ref.Forge)
	}
	done := func(State) {}
	if s.Observer != nil {
		ctx, done = s.Observer.StartEvaluation(ctx, ref.Forge)
	}
	// keep writes the events' facts when the evaluation fails before its
	// verdict: the delivery is retried and may end dead-lettered, and who
	// pushed, which only the delivery told, must not be lost with it.
	keep := func(err error) error { return errors.Join(err, facts.flush(ctx)) }
	j, err := s.judge(ctx, f, ref, baseRef, nil, facts)
	var ge *gatherError
	if errors.As(err, &ge) {
		return s.failClosed(ctx, f, ref, ge.cause, done, facts)
	}
	if err != nil {
		return Verdict{}, keep(err)
	}
	if j.moved {
		// The forge shows the present: its files and reviews belong to the
		// newer head, which its own push event will judge once its pusher
		// is known. Judging the old head with new facts would be wrong.
		s.logger().Info("change moved on; leaving the newer head to its own event",
			"change", ref.Key(), "event_head", j.ref.HeadSHA, "current_head", j.change.Ref.HeadSHA)
		if err := facts.flush(ctx); err != nil {
			return Verdict{}, err
		}
		done(PendingState)
		return Verdict{}, nil
	}
	ref, change, v := j.ref, j.change, j.verdict
	if err := RecordPushes(ctx, s.Store, change, j.learned); err != nil {
		return Verdict{}, keep(err)
	}
	if l := s.logger(); l.Enabled(ctx, slog.LevelDebug) {
		bound := make([]string, 0, len(change.Reviews))
		for _, r := range change.Reviews {
			bound = append(bound, r.Reviewer.Login+":"+string(r.State)+"@"+shortSHA(r.CommitSHA))
		}
		l.DebugContext(ctx, "evaluated", "change", ref.Key(), "head", ref.HeadSHA, "state", v.State,
			"title", v.Title, "reviews", bound, "pushes", len(change.Pushes))
	}
	for _, fc := range change.Foreign {
		if err := s.auditTamper(ctx, ref, fc, ""); err != nil {
			return Verdict{}, keep(err)
		}
	}
	if change.EvalError == "" {
		if err := s.recordDigests(ctx, facts, change, v.DiffDigest); err != nil {
			return Verdict{}, err
		}
	}
	if err := s.publish(ctx, f, ref, v, facts); err != nil {
		return v, err
	}
	if err := s.auditEvaluationWith(ctx, v, facts); err != nil {
		return v, err
	}
	if v.BreakGlass != nil && v.BreakGlass.Applied {
		if err := s.recordOverride(ctx, f, change, j.policy, v); err != nil {
			return v, err
		}
	}
	done(v.State)
	return v, nil
}

// judgement is a change's facts and verdict, gathered and decided as the
// server does, before anything is published.
type judgement struct {
	ref     ChangeRef
	change  *Change
	verdict Verdict
	policy  *policies.Policy // nil when the policy file is invalid
	// moved: the forge's head (change.Ref.HeadSHA) is newer than ref's.
	moved bool
	// learned are the pushes read from the forge's record (ReadPushers),
	// for Evaluate to record.
	learned []Push
}

// gatherError is a failure to gather the facts, which Evaluate publishes
// as a failing verdict (fail closed) before retrying.
type gatherError struct{ cause error }

func (e *gatherError) Error() string { return e.cause.Error() }
func (e *gatherError) Unwrap() error { return e.cause }

// judge gathers the facts of a change at ref.HeadSHA (or its current head)
// and decides. It reads only: Evaluate publishes and audits what it
// returns, Explain prints it. candidate, when set, replaces the policy
// file of the base branch.
//
// The policy is read on the base branch by name, at its current tip: the
// base SHA a payload names (pull_request.base.sha) is stale as soon as the
// branch moves, and a policy tightened since must apply (issue 10).
//
// facts is where the stored facts are read (the store, or a batch of facts
// recorded for this evaluation and not yet written).
func (s *Service) judge(ctx context.Context, f Forge, ref ChangeRef, baseRef string, candidate *PolicyFile, facts FactReader) (judgement, error) {
	policyRef := baseRef
	var (
		change *Change
		err    error
	)
	if policyRef == "" {
		// Events such as check_suite may not name the base: learn it from
		// the change first (the adapter caches what it fetched).
		change, err = f.Change(ctx, ref, nil)
		if err != nil {
			return judgement{}, &gatherError{fmt.Errorf("read change: %w", err)}
		}
		policyRef = change.BaseRef
	}
	var (
		pol  *policies.Policy
		perr error
	)
	var pf PolicyFile
	for attempt := 0; ; attempt++ {
		if candidate != nil {
			pf = *candidate
		} else if pf, err = s.branchPolicy(ctx, f, ref, policyRef); err != nil {
			return judgement{}, &gatherError{fmt.Errorf("read policy file from the base branch: %w", err)}
		}
		pol, perr = s.parsePolicy(pf)
		var teams []string
		if pol != nil {
			teams = PolicyTeams(pol)
		}
		if change == nil || len(teams) > 0 {
			change, err = f.Change(ctx, ref, teams)
			if err != nil {
				return judgement{}, &gatherError{fmt.Errorf("read change: %w", err)}
			}
		}
		// An event may name a base the change no longer has (delivered
		// before a retarget): the policy is the current base's.
		if candidate != nil || attempt > 0 || change.BaseRef == "" || change.BaseRef == policyRef {
			break
		}
		policyRef = change.BaseRef
	}
	if perr != nil && s.Observer != nil {
		s.Observer.PolicyError(ref.Forge)
	}
	if ref.HeadSHA == "" {
		ref.HeadSHA = change.Ref.HeadSHA
	}
	if change.Ref.HeadSHA != ref.HeadSHA {
		return judgement{ref: ref, change: change, moved: true}, nil
	}
	change.Ref = ref
	if err := CompleteFacts(ctx, facts, change); err != nil {
		return judgement{}, err
	}
	if pf.Note != "" {
		change.Notices = append(change.Notices, pf.Note)
	}
	learned, err := ReadPushers(ctx, f, change)
	if err != nil {
		return judgement{}, &gatherError{err}
	}
	var teams []string
	if pol != nil {
		teams = PolicyTeams(pol)
	}
	votes, err := LoadBreakGlass(ctx, facts, f, change, teams, time.Time{})
	if err != nil {
		return judgement{}, err
	}
	v := Decide(Input{Policy: pol, PolicyErr: perr, Change: change, BreakGlass: votes})
	return judgement{ref: ref, change: change, verdict: v, policy: pol, learned: learned}, nil
}

// failClosed publishes a failure when the facts cannot be gathered, and
// still returns the error so the queue retries: a later attempt may
// succeed, and until then the change shows a failing check, never success.
func (s *Service) failClosed(ctx context.Context, f Forge, ref ChangeRef, cause error, done func(State), facts *factBatch) (Verdict, error) {
	done(Failure)
	if ref.HeadSHA == "" {
		return Verdict{}, errors.Join(cause, facts.flush(ctx))
	}
	v := Decide(Input{Policy: policies.Default(), Change: &Change{Ref: ref, EvalError: cause.Error()}})
	if err := s.publish(ctx, f, ref, v, facts); err != nil {
		return v, errors.Join(cause, err)
	}
	if err := s.auditEvaluationWith(ctx, v, facts); err != nil {
		return v, errors.Join(cause, err)
	}
	return v, cause
}

// branchPolicy reads the policy of the base branch, reusing a read no
// recorded push has made stale (BranchPolicy).
func (s *Service) branchPolicy(ctx context.Context, f Forge, ref ChangeRef, branch string) (PolicyFile, error) {
	ttl := s.PolicyCacheTTL
	if ttl == 0 {
		ttl = DefaultPolicyCacheTTL
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	return BranchPolicy(ctx, s.Store, f, ref.Forge, ref.Repo, branch, ttl, now())
}

func (s *Service) parsePolicy(pf PolicyFile) (*policies.Policy, error) {
	return s.parsed.resolve(pf, s.DefaultPolicy)
}

// PolicyTeams lists the teams a policy names: the only memberships an
// adapter needs to look up.
func PolicyTeams(p *policies.Policy) []string {
	seen := map[string]bool{}
	var teams []string
	add := func(ts []string) {
		for _, t := range ts {
			if k := strings.ToLower(t); !seen[k] {
				seen[k] = true
				teams = append(teams, t)
			}
		}
	}
	for _, c := range p.Categories {
		add(c.Reviewers.Teams)
	}
	if p.BreakGlass != nil {
		add(p.BreakGlass.Approvers.Teams)
	}
	sort.Strings(teams)
	return teams
}

// FactReader reads facts the service stored (bot.Store has it).
type FactReader interface {
	Facts(ctx context.Context, scope string) (map[string]string, error)
}

// CompleteFacts adds what the forge API cannot tell and only webhooks did:
// who pushed each head, the diff digests of earlier heads, foreign
// "foureyes" checks seen on the head, and on GitLab the head each approval
// was given on. The service and the release guard judge a change on the
// same facts through it.
func CompleteFacts(ctx context.Context, st FactReader, c *Change) error {
	st, err := prefetch(ctx, st, c)
	if err != nil {
		return err
	}
	if err := completeFacts(ctx, st, c); err != nil {
		return err
	}
	// Last: GitLab approvals have just been bound to their heads, which is
	// part of their key.
	return completeReviewDigests(ctx, st, c)
}

func completeFacts(ctx context.Context, st FactReader, c *Change) error {
	pushers, err := completePushers(ctx, st, c)
	if err != nil {
		return err
	}
	foreign, err := st.Facts(ctx, FactScope(c.Ref, factForeign))
	if err != nil {
		return fmt.Errorf("read foreign checks: %w", err)
	}
	keys := make([]string, 0, len(foreign))
	for k := range foreign {
		if strings.HasPrefix(k, c.Ref.HeadSHA+"/") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		c.Notices = append(c.Notices, foreign[k])
	}
	digests, err := st.Facts(ctx, FactScope(c.Ref, factDigest))
	if err != nil {
		return fmt.Errorf("read diff digests: %w", err)
	}
	if c.DiffDigests == nil {
		c.DiffDigests = map[string]string{}
	}
	for h, d := range digests {
		if _, ok := c.DiffDigests[h]; !ok {
			c.DiffDigests[h] = d
		}
	}
	if c.Ref.Forge != GitLab {
		return nil
	}
	approvals, err := st.Facts(ctx, FactScope(c.Ref, factApproval))
	if err != nil {
		return fmt.Errorf("read approval heads: %w", err)
	}
	if c.ReviewsFromEvents {
		c.Reviews = c.Reviews[:0]
		logins := make([]string, 0, len(approvals))
		for l := range approvals {
			logins = append(logins, l)
		}
		sort.Strings(logins)
		for _, l := range logins {
			if at, head := decodeApproval(approvals[l]); head != "" {
				c.Reviews = append(c.Reviews, Review{Reviewer: User{Login: l}, State: Approved, CommitSHA: head, At: at})
			}
		}
		return nil
	}
	for i := range c.Reviews {
		r := &c.Reviews[i]
		if r.CommitSHA != "" {
			continue
		}
		raw, ok := approvals[strings.ToLower(r.Reviewer.Login)]
		if _, head := decodeApproval(raw); ok && head != "" {
			r.CommitSHA = head
		} else if len(pushers) <= 1 {
			// Seen without its event: it can only be bound to the current
			// head if no push happened since, which holds when the only head
			// ever pushed is the current one.
			if _, onlyCurrent := pushers[c.Ref.HeadSHA]; onlyCurrent || len(pushers) == 0 {
				r.CommitSHA = c.Ref.HeadSHA
			}
		}
	}
	return nil
}

// publish writes the verdict, with facts (the evaluation's digests and the
// facts of its events) in the same commit, then reports it on the forge.
// The report's new ID is put in facts, for auditEvaluationWith to write
// with the audit record.
func (s *Service) publish(ctx context.Context, f Forge, ref ChangeRef, v Verdict, facts *factBatch) error {
	scope := FactScope(ref, factReport)
	prior, err := s.Store.Facts(ctx, scope)
	if err != nil {
		return fmt.Errorf("read report id: %w", err)
	}
	id := prior[ref.HeadSHA]
	vj, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode verdict: %w", err)
	}
	facts.put(FactScope(ref, factVerdict), ref.HeadSHA, string(vj))
	if id == "" {
		// Written before the forge call: if we die before recording the ID,
		// the next attempt knows to look for the object instead of creating
		// a second one.
		facts.put(scope, ref.HeadSHA, reportInFlight)
	}
	if err := facts.flush(ctx); err != nil {
		return fmt.Errorf("store verdict and report intent: %w", err)
	}
	details := ""
	if s.DetailsURL != nil {
		details = s.DetailsURL(ref)
	}
	newID, err := f.Publish(ctx, Report{Ref: ref, Verdict: v, Title: v.Title, Markdown: Markdown(v), QuietMarkdown: MarkdownQuiet(v), DetailsURL: details, PriorID: id})
	if err != nil {
		return fmt.Errorf("publish verdict on %s: %w", shortSHA(ref.HeadSHA), err)
	}
	if newID != id {
		// Lost with the audit record if that write fails: the next attempt
		// then finds the intent above and looks for the report it made.
		facts.put(scope, ref.HeadSHA, newID)
	}
	return nil
}

// StoredVerdict returns the verdict last published for a change at head.
func (s *Service) StoredVerdict(ctx context.Context, ref ChangeRef) (Verdict, bool, error) {
	return LoadVerdict(ctx, s.Store, ref)
}

// LoadVerdict reads the verdict the service published for a change at
// ref.HeadSHA.
func LoadVerdict(ctx context.Context, st FactReader, ref ChangeRef) (Verdict, bool, error) {
	m, err := st.Facts(ctx, FactScope(ref, factVerdict))
	if err != nil {
		return Verdict{}, false, err
	}
	raw, ok := m[ref.HeadSHA]
	if !ok {
		return Verdict{}, false, nil
	}
	var v Verdict
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return Verdict{}, false, fmt.Errorf("%w: verdict of %s: %v", ErrUnreadableFact, ref.Key(), err)
	}
	return v, true, nil
}

// auditData is the per-category part of an evaluation's audit record.
type auditData struct {
	Title      string           `json:"title"`
	Categories []CategoryResult `json:"categories"`
	Blocking   []string         `json:"blocking,omitempty"`
	Failures   []string         `json:"failures,omitempty"`
	Ignored    []Rejection      `json:"ignored,omitempty"`
	DiffDigest string           `json:"diff_digest,omitempty"`
	// BreakGlass is who voted to break the glass on the head and how it
	// was judged (absent without votes).
	BreakGlass *BreakGlassResult `json:"break_glass,omitempty"`
}

// auditEvaluationWith appends the evaluation's audit record and writes
// what facts holds in the same commit.
func (s *Service) auditEvaluationWith(ctx context.Context, v Verdict, facts *factBatch) error {
	cats := make([]CategoryResult, len(v.Categories))
	for i, c := range v.Categories {
		// Keep the audit record small: who counted and who did not matters
		// to an auditor; the file list is reproducible from the head SHA.
		c.Files = nil
		cats[i] = c
	}
	data, err := json.Marshal(auditData{Title: v.Title, Categories: cats, Blocking: v.Blocking, Failures: v.Failures, Ignored: v.Ignored, DiffDigest: v.DiffDigest, BreakGlass: v.BreakGlass})
	if err != nil {
		return fmt.Errorf("encode audit data: %w", err)
	}
	err = facts.appendAudit(ctx, audit.Record{
		Kind: audit.KindEvaluation, Forge: string(v.Ref.Forge), Repo: v.Ref.Repo.FullName,
		Change: v.Ref.Number, HeadSHA: v.Ref.HeadSHA, PolicyDigest: v.PolicyDigest,
		Verdict: string(v.State), Data: data,
	})
	if err != nil {
		return fmt.Errorf("audit evaluation: %w", err)
	}
	return nil
}

func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
