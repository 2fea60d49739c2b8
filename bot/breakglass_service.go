package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/policies"
)

// Fact scopes of break glass (suffixed to the change key, see FactScope).
const (
	// head SHA + "/" + login + "/" + comment ID -> BreakGlassVote JSON.
	// Keyed by the comment, so a redelivered comment overwrites itself and
	// counts once.
	factBreakGlass = "breakglass"
	// head SHA + "/" + effect -> "done" or the issue URL: each effect of an
	// override happens once per head however often the head is evaluated.
	factOverride = "override"
	// comment key -> "done": each comment gets at most one reply.
	factReply = "breakglass-reply"
	// head SHA -> RFC 3339 time foureyes first learned of the head (the
	// receipt of its push event, else the first comment judged on it).
	factHeadSeen = "head-seen"
)

// noteHeadSeen records in b when foureyes first learned of a head, once.
func noteHeadSeen(ctx context.Context, b *factBatch, ref ChangeRef, at time.Time) error {
	if ref.HeadSHA == "" {
		return nil
	}
	scope := FactScope(ref, factHeadSeen)
	seen, err := b.get(ctx, scope, ref.HeadSHA)
	if err != nil {
		return fmt.Errorf("read head sightings: %w", err)
	}
	if seen != "" {
		return nil
	}
	if at.IsZero() {
		at = time.Now()
	}
	b.put(scope, ref.HeadSHA, at.UTC().Format(time.RFC3339Nano))
	return nil
}

// OverrideObserver is an Observer that also counts overrides (metric
// foureyes_overrides_total). It is checked by type assertion.
type OverrideObserver interface {
	Override(forge ForgeName)
}

// ReplyMarker is hidden in foureyes' replies to break-glass comments; the
// adapters ignore comments that hold it, so a reply never starts a loop.
const ReplyMarker = "<!-- foureyes:break-glass-reply -->"

// handleBreakGlass records a break-glass comment as a vote on the head it
// was written on (on GitHub, whose comment payload names no head: the
// change's current head), re-evaluates the change, and tells the commenter
// when their vote did not count.
func (s *Service) handleBreakGlass(ctx context.Context, f Forge, ev Event) error {
	cmd, ce := ev.BreakGlass, ev.Change
	if cmd == nil || ce == nil || ce.Number == 0 {
		return fmt.Errorf("event %s: break-glass comment without change or command", ev.DeliveryID)
	}
	ref := ChangeRef{Forge: ev.Forge, Repo: ev.Repo, Number: ce.Number, HeadSHA: ce.HeadSHA}
	if !cmd.Author.Known() {
		s.logger().Warn("break-glass comment without an account; ignored", "change", ref.Key(), "delivery", ev.DeliveryID)
		return nil
	}
	fromEvent := ref.HeadSHA != ""
	if ref.HeadSHA == "" {
		ch, err := f.Change(ctx, ref, nil)
		if err != nil {
			return fmt.Errorf("read the head of %s: %w", ref.Key(), err)
		}
		ref.HeadSHA = ch.Ref.HeadSHA
		if ce.BaseRef == "" {
			ce.BaseRef = ch.BaseRef
		}
	}
	if ref.HeadSHA == "" {
		return fmt.Errorf("event %s: the head of %s is unknown", ev.DeliveryID, ref.Key())
	}
	if cmd.At.IsZero() {
		cmd.At = ev.Received
	}
	if !fromEvent {
		// A head first met here was pushed after the comment could be
		// written about it, as far as foureyes can tell: now is its first
		// sighting, and the comment (written earlier) will not count.
		b := newFactBatch(s.Store)
		if err := noteHeadSeen(ctx, b, ref, time.Now()); err != nil {
			return err
		}
		if err := b.flush(ctx); err != nil {
			return err
		}
	}
	comment := commentKey(*cmd, ev.DeliveryID)
	vote, err := json.Marshal(BreakGlassVote{HeadSHA: ref.HeadSHA, HeadFromEvent: fromEvent, BreakGlassCommand: *cmd})
	if err != nil {
		return fmt.Errorf("encode break-glass vote: %w", err)
	}
	key := ref.HeadSHA + "/" + strings.ToLower(cmd.Author.Login) + "/" + comment
	if err := s.Store.PutFact(ctx, FactScope(ref, factBreakGlass), key, string(vote)); err != nil {
		return fmt.Errorf("record break-glass vote of %s: %w", cmd.Author.Login, err)
	}
	s.logger().Info("break-glass comment", "change", ref.Key(), "head", ref.HeadSHA, "by", cmd.Author.Login, "confirm", cmd.Confirm)
	v, err := s.Evaluate(ctx, ref, ce.BaseRef, ce.BaseSHA)
	if err != nil {
		return err
	}
	return s.replyBreakGlass(ctx, f, ref, *cmd, comment, v)
}

func commentKey(cmd BreakGlassCommand, delivery string) string {
	if cmd.CommentID != 0 {
		return strconv.FormatInt(cmd.CommentID, 10)
	}
	return "delivery-" + delivery
}

// replyBreakGlass answers a comment that did not count, once.
func (s *Service) replyBreakGlass(ctx context.Context, f Forge, ref ChangeRef, cmd BreakGlassCommand, comment string, v Verdict) error {
	login := cmd.Author.Login
	var why string
	switch {
	case v.Ref.HeadSHA != ref.HeadSHA:
		why = "the change moved on from head `" + short(ref.HeadSHA) + "` before it could be judged; an override binds to one head, so comment again on the new one"
	case v.BreakGlass == nil:
		// Decide stopped before the votes (an invalid policy file).
		why = "the change cannot be judged: " + v.Title
	case v.BreakGlass.Counted(login):
		return nil
	default:
		rj, ok := v.BreakGlass.RejectionOf(login)
		if !ok {
			return nil
		}
		why = rj.Detail
		if len(rj.Reasons) > 0 {
			rs := make([]string, len(rj.Reasons))
			for i, r := range rj.Reasons {
				rs[i] = string(r)
			}
			why += " (" + strings.Join(rs, ", ") + ")"
		}
	}
	c, ok := f.(Commenter)
	if !ok {
		s.logger().Warn("forge cannot reply to comments; break-glass comment did not count", "change", ref.Key(), "by", login, "why", why)
		return nil
	}
	scope := FactScope(ref, factReply)
	done, err := s.Store.Facts(ctx, scope)
	if err != nil {
		return fmt.Errorf("read break-glass replies: %w", err)
	}
	if done[comment] != "" {
		return nil
	}
	body := "@" + login + ", your break-glass comment did not count: " + why + ".\n\n" +
		"Who may take part: see the `break_glass` section of the policy; the author, committers, co-authors, pushers and bots never can.\n\n" + ReplyMarker + "\n"
	if err := c.Comment(ctx, ref, body); err != nil {
		return fmt.Errorf("reply to break-glass comment of %s: %w", login, err)
	}
	if err := s.Store.PutFact(ctx, scope, comment, "done"); err != nil {
		return fmt.Errorf("record break-glass reply: %w", err)
	}
	return nil
}

// LoadBreakGlass reads the break-glass votes stored for c's head and adds
// the standing of every voter who is not a reviewer to c.Reviewers (through
// PeopleLookup when f has it; otherwise they stay unknown and cannot
// count). Votes given after until (when not zero: a merge) are left out.
// The service and the release guard judge overrides through it.
func LoadBreakGlass(ctx context.Context, st FactReader, f any, c *Change, teams []string, until time.Time) ([]BreakGlassVote, error) {
	if st == nil {
		return nil, nil // no store (a scan given none): nobody voted that we know of
	}
	facts, err := st.Facts(ctx, FactScope(c.Ref, factBreakGlass))
	if err != nil {
		return nil, fmt.Errorf("read break-glass votes: %w", err)
	}
	prefix := c.Ref.HeadSHA + "/"
	keys := make([]string, 0, len(facts))
	for k := range facts {
		if c.Ref.HeadSHA != "" && strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	sort.Strings(keys)
	seenFacts, err := st.Facts(ctx, FactScope(c.Ref, factHeadSeen))
	if err != nil {
		return nil, fmt.Errorf("read head sightings: %w", err)
	}
	headSeen, _ := time.Parse(time.RFC3339Nano, seenFacts[c.Ref.HeadSHA]) // unreadable: zero, so no unbound vote counts
	var votes []BreakGlassVote
	var unknown []User
	seen := map[string]bool{}
	for _, k := range keys {
		var bv BreakGlassVote
		if json.Unmarshal([]byte(facts[k]), &bv) != nil || bv.HeadSHA != c.Ref.HeadSHA || !bv.Author.Known() {
			continue // unreadable: it cannot count
		}
		if !until.IsZero() && bv.At.After(until) {
			continue
		}
		bv.HeadSeenAt = headSeen
		votes = append(votes, bv)
		l := strings.ToLower(bv.Author.Login)
		if _, ok := c.Reviewers[l]; !ok && !seen[l] {
			seen[l] = true
			unknown = append(unknown, bv.Author)
		}
	}
	if len(unknown) == 0 {
		return votes, nil
	}
	pl, ok := f.(PeopleLookup)
	if !ok {
		return votes, nil
	}
	people, err := pl.People(ctx, c.Ref.Repo, unknown, teams)
	if err != nil {
		return nil, fmt.Errorf("look up the break-glass voters: %w", err)
	}
	// A copy: the adapter may share the map it returned.
	rv := make(map[string]ReviewerFacts, len(c.Reviewers)+len(people))
	for k, x := range c.Reviewers {
		rv[k] = x
	}
	for k, x := range people {
		if _, ok := rv[strings.ToLower(k)]; !ok {
			rv[strings.ToLower(k)] = x
		}
	}
	c.Reviewers = rv
	return votes, nil
}

// overrideData is the audit record of an override.
type overrideData struct {
	By       []string  `json:"by"`
	OpenedBy string    `json:"opened_by"`
	At       time.Time `json:"at"`
	Reason   string    `json:"reason"`
	HeadSHA  string    `json:"head_sha"`
	Missing  []string  `json:"missing"`
	Commits  []string  `json:"commits"`
	Title    string    `json:"title"`
}

// recordOverride does an override's effects, each once per head: the
// `override` audit record, the metric and the post-incident issue. It
// carries on past a failed effect and returns the errors for a retry.
func (s *Service) recordOverride(ctx context.Context, f Forge, c *Change, pol *policies.Policy, v Verdict) error {
	bg := v.BreakGlass
	ref := v.Ref
	scope := FactScope(ref, factOverride)
	done, err := s.Store.Facts(ctx, scope)
	if err != nil {
		return fmt.Errorf("read override effects: %w", err)
	}
	key := func(effect string) string { return ref.HeadSHA + "/" + effect }
	var errs []error
	if done[key("audit")] == "" {
		commits := make([]string, 0, len(c.Commits))
		for _, cm := range c.Commits {
			commits = append(commits, cm.SHA)
		}
		data, err := json.Marshal(overrideData{By: bg.Agreed, OpenedBy: bg.OpenedBy, At: bg.At.UTC(), Reason: bg.Reason,
			HeadSHA: ref.HeadSHA, Missing: bg.Missing, Commits: commits, Title: v.Title})
		if err != nil {
			return fmt.Errorf("encode override: %w", err)
		}
		// After a crash between the two, the record is appended again: a
		// duplicate audit record is better than none.
		if _, err := s.Store.AppendAudit(ctx, audit.Record{
			Kind: audit.KindOverride, Forge: string(ref.Forge), Repo: ref.Repo.FullName, Change: ref.Number,
			HeadSHA: ref.HeadSHA, PolicyDigest: v.PolicyDigest, Verdict: string(v.State), Data: data,
		}); err != nil {
			errs = append(errs, fmt.Errorf("audit override: %w", err))
		} else if err := s.Store.PutFact(ctx, scope, key("audit"), "done"); err != nil {
			errs = append(errs, fmt.Errorf("record override audit: %w", err))
		} else {
			s.logger().Warn("break-glass override", "change", ref.Key(), "head", ref.HeadSHA, "by", bg.Agreed, "reason", bg.Reason)
		}
	}
	if done[key("metric")] == "" {
		// Recorded first: after a crash the count may be lost, never doubled.
		if err := s.Store.PutFact(ctx, scope, key("metric"), "done"); err != nil {
			errs = append(errs, fmt.Errorf("record override metric: %w", err))
		} else if o, ok := s.Observer.(OverrideObserver); ok {
			o.Override(ref.Forge)
		}
	}
	if u := done[key("issue")]; u == "" || u == reportInFlight {
		if err := s.overrideIssue(ctx, f, c, pol, v, scope, key("issue"), u == reportInFlight); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("override of %s at %s: %w", ref.Key(), shortSHA(ref.HeadSHA), errors.Join(errs...))
	}
	return nil
}

func (s *Service) overrideIssue(ctx context.Context, f Forge, c *Change, pol *policies.Policy, v Verdict, scope, key string, retry bool) error {
	is, ok := f.(Issuer)
	if !ok {
		s.logger().Warn("forge cannot open issues; no post-incident issue for the override", "change", v.Ref.Key())
		return nil
	}
	ref := v.Ref
	marker := fmt.Sprintf("<!-- foureyes:break-glass %s %s#%d %s -->", ref.Forge, ref.Repo.FullName, ref.Number, ref.HeadSHA)
	if retry {
		u, err := is.FindIssue(ctx, ref.Repo, marker)
		if err != nil {
			return fmt.Errorf("find override issue: %w", err)
		}
		if u != "" {
			return s.Store.PutFact(ctx, scope, key, u)
		}
	}
	if err := s.Store.PutFact(ctx, scope, key, reportInFlight); err != nil {
		return fmt.Errorf("record override issue intent: %w", err)
	}
	labels := []string{}
	for _, l := range append(append([]string{}, pol.Release.Alert.Labels...), "break-glass") {
		if !containsFold(labels, l) {
			labels = append(labels, l)
		}
	}
	u, err := is.OpenIssue(ctx, ref.Repo, OverrideIssueTitle(v), OverrideIssueBody(c, v)+"\n"+marker+"\n", labels)
	if err != nil {
		return fmt.Errorf("open override issue: %w", err)
	}
	if err := s.Store.PutFact(ctx, scope, key, u); err != nil {
		return fmt.Errorf("record override issue: %w", err)
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// OverrideIssueTitle is the title of the post-incident issue.
func OverrideIssueTitle(v Verdict) string {
	return clip(fmt.Sprintf("Break-glass override of %s#%d by %s", v.Ref.Repo.FullName, v.Ref.Number, people(v.BreakGlass.Agreed, "and")), 200)
}

// OverrideIssueBody names the people, the reason, what was missing and
// every commit of the overridden head.
func OverrideIssueBody(c *Change, v Verdict) string {
	bg := v.BreakGlass
	var b strings.Builder
	change := fmt.Sprintf("%s#%d", v.Ref.Repo.FullName, v.Ref.Number)
	if c.URL != "" {
		change = "[" + change + "](" + c.URL + ")"
	}
	fmt.Fprintf(&b, "%s overrode the review of %s (%s) at head `%s` on %s.\n\n",
		people(bg.Agreed, "and"), change, esc(c.Title), v.Ref.HeadSHA, bg.At.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "**Reason** (given by @%s): %s\n\n", bg.OpenedBy, esc(orNone(bg.Reason)))
	b.WriteString("**What was missing**\n\n")
	for _, m := range bg.Missing {
		b.WriteString("- " + esc(m) + "\n")
	}
	fmt.Fprintf(&b, "\n**Author**: @%s\n\n**Commits**\n\n| commit | author | committer | message |\n|---|---|---|---|\n", c.Author.Display())
	for _, cm := range c.Commits {
		msg := cm.Message
		if i := strings.IndexAny(msg, "\r\n"); i >= 0 {
			msg = msg[:i]
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", short(cm.SHA), esc(cm.Author.Display()), esc(cm.Committer.Display()), esc(msg))
	}
	b.WriteString("\n**Post-incident review:** confirm with both people that the emergency was real, have the change reviewed after the fact " +
		"(an independent reviewer approves it, or a follow-up change reverts or reworks it), then close this issue with the outcome. " +
		"The `override` audit record holds the same facts.\n")
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "(none given)"
	}
	return s
}
