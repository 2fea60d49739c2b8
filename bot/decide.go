package bot

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/foureyes-dev/foureyes/policies"
)

// Input is everything Decide judges. PolicyErr is the error Parse returned
// for the policy file, if any: an invalid policy is a failure, never a
// reason to fall back to a laxer default.
type Input struct {
	Policy    *policies.Policy
	PolicyErr error
	Change    *Change
	// BreakGlass holds the break-glass votes the service collected from
	// comments on the change (see judgeBreakGlass); votes on other heads
	// are ignored.
	BreakGlass []BreakGlassVote
}

// maxTitle keeps the check-run title to one readable line.
const maxTitle = 100

// Decide applies the policy to the change (SPEC §6) and explains the
// outcome. It is pure: the same input always gives the same verdict, so a
// verdict can be replayed from the audit trail and tested without a forge.
func Decide(in Input) Verdict {
	c := in.Change
	if c == nil {
		return Verdict{
			State:      Failure,
			Title:      "cannot evaluate: no change was given",
			Categories: []CategoryResult{},
			Failures:   []string{"no change was given to evaluate"},
		}
	}
	v := Verdict{
		Ref:        c.Ref,
		DiffDigest: DiffDigest(c.Files),
		Categories: []CategoryResult{},
		Unverified: slices.Clone(c.Unverified),
		Notices:    slices.Clone(c.Notices),
	}

	if in.PolicyErr != nil || in.Policy == nil {
		v.State = Failure
		if in.PolicyErr == nil {
			v.Failures = []string{"no policy to apply"}
		}
		for _, d := range policies.Diagnostics(in.PolicyErr) {
			v.Failures = append(v.Failures, diagnosticLine(d))
		}
		if c.EvalError != "" {
			v.Failures = append(v.Failures, c.EvalError)
		}
		if len(v.Failures) == 0 {
			// An error that names no diagnostic still fails closed.
			msg := in.PolicyErr.Error()
			if msg == "" {
				msg = "the policy file could not be read"
			}
			v.Failures = []string{msg}
		}
		t := "invalid policy file: " + v.Failures[0]
		if in.PolicyErr == nil {
			t = "cannot evaluate: " + v.Failures[0]
		}
		if n := len(v.Failures) - 1; n > 0 {
			t += " (+" + strconv.Itoa(n) + " more)"
		}
		v.Title = clip(t, maxTitle)
		return v
	}

	p := in.Policy
	v.PolicySource, v.PolicyDigest = p.Source, p.Digest

	var rules []categoryRule
	v.Categories, rules, v.Exempt = classify(p, c.Files)
	markExcluded(v.Categories, notIndependent(p.Review, c))

	head := c.Ref.HeadSHA
	headPushers := c.HeadPushers(head)
	pusherKnown := len(headPushers) > 0 && head != ""
	// A bot that pushed the head of someone else's change did so for
	// somebody (a workflow, an "update branch" app): who is not recorded,
	// so the head's real pusher is unknown.
	var botPushers []string
	for _, p := range c.Pushes {
		// Any record of the push may carry the bot flag (a push hook does,
		// a merge request event may not): scan them all.
		if u := p.Pusher; p.HeadSHA == head && isBotUser(u) && !u.Same(c.Author) && !slices.Contains(botPushers, u.Display()) {
			botPushers = append(botPushers, u.Display())
		}
	}
	rs := gatherReviewers(c)
	judgeIndependence(p, c, rs, headPushers, v.DiffDigest)

	for i := range rs {
		r := &rs[i]
		switch r.state {
		case ChangesRequested:
			if len(r.base) > 0 {
				// An ineligible person (the author, a bot, a reader) cannot
				// veto: otherwise an author could block their own change's
				// check and anyone with read access could stall merges.
				continue
			}
			if p.Review.ChangesRequestedBlocks {
				v.Blocking = append(v.Blocking, r.name)
			} else {
				v.Notices = append(v.Notices, "changes requested by @"+r.name+
					" (not blocking: review.changes_requested_blocks is false)")
			}
		case Approved:
			judgeApproval(r, v.Categories, rules)
		}
	}
	for i := range v.Categories {
		cr := &v.Categories[i]
		cr.Missing = max(0, cr.Required-len(cr.Counted))
	}
	v.Ignored = ignored(rs, v.Categories)

	if c.EvalError == "" {
		// (With an EvalError the facts are incomplete anyway and the verdict
		// is a failure; the notice would only add noise.)
		switch {
		case !pusherKnown && c.PusherNote != "":
			v.Notices = append(v.Notices, "the pusher of head "+short(head)+" is unknown: "+c.PusherNote)
		case !pusherKnown:
			v.Notices = append(v.Notices, "the pusher of head "+short(head)+
				" is not known yet; foureyes cannot tell whether an approver pushed it, so the check stays pending until the forge reports the push")
		case len(botPushers) > 0:
			v.Notices = append(v.Notices, "head "+short(head)+" was pushed by "+strings.Join(botPushers, ", ")+
				": foureyes cannot tell who triggered it, so it cannot tell whether an approver did; a push of a new head by a person resolves it")
		}
	}

	missing := false
	for i := range v.Categories {
		if v.Categories[i].Missing > 0 {
			missing = true
			break
		}
	}
	switch {
	case c.EvalError != "":
		v.State = Failure
		v.Failures = append(v.Failures, c.EvalError)
		v.Title = clip("cannot evaluate: "+c.EvalError, maxTitle)
	case len(v.Blocking) > 0:
		v.State = Failure
		v.Title = clip("changes requested by "+people(v.Blocking, "and"), maxTitle)
	case missing:
		v.State = PendingState
		v.Title = missingTitle(v.Categories)
	case !pusherKnown && c.PusherNote != "":
		v.State = PendingState
		v.Title = clip("pusher of head "+short(head)+" unknown: "+c.PusherNote, maxTitle)
	case !pusherKnown:
		v.State = PendingState
		v.Title = "waiting to learn who pushed head " + short(head)
	case len(botPushers) > 0:
		v.State = PendingState
		v.Title = clip("pushed by "+strings.Join(botPushers, ", ")+": foureyes cannot tell who triggered it", maxTitle)
	default:
		v.State = Success
		v.Title = successTitle(v.Categories)
	}
	if len(in.BreakGlass) > 0 {
		judgeBreakGlass(&v, p, c, in.BreakGlass, headPushers, pusherKnown)
	}
	return v
}

func diagnosticLine(d policies.Diagnostic) string {
	if d.File == "" {
		// Not a positioned parse problem (e.g. the file could not be read):
		// a made-up ":1:1" would point the reader at nothing.
		return d.Message
	}
	return d.String()
}

// categoryRule is what judging needs of a reported category besides its
// result: who may approve, and how to say who may not.
type categoryRule struct {
	reviewers policies.Reviewers
	notIn     string // Rejection detail for someone outside reviewers
}

// classify sorts the files into the touched categories (policy order,
// uncategorized last) and the exempt list. Each path is classified exactly
// once (see classifier); memberships go into one flat slice so that
// thousands of files cost a handful of allocations, not several per file.
func classify(p *policies.Policy, files []File) ([]CategoryResult, []categoryRule, []string) {
	nc := len(p.Categories)
	unc := int32(nc)
	counts := make([]int, nc+1)
	member := make([]int32, 0, 2*len(files))
	ends := make([]int32, len(files))
	buf := make([]int, 0, nc)
	var exempt []string
	cl := policies.NewClassifier(p)

	for i := range files {
		f := &files[i]
		start := len(member)
		cats, ex := cl.Classify(f.Path, buf[:0])
		for _, ci := range cats {
			member = append(member, int32(ci))
		}
		allExempt := ex
		if f.PreviousPath != "" && f.PreviousPath != f.Path {
			// A rename out of deploy/ into docs/ still changes deploy/:
			// the file is exempt only when both of its paths are.
			prev, exPrev := cl.Classify(f.PreviousPath, cats[:0])
			for _, ci := range prev {
				if !slices.Contains(member[start:], int32(ci)) {
					member = append(member, int32(ci))
				}
			}
			allExempt = allExempt && exPrev
			cats = prev
		}
		buf = cats[:0]
		if allExempt {
			exempt = append(exempt, f.Path)
		} else if len(member) == start {
			member = append(member, unc)
		}
		for _, ci := range member[start:] {
			counts[ci]++
		}
		ends[i] = int32(len(member))
	}

	// One backing array for every category's file list.
	backing := make([]string, len(member))
	lists := make([][]string, nc+1)
	off := 0
	for ci, n := range counts {
		lists[ci] = backing[off : off : off+n]
		off += n
	}
	start := int32(0)
	for i := range files {
		for _, ci := range member[start:ends[i]] {
			lists[ci] = append(lists[ci], files[i].Path)
		}
		start = ends[i]
	}

	touched := 0
	for _, n := range counts {
		if n > 0 {
			touched++
		}
	}
	results := make([]CategoryResult, 0, touched+1)
	rules := make([]categoryRule, 0, touched+1)
	for ci := range p.Categories {
		if counts[ci] == 0 {
			continue
		}
		cat := &p.Categories[ci]
		results = append(results, CategoryResult{
			Name:     cat.Name,
			Files:    lists[ci],
			Required: max(0, cat.Approvals),
			Counted:  []string{},
			Teams:    cat.Reviewers.Teams,
			Users:    cat.Reviewers.Users,
		})
		rule := categoryRule{reviewers: cat.Reviewers}
		if !cat.Reviewers.Empty() {
			rule.notIn = "not in " + who(cat.Reviewers.Teams, cat.Reviewers.Users)
		}
		rules = append(rules, rule)
	}
	// Every change is reviewed: files in no category, and a change with no
	// files at all (nothing to classify is no reason to skip review), need
	// one independent approval.
	if counts[unc] > 0 || len(files) == 0 {
		fs := lists[unc]
		if fs == nil {
			fs = []string{}
		}
		results = append(results, CategoryResult{
			Name:     policies.UncategorizedName,
			Files:    fs,
			Required: 1,
			Counted:  []string{},
		})
		rules = append(rules, categoryRule{})
	}
	return results, rules, exempt
}

// reviewer is one person's standing on the change, judged once: only team
// membership varies per category, so everything else is computed here.
type reviewer struct {
	name   string // as displayed
	key    string // lower-case login; "" for an identity without one
	user   User
	state  ReviewState // of the latest review that counts as a decision
	latest *Review
	// earlier holds earlier approvals that a later non-approval replaced.
	earlier []*Review
	facts   ReviewerFacts

	base       []Reason // independence, bot and permission reasons
	baseDetail []string
	stale      bool
	staleText  string

	counted bool     // counted in at least one category
	notIn   []string // details of the categories whose reviewers exclude them
}

type reviewEntry struct {
	key   string
	state ReviewState
	r     *Review
}

// gatherReviewers keeps each reviewer's latest decision (approve, request
// changes or a dismissal), ordered by when that decision was given.
// Comments and drafts are not decisions: "LGTM" left as a comment after an
// approval must not withdraw it.
func gatherReviewers(c *Change) []reviewer {
	es := make([]reviewEntry, 0, len(c.Reviews))
	for i := range c.Reviews {
		r := &c.Reviews[i]
		st := NormalizeReviewState(string(r.State))
		switch st {
		case Approved, ChangesRequested, Dismissed:
			es = append(es, reviewEntry{key: strings.ToLower(r.Reviewer.Login), state: st, r: r})
		}
	}
	slices.SortStableFunc(es, func(a, b reviewEntry) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return compareReviews(a.r, b.r)
	})

	rs := make([]reviewer, 0, len(es))
	for i := 0; i < len(es); {
		j := i + 1
		// Identities without a login are never the same person, so each
		// of their reviews stands alone.
		for es[i].key != "" && j < len(es) && es[j].key == es[i].key {
			j++
		}
		last := es[j-1]
		r := reviewer{
			name:   last.r.Reviewer.Display(),
			key:    last.key,
			user:   last.r.Reviewer,
			state:  last.state,
			latest: last.r,
		}
		if r.name == "" {
			r.name = "(unknown)"
		}
		if last.state != Approved {
			for _, e := range es[i : j-1] {
				if e.state == Approved {
					r.earlier = append(r.earlier, e.r)
				}
			}
		}
		if r.key != "" {
			r.facts = c.Facts(r.key)
		}
		rs = append(rs, r)
		i = j
	}
	slices.SortStableFunc(rs, func(a, b reviewer) int { return compareReviews(a.latest, b.latest) })
	return rs
}

func compareReviews(a, b *Review) int { return compareAtID(a.At, b.At, a.ID, b.ID) }

// compareAtID orders what people wrote on a forge (reviews, comments) by
// when, then by the forge's ID, which grows with time within one second.
func compareAtID(a, b time.Time, aID, bID int64) int {
	if c := a.Compare(b); c != 0 {
		return c
	}
	return cmp.Compare(aID, bID)
}

// Ways of taking part in a change, indexes into involvement.
const (
	viaAuthored = iota
	viaCommitted
	viaCoAuthored
	viaPushed // an earlier head
)

// involvement holds, per way of taking part, the first commit (or head)
// through which a reviewer did, for the Rejection detail.
type involvement [4]string

// judgeIndependence fills each reviewer's category-independent reasons:
// independence (SPEC §6), bot, permission and staleness.
func judgeIndependence(p *policies.Policy, c *Change, rs []reviewer, headPushers []User, digest string) {
	// Walk commits and pushes once, looking each identity up among the
	// reviewers, rather than walking them once per reviewer.
	idx := make(map[string]int, len(rs))
	for i := range rs {
		if rs[i].key != "" {
			idx[rs[i].key] = i
		}
	}
	inv := make([]involvement, len(rs))
	note := func(u User, sha string, via int) {
		if !u.Known() {
			return
		}
		if i, ok := idx[strings.ToLower(u.Login)]; ok && inv[i][via] == "" {
			inv[i][via] = sha
		}
	}
	if len(idx) > 0 {
		for i := range c.Commits {
			cm := &c.Commits[i]
			note(cm.Author, cm.SHA, viaAuthored)
			note(cm.Committer, cm.SHA, viaCommitted)
			for _, u := range cm.CoAuthors {
				note(u, cm.SHA, viaCoAuthored)
			}
		}
		for _, ps := range c.Pushes {
			if ps.HeadSHA != c.Ref.HeadSHA {
				note(ps.Pusher, ps.HeadSHA, viaPushed)
			}
		}
	}

	rv := p.Review
	// PermissionNone is what an unknown reviewer has; a policy that leaves
	// min_permission at its zero value must not let such a reviewer count.
	minPerm := max(rv.MinPermission, policies.PermissionRead)
	head := c.Ref.HeadSHA
	for i := range rs {
		r := &rs[i]
		x := &inv[i]
		add := func(reason Reason, detail string) {
			if !slices.Contains(r.base, reason) {
				r.base = append(r.base, reason)
			}
			r.baseDetail = append(r.baseDetail, detail)
		}
		if !rv.AllowAuthor && r.user.Same(c.Author) {
			add(ReasonAuthor, "author of the change")
		}
		if !rv.AllowCommitters {
			if x[viaAuthored] != "" {
				add(ReasonCommitter, "authored "+short(x[viaAuthored]))
			}
			if x[viaCommitted] != "" && x[viaCommitted] != x[viaAuthored] {
				add(ReasonCommitter, "committed "+short(x[viaCommitted]))
			}
			if x[viaPushed] != "" {
				add(ReasonCommitter, "pushed "+short(x[viaPushed]))
			}
			if x[viaCoAuthored] != "" {
				add(ReasonCoAuthor, "co-authored "+short(x[viaCoAuthored]))
			}
		}
		if !rv.AllowLastPusher && containsUser(headPushers, r.user) {
			add(ReasonLastPusher, "pushed head "+short(head))
		}
		if !rv.CountBots && (isBotUser(r.user) || r.facts.Bot) {
			add(ReasonBot, "bot account")
		}
		if r.facts.Permission < minPerm {
			add(ReasonPermission, "permission "+r.facts.Permission.String()+", needs "+minPerm.String())
		}
		r.stale, r.staleText = staleness(rv, r.latest, head, digest, c.DiffDigests)
	}
}

// staleness applies the diff-digest rule: an approval counts while the
// diff it was given on equals the current one. The diff it was given on is
// the digest recorded when foureyes first saw the review (so a retarget
// that keeps the head but grows the diff makes it stale); for a review
// without one, that of the head it approved, recorded when that head was
// evaluated (a merge or rebase of the base branch keeps it). An approval
// whose diff is unknown, or differs, is stale.
func staleness(rv policies.Review, r *Review, head, digest string, earlier map[string]string) (bool, string) {
	if !rv.DismissStale {
		return false, ""
	}
	approved := r.CommitSHA
	if r.Digest != "" && approved != "" && (approved == head || rv.IgnoreBaseUpdates) {
		switch {
		case digest == "":
			return true, "approved " + short(approved) + "; the current diff is not fully known, so it cannot be the one approved"
		case r.Digest != digest && approved == head:
			return true, "approved " + short(approved) + " with a different diff (the base branch changed what the change shows)"
		case r.Digest != digest:
			return true, "approved " + short(approved) + ", head is now " + short(head) + " with a different diff"
		}
		return false, ""
	}
	if approved != "" && approved == head {
		return false, ""
	}
	if approved == "" {
		return true, "approved an unknown commit, head is now " + short(head)
	}
	what := "approved " + short(approved) + ", head is now " + short(head)
	if !rv.IgnoreBaseUpdates {
		return true, what
	}
	prev, ok := earlier[approved]
	switch {
	case !ok || prev == "":
		return true, what + "; the diff " + short(approved) + " had is not known"
	case digest == "":
		return true, what + "; the current diff is not fully known"
	case prev != digest:
		return true, what + "; the diff has changed since"
	}
	return false, ""
}

// judgeApproval counts the reviewer's latest approval for every category it
// qualifies for and records why it does not for the others.
func judgeApproval(r *reviewer, cats []CategoryResult, rules []categoryRule) {
	// Shared by every category without a team restriction on this person;
	// the full slice expression makes any later append copy.
	common := r.base[:len(r.base):len(r.base)]
	commonDetail := r.baseDetail
	if r.stale {
		common = append(common, ReasonStale)
		commonDetail = append(commonDetail[:len(commonDetail):len(commonDetail)], r.staleText)
	}
	var commonRej *Rejection
	for ci := range cats {
		rule := &rules[ci]
		outside := !rule.reviewers.Empty() && !r.inReviewers(rule.reviewers)
		if !outside && len(common) == 0 {
			cats[ci].Counted = append(cats[ci].Counted, r.name)
			r.counted = true
			continue
		}
		if !outside {
			if commonRej == nil {
				commonRej = &Rejection{
					Reviewer:  r.name,
					ReviewID:  r.latest.ID,
					CommitSHA: r.latest.CommitSHA,
					Reasons:   common,
					Detail:    strings.Join(commonDetail, "; "),
				}
			}
			cats[ci].Rejected = append(cats[ci].Rejected, *commonRej)
			continue
		}
		if !slices.Contains(r.notIn, rule.notIn) {
			r.notIn = append(r.notIn, rule.notIn)
		}
		reasons := make([]Reason, 0, len(r.base)+2)
		reasons = append(append(reasons, r.base...), ReasonNotInTeam)
		details := append(r.baseDetail[:len(r.baseDetail):len(r.baseDetail)], rule.notIn)
		if r.stale {
			reasons = append(reasons, ReasonStale)
			details = append(details, r.staleText)
		}
		cats[ci].Rejected = append(cats[ci].Rejected, Rejection{
			Reviewer:  r.name,
			ReviewID:  r.latest.ID,
			CommitSHA: r.latest.CommitSHA,
			Reasons:   reasons,
			Detail:    strings.Join(details, "; "),
		})
	}
}

func (r *reviewer) inReviewers(rv policies.Reviewers) bool {
	if r.key != "" {
		for _, u := range rv.Users {
			if strings.EqualFold(u, r.key) {
				return true
			}
		}
	}
	for _, t := range rv.Teams {
		if r.facts.InTeam(t) {
			return true
		}
	}
	return false
}

// ignored lists the approvals that counted nowhere: dismissed and
// superseded reviews, and latest approvals rejected by every category (with
// the union of their reasons). The dismissed and superseded ones are also
// recorded per category so each category's audit is complete.
func ignored(rs []reviewer, cats []CategoryResult) []Rejection {
	if len(cats) == 0 {
		// Only exempt files: nothing needed an approval, so none was in vain.
		return nil
	}
	var out []Rejection
	addEverywhere := func(rej Rejection) {
		out = append(out, rej)
		for ci := range cats {
			cats[ci].Rejected = append(cats[ci].Rejected, rej)
		}
	}
	for i := range rs {
		r := &rs[i]
		for _, e := range r.earlier {
			addEverywhere(Rejection{
				Reviewer:  r.name,
				ReviewID:  e.ID,
				CommitSHA: e.CommitSHA,
				Reasons:   []Reason{ReasonSuperseded},
				Detail:    "their latest review: " + stateWords(r.state),
			})
		}
		switch r.state {
		case Dismissed:
			addEverywhere(Rejection{
				Reviewer:  r.name,
				ReviewID:  r.latest.ID,
				CommitSHA: r.latest.CommitSHA,
				Reasons:   []Reason{ReasonDismissed},
				Detail:    "review dismissed",
			})
		case Approved:
			if r.counted {
				continue
			}
			reasons := slices.Clone(r.base)
			details := slices.Clone(r.baseDetail)
			if len(r.notIn) > 0 {
				reasons = append(reasons, ReasonNotInTeam)
				details = append(details, r.notIn...)
			}
			if r.stale {
				reasons = append(reasons, ReasonStale)
				details = append(details, r.staleText)
			}
			out = append(out, Rejection{
				Reviewer:  r.name,
				ReviewID:  r.latest.ID,
				CommitSHA: r.latest.CommitSHA,
				Reasons:   reasons,
				Detail:    strings.Join(details, "; "),
			})
		}
	}
	return out
}

func stateWords(s ReviewState) string {
	switch s {
	case ChangesRequested:
		return "changes requested"
	case Dismissed:
		return "dismissed"
	}
	return string(s)
}

// isBotUser reports whether an account is a bot by its flag or by GitHub's
// "[bot]" login suffix.
func isBotUser(u User) bool { return u.Bot || strings.HasSuffix(strings.ToLower(u.Login), "[bot]") }

// short abbreviates a SHA the way git and the forges display it.
func short(sha string) string {
	if sha == "" {
		return "(unknown)"
	}
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// who names the allowed reviewers: "@acme/sre or @alice".
func who(teams, users []string) string {
	names := make([]string, 0, len(teams)+len(users))
	names = append(names, teams...)
	names = append(names, users...)
	return people(names, "or")
}

// people lists handles as "@a", "@a and @b", "@a, @b and @c".
func people(names []string, conj string) string {
	var b strings.Builder
	for i, n := range names {
		switch {
		case i == 0:
		case i == len(names)-1:
			b.WriteString(" " + conj + " ")
		default:
			b.WriteString(", ")
		}
		b.WriteString("@" + n)
	}
	return b.String()
}

// plural counts the last word of phrase: "1 more approval", "2 more approvals".
func plural(n int, phrase string) string {
	s := strconv.Itoa(n) + " " + phrase
	if n != 1 {
		s += "s"
	}
	return s
}

func missingTitle(cats []CategoryResult) string {
	var miss []*CategoryResult
	for i := range cats {
		if cats[i].Missing > 0 {
			miss = append(miss, &cats[i])
		}
	}
	if len(miss) == 1 {
		m := miss[0]
		if !m.hasApprovers() {
			return clip(m.Name+" needs "+plural(m.Missing, "more independent approval"), maxTitle)
		}
		return clip(m.Name+" needs "+plural(m.Missing, "more approval")+" from "+m.approvers(), maxTitle)
	}
	t := strconv.Itoa(len(miss)) + " categories need approvals: "
	for i, m := range miss {
		part := m.Name + " (" + strconv.Itoa(m.Missing) + " more"
		if m.hasApprovers() {
			part += " from " + m.approvers()
		}
		part += ")"
		if i > 0 {
			part = ", " + part
		}
		if len(t)+len(part) > maxTitle {
			// Naming fewer categories beats cutting one mid-word; the
			// summary lists them all.
			if i == 0 {
				return clip(t+part, maxTitle)
			}
			return t + ", …"
		}
		t += part
	}
	return t
}

func successTitle(cats []CategoryResult) string {
	switch len(cats) {
	case 0:
		return "No review needed: only exempt files changed"
	case 1:
		return clip(cats[0].Name+" approved", maxTitle)
	}
	return "All " + strconv.Itoa(len(cats)) + " categories approved"
}

// clip shortens s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
