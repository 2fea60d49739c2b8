package bot

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/foureyes-dev/foureyes/policies"
)

// Break glass (SPEC §5, issue 13): an emergency override of missing
// approvals that still needs two people. The votes are facts the service
// collects from change comments; judging them is pure and lives here,
// beside Decide, with the same independence rules as approvals.

// BreakGlassCommand is a "/foureyes break-glass ..." comment.
type BreakGlassCommand struct {
	// Confirm: "/foureyes break-glass confirm" (joins an open override);
	// otherwise the comment opens one with Reason.
	Confirm bool   `json:"confirm,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// CommentID is the forge's ID of the comment (GitHub issue comment,
	// GitLab note): a redelivered comment is recognised by it.
	CommentID int64     `json:"comment_id,omitempty"`
	Author    User      `json:"author"`
	At        time.Time `json:"at,omitempty"`
	// URL links the comment (shown in the post-incident issue).
	URL string `json:"url,omitempty"`
}

// timestampPrecision is how coarse the forges' comment timestamps are
// (whole seconds): a comment stamped in the second a head was first seen
// may have been written after it.
const timestampPrecision = time.Second

// maxReason bounds the stored reason: it goes into a one-line title.
const maxReason = 200

// commandPrefix starts a break-glass command line.
const commandPrefix = "/foureyes break-glass"

// ParseBreakGlass finds a break-glass command in a comment body: a line
// that starts with "/foureyes break-glass" (quoted lines, "> ...", do not
// count: quoting someone's command is not issuing one). ok is false when
// the comment holds none.
func ParseBreakGlass(body string) (cmd BreakGlassCommand, ok bool) {
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		rest, found := strings.CutPrefix(line, commandPrefix)
		if !found || (rest != "" && !unicode.IsSpace(rune(rest[0]))) {
			continue
		}
		rest = strings.Join(strings.Fields(rest), " ")
		if strings.EqualFold(rest, "confirm") {
			return BreakGlassCommand{Confirm: true}, true
		}
		return BreakGlassCommand{Reason: clip(rest, maxReason)}, true
	}
	return BreakGlassCommand{}, false
}

// BreakGlassVote is one person's break-glass comment on one head, as the
// service stored it. Only a person's first vote on a head is kept.
type BreakGlassVote struct {
	HeadSHA string `json:"head_sha"`
	// HeadFromEvent: the forge named the head the comment was written on
	// (GitLab's note hook); otherwise the vote was bound to the head the
	// service read when it processed the comment (GitHub).
	HeadFromEvent bool `json:"head_from_event,omitempty"`
	// HeadSeenAt is when foureyes first learned of HeadSHA (filled in by
	// LoadBreakGlass, not stored with the vote).
	HeadSeenAt time.Time `json:"-"`
	BreakGlassCommand
}

// Reasons a break-glass vote does not count, besides the independence,
// bot, permission and not-in-team reasons of approvals.
const (
	ReasonNoBreakGlass Reason = "no-break-glass" // the policy has no break_glass section
	ReasonNoOverride   Reason = "no-override"    // confirmed while no override was open
	ReasonNoReason     Reason = "no-reason"      // opened without the reason the policy requires
	ReasonEarly        Reason = "early"          // written before foureyes learned of the head it was bound to
)

// BreakGlassResult is the judgement of the break-glass votes on a head.
type BreakGlassResult struct {
	Required int `json:"required"`
	// OpenedBy opened the override with Reason; "" while none is open.
	OpenedBy string `json:"opened_by,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Agreed are the eligible people who agreed, in comment order.
	Agreed []string `json:"agreed"`
	// Rejected are the votes that did not count, with why.
	Rejected []Rejection `json:"rejected,omitempty"`
	// Applied: the override is what made the verdict a success.
	Applied bool `json:"applied,omitempty"`
	// At is when the required-th person agreed.
	At time.Time `json:"at,omitzero"`
	// Missing says what the override stood in for (Applied only).
	Missing []string `json:"missing,omitempty"`
	// NotNeeded: enough people agreed but the approvals are in anyway.
	NotNeeded bool `json:"not_needed,omitempty"`
	// Why says, when enough people agreed but the override was not
	// applied, what prevents it.
	Why string `json:"why,omitempty"`
}

// Counted reports whether login's vote counted.
func (r *BreakGlassResult) Counted(login string) bool {
	return slices.ContainsFunc(r.Agreed, func(a string) bool { return strings.EqualFold(a, login) })
}

// RejectionOf returns why login's vote did not count.
func (r *BreakGlassResult) RejectionOf(login string) (Rejection, bool) {
	for _, rj := range r.Rejected {
		if strings.EqualFold(rj.Reviewer, login) {
			return rj, true
		}
	}
	return Rejection{}, false
}

// strictReview is the independence rule of break glass: whatever the policy
// allows for approvals, nobody who took part in the change, and no bot, may
// hold one of the keys.
func strictReview(rv policies.Review) policies.Review {
	rv.AllowAuthor, rv.AllowCommitters, rv.AllowLastPusher, rv.CountBots = false, false, false, false
	return rv
}

// judgeBreakGlass judges the votes on the head and, when the required
// number of eligible people agreed and the verdict is pending only for
// missing approvals, turns it into a success titled as an override.
// It never covers anything else: a failure, a change request, or a head
// whose pusher is unknown (independence cannot be judged) stay as they are.
func judgeBreakGlass(v *Verdict, p *policies.Policy, c *Change, votes []BreakGlassVote, headPushers []User, pusherKnown bool) {
	head := c.Ref.HeadSHA
	var mine []BreakGlassVote
	for _, bv := range votes {
		if bv.HeadSHA == head && head != "" {
			mine = append(mine, bv)
		}
	}
	if len(mine) == 0 {
		return
	}
	slices.SortStableFunc(mine, func(a, b BreakGlassVote) int { return compareAtID(a.At, b.At, a.CommentID, b.CommentID) })
	res := &BreakGlassResult{Agreed: []string{}}
	v.BreakGlass = res
	bg := p.BreakGlass
	if bg == nil {
		for _, bv := range mine {
			res.Rejected = append(res.Rejected, Rejection{Reviewer: bv.Author.Display(), ReviewID: bv.CommentID, CommitSHA: head,
				Reasons: []Reason{ReasonNoBreakGlass}, Detail: "this repository's policy has no break_glass section"})
		}
		return
	}
	// Parse refuses fewer than two; a policy built any other way must not
	// make a one-person override either.
	res.Required = max(bg.Required, 2)

	// The voters are judged exactly like reviewers (judgeIndependence),
	// as if each had approved the current head, under the strict rules.
	rs := make([]reviewer, 0, len(mine))
	seen := map[string]bool{}
	for i := range mine {
		bv := &mine[i]
		key := strings.ToLower(bv.Author.Login)
		if key == "" || seen[key] {
			continue
		}
		seen[key] = true
		rs = append(rs, reviewer{
			name: bv.Author.Display(), key: key, user: bv.Author,
			latest: &Review{ID: bv.CommentID, Reviewer: bv.Author, State: Approved, CommitSHA: head, At: bv.At},
			facts:  c.Facts(key),
		})
	}
	strict := *p
	strict.Review = strictReview(p.Review)
	judgeIndependence(&strict, c, rs, headPushers, v.DiffDigest)
	notIn := "not in break_glass.approvers (" + who(bg.Approvers.Teams, bg.Approvers.Users) + ")"

	byKey := map[string]*reviewer{}
	for i := range rs {
		byKey[rs[i].key] = &rs[i]
	}
	// A person may comment more than once: their first vote that counts
	// is theirs; until one does, the latest reason it did not is shown.
	rejectedAt := map[string]int{}
	for i := range mine {
		bv := &mine[i]
		r := byKey[strings.ToLower(bv.Author.Login)]
		if r == nil || r.counted {
			continue
		}
		reasons := slices.Clone(r.base)
		details := slices.Clone(r.baseDetail)
		if !r.inReviewers(bg.Approvers) {
			reasons = append(reasons, ReasonNotInTeam)
			details = append(details, notIn)
		}
		if len(reasons) == 0 {
			switch {
			case !bv.HeadFromEvent && (bv.HeadSeenAt.IsZero() || bv.At.Add(timestampPrecision).Before(bv.HeadSeenAt)):
				// The comment names no head and was written before this
				// one was pushed (or when is unknown): its author may have
				// meant an earlier head. A push racing a comment must not
				// lend it to code its author never saw.
				reasons, details = []Reason{ReasonEarly}, []string{"written before head " + short(head) + " was pushed; comment again to agree on it"}
			case res.OpenedBy == "" && bv.Confirm:
				reasons, details = []Reason{ReasonNoOverride}, []string{"confirmed while no override was open on head " + short(head)}
			case res.OpenedBy == "" && bg.Reason && bv.Reason == "":
				reasons, details = []Reason{ReasonNoReason}, []string{"the policy requires a reason: `/foureyes break-glass <reason>`"}
			}
		}
		if len(reasons) > 0 {
			rj := Rejection{Reviewer: r.name, ReviewID: bv.CommentID, CommitSHA: head, Reasons: reasons, Detail: strings.Join(details, "; ")}
			if at, ok := rejectedAt[r.key]; ok {
				res.Rejected[at] = rj
			} else {
				rejectedAt[r.key] = len(res.Rejected)
				res.Rejected = append(res.Rejected, rj)
			}
			continue
		}
		if at, ok := rejectedAt[r.key]; ok {
			res.Rejected = slices.Delete(res.Rejected, at, at+1)
			delete(rejectedAt, r.key)
			for k, x := range rejectedAt {
				if x > at {
					rejectedAt[k] = x - 1
				}
			}
		}
		r.counted = true
		if res.OpenedBy == "" {
			res.OpenedBy, res.Reason = r.name, bv.Reason
		}
		res.Agreed = append(res.Agreed, r.name)
		if len(res.Agreed) == res.Required {
			res.At = bv.At
		}
	}
	if len(res.Agreed) < res.Required {
		return
	}
	switch {
	case v.State == Success:
		res.NotNeeded = true
	case v.State == Failure:
		res.Why = "the check fails for reasons an override does not cover: " + v.Title
	case len(v.Blocking) > 0:
		res.Why = "changes were requested by " + people(v.Blocking, "and")
	case !pusherKnown:
		res.Why = "the pusher of head " + short(c.Ref.HeadSHA) + " is not known yet, so nobody's independence can be judged"
	case !anyMissing(v.Categories):
		// Pending for a reason that is not a missing approval: nothing an
		// override stands in for.
		res.Why = v.Title
	default:
		for _, cr := range v.Categories {
			if cr.Missing > 0 {
				m := cr.Name + ": " + plural(cr.Missing, "more approval") + " of " + strconv.Itoa(cr.Required)
				if len(cr.Teams)+len(cr.Users) > 0 {
					m += " from " + who(cr.Teams, cr.Users)
				}
				res.Missing = append(res.Missing, m)
			}
		}
		res.Applied = true
		v.State = Success
		t := "break-glass: " + people(res.Agreed, "and") + " overrode review"
		if res.Reason != "" {
			t += " — " + res.Reason
		}
		v.Title = clip(t, maxTitle)
	}
}

func anyMissing(cats []CategoryResult) bool {
	return slices.ContainsFunc(cats, func(c CategoryResult) bool { return c.Missing > 0 })
}

// writeBreakGlass renders the break-glass section of the summary (quiet:
// see MarkdownQuiet).
func writeBreakGlass(b *strings.Builder, v Verdict, quiet bool) {
	bg := v.BreakGlass
	if bg == nil {
		return
	}
	text := func(s string) string { return mdText(s, quiet) }
	b.WriteString("#### Break glass\n\n")
	switch {
	case bg.Applied:
		b.WriteString("**Review was overridden** on head `" + short(v.Ref.HeadSHA) + "` by " + handles(bg.Agreed, quiet))
		if bg.Reason != "" {
			b.WriteString(" — " + text(bg.Reason))
		}
		b.WriteString(". A new push ends the override. What was missing:\n\n")
		for _, m := range bg.Missing {
			b.WriteString("- " + text(m) + "\n")
		}
		b.WriteString("\n")
	case bg.NotNeeded:
		b.WriteString(handles(bg.Agreed, quiet) + " agreed to break the glass, but the approvals are in: no override was needed.\n\n")
	case bg.Why != "" && len(bg.Agreed) >= bg.Required:
		b.WriteString(handles(bg.Agreed, quiet) + " agreed, but the override does not apply: " + text(bg.Why) + ".\n\n")
	case bg.OpenedBy != "":
		b.WriteString("Override opened by " + text("@"+bg.OpenedBy))
		if bg.Reason != "" {
			b.WriteString(" — " + text(bg.Reason))
		}
		b.WriteString(": " + strconv.Itoa(len(bg.Agreed)) + " of " + strconv.Itoa(bg.Required) +
			" agreed (" + handles(bg.Agreed, quiet) + "). Another eligible approver confirms with `/foureyes break-glass confirm`.\n\n")
	default:
		b.WriteString("No override is open on this head.\n\n")
	}
	if len(bg.Rejected) > 0 {
		b.WriteString("| Did not count | Reasons | Detail |\n|---|---|---|\n")
		for _, r := range bg.Rejected {
			rs := make([]string, len(r.Reasons))
			for i, x := range r.Reasons {
				rs[i] = string(x)
			}
			b.WriteString("| " + text("@"+r.Reviewer) + " | " + text(strings.Join(rs, ", ")) + " | " + text(r.Detail) + " |\n")
		}
		b.WriteString("\n")
	}
}

// writeBreakGlassText is the plain-text counterpart of writeBreakGlass.
func writeBreakGlassText(b *strings.Builder, v Verdict) {
	bg := v.BreakGlass
	if bg == nil {
		return
	}
	line := "break glass: " + strconv.Itoa(len(bg.Agreed)) + " of " + strconv.Itoa(bg.Required) + " agreed"
	if len(bg.Agreed) > 0 {
		line += " (" + people(bg.Agreed, "and") + ")"
	}
	switch {
	case bg.Applied:
		line += ", overrode on head " + short(v.Ref.HeadSHA) + "; missing: " + strings.Join(bg.Missing, "; ")
	case bg.NotNeeded:
		line += ", not needed: the approvals are in"
	case bg.Why != "":
		line += ", not applied: " + bg.Why
	}
	b.WriteString(clean(line) + "\n")
	for _, r := range bg.Rejected {
		b.WriteString("  " + clean("did not count: @"+r.Reviewer+" — "+r.Detail) + "\n")
	}
}

// verdictWord is the summary's first word: an override is a success but
// no approval, and must not be called one.
func verdictWord(v Verdict) string {
	if v.State == Success && v.BreakGlass != nil && v.BreakGlass.Applied {
		return "Overridden"
	}
	return stateWord(v.State)
}
