package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/policies"
)

// Finding is the guard's judgement of one commit. It is stored per commit
// (so a tag report and a later push reuse it) and is part of the report.
type Finding struct {
	SHA         string    `json:"sha"`
	Title       string    `json:"title"`
	Author      string    `json:"author"`
	CommittedAt time.Time `json:"committed_at"`
	// LandedAt is when the commit reached the branch: its change's merge
	// time, else the time foureyes saw the push, else its commit time.
	LandedAt time.Time `json:"landed_at"`
	// Reason is empty for a reviewed commit.
	Reason Reason       `json:"reason,omitempty"`
	Detail string       `json:"detail,omitempty"`
	Change *ChangeProof `json:"change,omitempty"`
}

// Reviewed reports whether the commit came through an approved change.
func (f Finding) Reviewed() bool { return f.Reason == "" }

// ChangeProof is the review evidence of the change a commit came from.
type ChangeProof struct {
	Number   int       `json:"number"`
	URL      string    `json:"url"`
	Title    string    `json:"title"`
	Author   string    `json:"author"`
	BaseRef  string    `json:"base_ref"`
	HeadSHA  string    `json:"head_sha"` // the final head
	MergedAt time.Time `json:"merged_at"`
	// Verdict is the engine's decision on the final head, counting only
	// reviews given at or before the merge.
	Verdict bot.State `json:"verdict"`
	// Approvers are the independent approvers that counted (any category),
	// in review order.
	Approvers []string `json:"approvers"`
	// StoredVerdict is the verdict foureyes published for the final head
	// when the change was open ("" if it never evaluated that head):
	// evidence, not the decision.
	StoredVerdict bot.State `json:"stored_verdict"`
	PolicyDigest  string    `json:"policy_digest"`
	// OverriddenBy names the people whose break-glass override let the
	// change in (with OverrideReason); empty for a reviewed merge.
	OverriddenBy   []string `json:"overridden_by,omitempty"`
	OverrideReason string   `json:"override_reason,omitempty"`
	// Categories is the verdict per touched category: who counted, how
	// many were required, how many are missing.
	Categories []CategoryProof `json:"categories"`
}

// CategoryProof is the review evidence of one touched category of a
// merged change.
type CategoryProof struct {
	Name     string   `json:"name"`
	Required int      `json:"required"`
	Counted  []string `json:"counted"`
	Missing  int      `json:"missing"`
}

func categoryProofs(v bot.Verdict) []CategoryProof {
	out := make([]CategoryProof, 0, len(v.Categories))
	for _, c := range v.Categories {
		out = append(out, CategoryProof{Name: c.Name, Required: c.Required, Counted: append([]string{}, c.Counted...), Missing: c.Missing})
	}
	return out
}

// maxCandidates bounds how many merged changes of one commit are judged:
// a commit is normally in one or two (a backport).
const maxCandidates = 3

// analyzer judges the commits of one push or tag range. It caches per
// change, so the many commits of one merged change cost one evaluation,
// and remembers which commits each evaluated change contains, so those
// commits need no lookup of their own.
type analyzer struct {
	g      *Guard
	f      Forge
	forge  bot.ForgeName
	repo   bot.Repo
	branch string // the release branch (changes merged into it are preferred)
	pol    *policies.Policy
	teams  []string
	// facts are what bot.Service recorded (pushers, diff digests,
	// verdicts): the guard's store, or what a scan was given.
	facts bot.FactReader
	// readOnly: a scan, which records nothing (not even who pushed).
	readOnly bool

	evals map[int]*evaluation
	owner map[string]int // commit SHA -> merged change containing it
}

type evaluation struct {
	proof  ChangeProof
	reason Reason
	detail string
}

func (g *Guard) newAnalyzer(f Forge, forge bot.ForgeName, repo bot.Repo, branch string, pol *policies.Policy) *analyzer {
	a := &analyzer{
		g: g, f: f, forge: forge, repo: repo, branch: branch, pol: pol, teams: bot.PolicyTeams(pol),
		evals: map[int]*evaluation{}, owner: map[string]int{},
	}
	if g.Store != nil {
		a.facts = g.Store
	}
	return a
}

// commitScope is where the finding of one commit is stored.
func commitScope(forge bot.ForgeName, repo bot.Repo, sha string) string {
	return string(forge) + "/" + repo.FullName + "/release-commit/" + sha
}

const keyFinding = "finding"

// stored returns the finding recorded for a commit by an earlier push or
// report, if any.
func (a *analyzer) stored(ctx context.Context, sha string) (Finding, bool, error) {
	m, err := a.g.Store.Facts(ctx, commitScope(a.forge, a.repo, sha))
	if err != nil {
		return Finding{}, false, fmt.Errorf("read finding of %s: %w", short(sha), err)
	}
	raw, ok := m[keyFinding]
	if !ok {
		return Finding{}, false, nil
	}
	var fd Finding
	if err := json.Unmarshal([]byte(raw), &fd); err != nil {
		return Finding{}, false, fmt.Errorf("decode finding of %s: %w", short(sha), err)
	}
	return fd, true, nil
}

// remember stores a finding unless one is stored already (the first
// judgement of a commit is the one every later report shows).
func (a *analyzer) remember(ctx context.Context, fd Finding) error {
	data, err := json.Marshal(fd)
	if err != nil {
		return fmt.Errorf("encode finding of %s: %w", short(fd.SHA), err)
	}
	if _, err := a.g.Store.PutFactIfAbsent(ctx, commitScope(a.forge, a.repo, fd.SHA), keyFinding, string(data)); err != nil {
		return fmt.Errorf("store finding of %s: %w", short(fd.SHA), err)
	}
	return nil
}

// judge decides whether commit c came through an approved change.
// pushedAt is when foureyes saw it land (zero when judging a tag range).
func (a *analyzer) judge(ctx context.Context, c bot.PushCommit, pushedAt time.Time) (Finding, error) {
	fd := Finding{SHA: c.SHA, Title: firstLine(c.Message), Author: at(c.Author), CommittedAt: c.Time.UTC(), LandedAt: pushedAt}
	if fd.LandedAt.IsZero() {
		fd.LandedAt = fd.CommittedAt
	}
	if n, ok := a.owner[c.SHA]; ok {
		a.apply(&fd, a.evals[n])
		return fd, nil
	}
	changes, mergedAt, err := a.f.ChangesOfCommit(ctx, a.repo, c.SHA)
	if err != nil {
		return fd, fmt.Errorf("find the change of %s: %w", short(c.SHA), err)
	}
	type cand struct {
		ch bot.Change
		at time.Time
	}
	var cands []cand
	var open []string
	for i, ch := range changes {
		var when time.Time
		if i < len(mergedAt) {
			when = mergedAt[i]
		}
		if ch.State == "merged" || !when.IsZero() {
			// A merge time may be unknown (older GitLab): still merged.
			cands = append(cands, cand{ch, when})
		} else {
			open = append(open, fmt.Sprintf("#%d (%s)", ch.Ref.Number, ch.State))
		}
	}
	if len(cands) == 0 {
		fd.Reason = DirectPush
		fd.Detail = "no merged change contains this commit: it was pushed directly"
		if len(open) > 0 {
			fd.Detail += "; it is only part of " + strings.Join(open, ", ")
		}
		return fd, nil
	}
	// Changes merged into this branch first, then the latest merged.
	sort.SliceStable(cands, func(i, j int) bool {
		bi, bj := cands[i].ch.BaseRef == a.branch, cands[j].ch.BaseRef == a.branch
		if bi != bj {
			return bi
		}
		return cands[i].at.After(cands[j].at)
	})
	var first *evaluation
	for _, cd := range cands[:min(len(cands), maxCandidates)] {
		ev, err := a.evaluate(ctx, cd.ch, cd.at)
		if err != nil {
			return fd, err
		}
		if first == nil {
			first = ev
		}
		if ev.reason == "" {
			first = ev
			break
		}
	}
	a.apply(&fd, first)
	return fd, nil
}

func (a *analyzer) apply(fd *Finding, ev *evaluation) {
	p := ev.proof
	fd.Change = &p
	fd.Reason, fd.Detail = ev.reason, ev.detail
	if !p.MergedAt.IsZero() {
		fd.LandedAt = p.MergedAt
	}
}

// evaluate judges a merged change at its final head with the facts it had
// at merge time.
func (a *analyzer) evaluate(ctx context.Context, sum bot.Change, mergedAt time.Time) (*evaluation, error) {
	n := sum.Ref.Number
	if ev, ok := a.evals[n]; ok {
		return ev, nil
	}
	ref := bot.ChangeRef{Forge: a.forge, Repo: a.repo, Number: n, HeadSHA: sum.Ref.HeadSHA}
	ch, err := a.f.Change(ctx, ref, a.teams)
	if err != nil {
		return nil, fmt.Errorf("read change %s: %w", ref.Key(), err)
	}
	if ref.HeadSHA == "" {
		ref.HeadSHA = ch.Ref.HeadSHA
	}
	if ch.Ref.HeadSHA != ref.HeadSHA && ch.EvalError == "" {
		// A merged change cannot move; if the forge says otherwise the
		// facts are not those of the final head: fail closed.
		ch.EvalError = fmt.Sprintf("the forge lists head %s for change %d, merged at %s", short(ch.Ref.HeadSHA), n, short(ref.HeadSHA))
	}
	ch.Ref = ref
	if err := bot.CompleteFacts(ctx, a.facts, ch); err != nil {
		return nil, fmt.Errorf("complete facts of %s: %w", ref.Key(), err)
	}
	learned, err := bot.ReadPushers(ctx, a.f, ch)
	if err != nil {
		return nil, fmt.Errorf("complete facts of %s: %w", ref.Key(), err)
	}
	if !a.readOnly && a.g.Store != nil {
		if err := bot.RecordPushes(ctx, a.g.Store, ch, learned); err != nil {
			return nil, fmt.Errorf("complete facts of %s: %w", ref.Key(), err)
		}
	}
	if !mergedAt.IsZero() {
		// Reviews given after the merge did not let it in.
		ch.Reviews = slices.DeleteFunc(ch.Reviews, func(r bot.Review) bool { return !r.At.IsZero() && r.At.After(mergedAt) })
	}

	// Break-glass votes count as they stood at the merge.
	votes, err := bot.LoadBreakGlass(ctx, a.facts, a.f, ch, a.teams, mergedAt)
	if err != nil {
		return nil, fmt.Errorf("break-glass votes of %s: %w", ref.Key(), err)
	}
	v := bot.Decide(bot.Input{Policy: a.pol, Change: ch, BreakGlass: votes})
	ev := &evaluation{proof: ChangeProof{
		Number: n, URL: firstNonEmpty(ch.URL, sum.URL), Title: firstNonEmpty(ch.Title, sum.Title),
		Author: at(firstUser(ch.Author, sum.Author)), BaseRef: firstNonEmpty(sum.BaseRef, ch.BaseRef),
		HeadSHA: ref.HeadSHA, MergedAt: mergedAt.UTC(), Verdict: v.State, Approvers: counted(v),
		PolicyDigest: v.PolicyDigest, Categories: categoryProofs(v),
	}}
	if sv, ok, err := storedVerdict(ctx, a.facts, ref); err != nil {
		return nil, err
	} else if ok {
		ev.proof.StoredVerdict = sv
	}
	ev.reason, ev.detail = classify(a.pol, ch, v, mergedAt)
	if ev.reason == Override {
		ev.proof.OverriddenBy, ev.proof.OverrideReason = v.BreakGlass.Agreed, v.BreakGlass.Reason
	}
	if ev.proof.BaseRef == a.branch {
		// Every commit of a change merged into this branch came in with
		// it: they need no lookup of their own. (A change merged elsewhere
		// may share commits with one merged here, which is preferred.)
		for _, c := range ch.Commits {
			if _, taken := a.owner[c.SHA]; !taken {
				a.owner[c.SHA] = n
			}
		}
	}
	a.evals[n] = ev
	return ev, nil
}

// classify turns the engine's verdict on a merged change into a reason
// ("" for an approved merge) and its explanation.
func classify(pol *policies.Policy, ch *bot.Change, v bot.Verdict, mergedAt time.Time) (Reason, string) {
	when := "merged (merge time unknown)"
	if !mergedAt.IsZero() {
		when = "merged " + mergedAt.UTC().Format(time.RFC3339)
	}
	if ch.Ref.Forge == bot.GitLab {
		for _, fc := range ch.Foreign {
			if fc.Conclusion == "success" {
				// The merge was let through by a status anybody with
				// Developer access can post (SPEC §7): unapproved.
				return UnapprovedMerge, fmt.Sprintf("%s on a `foureyes` success status posted by %s, not by foureyes", when, at(fc.By))
			}
		}
	}
	if bg := v.BreakGlass; v.State == bot.Success && bg != nil && bg.Applied {
		detail := fmt.Sprintf("%s on a break-glass override by %s", when, handles(bg.Agreed))
		if bg.Reason != "" {
			detail += ": " + bg.Reason
		}
		return Override, detail + " (missing: " + strings.Join(bg.Missing, "; ") + ")"
	}
	if v.State == bot.Success {
		return "", ""
	}
	if ch.EvalError != "" {
		return UnapprovedMerge, when + " but its review cannot be verified: " + ch.EvalError
	}
	// Would the change have passed had every approval been given on the
	// final head? Then the approvals it had were lost to staleness only:
	// commits were pushed after the last qualifying approval.
	hyp := *ch
	hyp.Reviews = slices.Clone(ch.Reviews)
	rebound := false
	for i := range hyp.Reviews {
		if hyp.Reviews[i].State == bot.Approved && hyp.Reviews[i].CommitSHA != ch.Ref.HeadSHA {
			hyp.Reviews[i].CommitSHA = ch.Ref.HeadSHA
			rebound = true
		}
	}
	if rebound && bot.Decide(bot.Input{Policy: pol, Change: &hyp}).State == bot.Success {
		var stale []string
		for _, r := range staleRejections(v) {
			stale = append(stale, "@"+r.Reviewer+" approved "+short(r.CommitSHA))
		}
		pusher := "an unknown pusher"
		if u, ok := ch.PusherOf(ch.Ref.HeadSHA); ok {
			pusher = at(u)
		}
		return StaleApproval, fmt.Sprintf("%s; the final head %s was pushed by %s after the last qualifying approval (%s): nobody approved what was merged",
			strings.Join(stale, ", "), short(ch.Ref.HeadSHA), pusher, when)
	}
	return UnapprovedMerge, fmt.Sprintf("%s while the check said: %s", when, v.Title)
}

// staleRejections lists the approvals rejected as stale, once per reviewer.
func staleRejections(v bot.Verdict) []bot.Rejection {
	seen := map[string]bool{}
	var out []bot.Rejection
	add := func(rs []bot.Rejection) {
		for _, r := range rs {
			if slices.Contains(r.Reasons, bot.ReasonStale) && !seen[r.Reviewer] {
				seen[r.Reviewer] = true
				out = append(out, r)
			}
		}
	}
	for _, c := range v.Categories {
		add(c.Rejected)
	}
	add(v.Ignored)
	return out
}

// counted lists everyone whose approval counted for some category.
func counted(v bot.Verdict) []string {
	out := []string{}
	for _, c := range v.Categories {
		for _, name := range c.Counted {
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	return out
}

// storedVerdict reads the state bot.Service published for a head. It is
// evidence only: an unreadable record is reported as absent.
func storedVerdict(ctx context.Context, st bot.FactReader, ref bot.ChangeRef) (bot.State, bool, error) {
	v, ok, err := bot.LoadVerdict(ctx, st, ref)
	if err != nil {
		if errors.Is(err, bot.ErrUnreadableFact) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("read stored verdict of %s: %w", ref.Key(), err)
	}
	return v.State, ok, nil
}

// handles renders "@a and @b", "@a, @b and @c".
func handles(names []string) string {
	var b strings.Builder
	for i, n := range names {
		switch {
		case i == 0:
		case i == len(names)-1:
			b.WriteString(" and ")
		default:
			b.WriteString(", ")
		}
		b.WriteString("@" + n)
	}
	return b.String()
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func firstUser(us ...bot.User) bot.User {
	for _, u := range us {
		if u.Display() != "" {
			return u
		}
	}
	return bot.User{}
}
