package bot

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/policies"
)

// bgPolicy is testPolicy with break glass by carol, dave, bob, dev1,
// pusher, robo, reader and erin as users: membership alone must never let
// a non-independent person hold a key.
func bgPolicy() *policies.Policy {
	p := testPolicy()
	p.BreakGlass = &policies.BreakGlass{
		Approvers: policies.Reviewers{Teams: []string{"acme/sre"}, Users: []string{"bob", "dev1", "pusher", "robo", "reader", "author", "ci[bot]"}},
		Required:  2, Reason: true,
	}
	return p
}

var bgT0 = time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)

func vote(login string, n int, confirm bool, reason string) BreakGlassVote {
	return BreakGlassVote{HeadSHA: headSHA, HeadSeenAt: bgT0, BreakGlassCommand: BreakGlassCommand{
		Author: User{Login: login}, CommentID: int64(100 + n), At: bgT0.Add(time.Duration(n) * time.Minute),
		Confirm: confirm, Reason: reason,
	}}
}

func TestParseBreakGlass(t *testing.T) {
	cases := []struct {
		body    string
		ok      bool
		confirm bool
		reason  string
	}{
		{"/foureyes break-glass prod is down, INC-42", true, false, "prod is down, INC-42"},
		{"Context first.\n\n  /foureyes break-glass   payments   outage  \nthanks", true, false, "payments outage"},
		{"/foureyes break-glass confirm", true, true, ""},
		{"/foureyes break-glass CONFIRM\r\n", true, true, ""},
		{"/foureyes break-glass", true, false, ""},
		{"> /foureyes break-glass quoted, not issued", false, false, ""},
		{"/foureyes break-glassy", false, false, ""},
		{"please run /foureyes break-glass now", false, false, ""},
		{"LGTM", false, false, ""},
	}
	for _, c := range cases {
		cmd, ok := ParseBreakGlass(c.body)
		if ok != c.ok || cmd.Confirm != c.confirm || cmd.Reason != c.reason {
			t.Errorf("ParseBreakGlass(%q) = %+v, %v; want confirm=%v reason=%q ok=%v", c.body, cmd, ok, c.confirm, c.reason, c.ok)
		}
	}
	long, _ := ParseBreakGlass("/foureyes break-glass " + strings.Repeat("x", 500))
	if len(long.Reason) > maxReason {
		t.Errorf("reason of %d bytes kept", len(long.Reason))
	}
}

func decideBG(p *policies.Policy, c *Change, votes ...BreakGlassVote) Verdict {
	return Decide(Input{Policy: p, Change: c, BreakGlass: votes})
}

func TestBreakGlassOneApproverAloneDoesNothing(t *testing.T) {
	v := decideBG(bgPolicy(), testChange(), vote("carol", 1, false, "prod down"))
	if v.State != PendingState || v.BreakGlass == nil || v.BreakGlass.Applied {
		t.Fatalf("state %s, break glass %+v; want pending, not applied", v.State, v.BreakGlass)
	}
	if v.BreakGlass.OpenedBy != "carol" || !slices.Equal(v.BreakGlass.Agreed, []string{"carol"}) {
		t.Errorf("break glass %+v", v.BreakGlass)
	}
	if md := Markdown(v); !strings.Contains(md, "1 of 2 agreed") {
		t.Errorf("summary does not say 1 of 2:\n%s", md)
	}
}

func TestBreakGlassTwoEligibleSucceed(t *testing.T) {
	v := decideBG(bgPolicy(), testChange(), vote("carol", 1, false, "prod down"), vote("dave", 2, true, ""))
	if v.State != Success || !v.BreakGlass.Applied {
		t.Fatalf("state %s %q, %+v; want an applied override", v.State, v.Title, v.BreakGlass)
	}
	if want := "break-glass: @carol and @dave overrode review — prod down"; v.Title != want {
		t.Errorf("title %q, want %q", v.Title, want)
	}
	if !v.BreakGlass.At.Equal(bgT0.Add(2*time.Minute)) || len(v.BreakGlass.Missing) != 1 || !strings.Contains(v.BreakGlass.Missing[0], "code: 1 more approval of 1") {
		t.Errorf("at %v missing %q", v.BreakGlass.At, v.BreakGlass.Missing)
	}
	if md := Markdown(v); !strings.HasPrefix(md, "**Overridden** — ") || !strings.Contains(md, "Review was overridden") || !strings.Contains(md, "code: 1 more approval of 1") {
		t.Errorf("summary:\n%s", md)
	}
}

// The attack: people who took part in the change, a bot, a reader or
// someone outside the approvers try to make up the second key.
func TestBreakGlassIneligibleCannotTakePart(t *testing.T) {
	cases := []struct {
		login  string
		reason Reason
	}{
		{"author", ReasonAuthor},
		{"dev1", ReasonCommitter},
		{"cmtr", ReasonCommitter},
		{"pair", ReasonCoAuthor},
		{"pusher", ReasonLastPusher},
		{"oldpusher", ReasonCommitter},
		{"robo", ReasonBot},
		{"ci[bot]", ReasonBot},
		{"reader", ReasonPermission},
		{"erin", ReasonNotInTeam},
		{"stranger", ReasonPermission},
	}
	for _, c := range cases {
		t.Run(c.login, func(t *testing.T) {
			for _, first := range []bool{true, false} {
				var votes []BreakGlassVote
				if first {
					votes = []BreakGlassVote{vote(c.login, 1, false, "me first"), vote("carol", 2, true, "")}
				} else {
					votes = []BreakGlassVote{vote("carol", 1, false, "prod down"), vote(c.login, 2, true, "")}
				}
				v := decideBG(bgPolicy(), testChange(), votes...)
				if v.State == Success || v.BreakGlass.Applied {
					t.Fatalf("first=%v: %s counted: %q", first, c.login, v.Title)
				}
				rj, ok := v.BreakGlass.RejectionOf(c.login)
				if !ok || !slices.Contains(rj.Reasons, c.reason) {
					t.Errorf("first=%v: rejection of %s = %+v, want reason %s", first, c.login, rj, c.reason)
				}
			}
		})
	}
}

// A policy that lets authors and committers approve does not let them
// break the glass: two keys means two independent people.
func TestBreakGlassIsStrictWhateverTheReviewRules(t *testing.T) {
	p := bgPolicy()
	p.Review.AllowAuthor, p.Review.AllowCommitters, p.Review.AllowLastPusher, p.Review.CountBots = true, true, true, true
	v := decideBG(p, testChange(), vote("carol", 1, false, "x"), vote("dev1", 2, true, ""))
	if v.BreakGlass.Applied {
		t.Fatalf("a committer held a key under a lax policy: %q", v.Title)
	}
}

func TestBreakGlassNeverOnePerson(t *testing.T) {
	p := bgPolicy()
	p.BreakGlass.Required = 1 // not from Parse, which refuses it
	if v := decideBG(p, testChange(), vote("carol", 1, false, "x")); v.BreakGlass.Applied || v.BreakGlass.Required != 2 {
		t.Fatalf("one person overrode: %+v", v.BreakGlass)
	}
}

func TestBreakGlassSamePersonTwiceIsOneKey(t *testing.T) {
	v := decideBG(bgPolicy(), testChange(), vote("carol", 1, false, "x"), vote("carol", 2, true, ""), vote("CAROL", 3, true, ""))
	if v.BreakGlass.Applied || len(v.BreakGlass.Agreed) != 1 {
		t.Fatalf("one person counted as %v", v.BreakGlass.Agreed)
	}
}

func TestBreakGlassOrderReasonAndDisabled(t *testing.T) {
	// A confirmation before anyone opened does not count; dave's later
	// opening with a reason does, and the early confirmation's rejection
	// is replaced once carol's later one counts.
	v := decideBG(bgPolicy(), testChange(), vote("carol", 1, true, ""), vote("dave", 2, false, ""), vote("dave", 3, false, "db outage"), vote("carol", 4, true, ""))
	if !v.BreakGlass.Applied || v.BreakGlass.OpenedBy != "dave" || v.BreakGlass.Reason != "db outage" || len(v.BreakGlass.Rejected) != 0 {
		t.Fatalf("%+v", v.BreakGlass)
	}
	v = decideBG(bgPolicy(), testChange(), vote("carol", 1, true, ""), vote("dave", 2, false, ""))
	if rj, _ := v.BreakGlass.RejectionOf("carol"); !slices.Contains(rj.Reasons, ReasonNoOverride) {
		t.Errorf("early confirm: %+v", v.BreakGlass)
	}
	if rj, _ := v.BreakGlass.RejectionOf("dave"); !slices.Contains(rj.Reasons, ReasonNoReason) {
		t.Errorf("no reason: %+v", v.BreakGlass)
	}
	p := bgPolicy()
	p.BreakGlass.Reason = false
	if v := decideBG(p, testChange(), vote("dave", 1, false, ""), vote("carol", 2, true, "")); !v.BreakGlass.Applied || v.Title != "break-glass: @dave and @carol overrode review" {
		t.Errorf("reason: false: %q %+v", v.Title, v.BreakGlass)
	}
	p.BreakGlass = nil
	v = decideBG(p, testChange(), vote("dave", 1, false, "x"), vote("carol", 2, true, ""))
	if v.State == Success || len(v.BreakGlass.Rejected) != 2 || v.BreakGlass.Rejected[0].Reasons[0] != ReasonNoBreakGlass {
		t.Errorf("no break_glass section: %s %+v", v.State, v.BreakGlass)
	}
}

func TestBreakGlassBoundToHeadAndNeverCoversUnknowns(t *testing.T) {
	// Votes on an earlier head do not carry over to a new push.
	old := vote("carol", 1, false, "x")
	old.HeadSHA = changedSHA
	old2 := vote("dave", 2, true, "")
	old2.HeadSHA = changedSHA
	if v := decideBG(bgPolicy(), testChange(), old, old2); v.State == Success || v.BreakGlass != nil {
		t.Errorf("votes of an earlier head counted: %s %+v", v.State, v.BreakGlass)
	}
	// The pusher of the head is unknown: nobody's independence is known.
	c := testChange()
	c.Pushes = c.Pushes[:1]
	if v := decideBG(bgPolicy(), c, vote("carol", 1, false, "x"), vote("dave", 2, true, "")); v.State == Success || v.BreakGlass.Why == "" {
		t.Errorf("unknown pusher overridden: %s %+v", v.State, v.BreakGlass)
	}
	// Facts that could not be gathered stay a failure.
	c = testChange()
	c.EvalError = "API down"
	if v := decideBG(bgPolicy(), c, vote("carol", 1, false, "x"), vote("dave", 2, true, "")); v.State != Failure {
		t.Errorf("eval error overridden: %s", v.State)
	}
	// A change request by an eligible reviewer still blocks.
	c = testChange()
	c.Reviews = []Review{{ID: 1, Reviewer: User{Login: "bob"}, State: ChangesRequested, CommitSHA: headSHA}}
	if v := decideBG(bgPolicy(), c, vote("carol", 1, false, "x"), vote("dave", 2, true, "")); v.State != Failure {
		t.Errorf("change request overridden: %s", v.State)
	}
	// An invalid policy is never overridden.
	_, perr := policies.Parse("p.yml", []byte("version: 9\n"))
	if v := Decide(Input{PolicyErr: perr, Change: testChange(), BreakGlass: []BreakGlassVote{vote("carol", 1, false, "x"), vote("dave", 2, true, "")}}); v.State != Failure {
		t.Errorf("invalid policy overridden: %s", v.State)
	}
}

// The attack: carol and dave agree on a harmless head while the author
// pushes another; on GitHub the comment names no head and is bound to the
// one foureyes reads, so a comment written before that head was pushed
// must not count for it.
func TestBreakGlassCommentOlderThanItsHead(t *testing.T) {
	early := vote("dave", 2, true, "")
	early.HeadSeenAt = bgT0.Add(90 * time.Second) // pushed after carol, before dave
	late := vote("carol", 1, false, "x")
	late.HeadSeenAt = early.HeadSeenAt
	v := decideBG(bgPolicy(), testChange(), late, early)
	if v.BreakGlass.Applied {
		t.Fatalf("a comment older than the head counted: %q", v.Title)
	}
	if rj, _ := v.BreakGlass.RejectionOf("carol"); !slices.Contains(rj.Reasons, ReasonEarly) {
		t.Errorf("carol: %+v", v.BreakGlass)
	}
	unknown := vote("carol", 1, false, "x")
	unknown.HeadSeenAt = time.Time{}
	if v := decideBG(bgPolicy(), testChange(), unknown, vote("dave", 2, true, "")); v.BreakGlass.Applied {
		t.Errorf("a vote on a head of unknown age counted")
	}
	// GitLab names the head a note was written on: its age does not matter.
	a, b := vote("carol", 1, false, "x"), vote("dave", 2, true, "")
	a.HeadFromEvent, b.HeadFromEvent, a.HeadSeenAt, b.HeadSeenAt = true, true, time.Time{}, time.Time{}
	if v := decideBG(bgPolicy(), testChange(), a, b); !v.BreakGlass.Applied {
		t.Errorf("votes naming their head: %+v", v.BreakGlass)
	}
}

func TestBreakGlassNotNeededAfterApproval(t *testing.T) {
	c := testChange()
	c.Reviews = []Review{{ID: 1, Reviewer: User{Login: "bob"}, State: Approved, CommitSHA: headSHA}}
	v := decideBG(bgPolicy(), c, vote("carol", 1, false, "x"), vote("dave", 2, true, ""))
	if v.State != Success || v.BreakGlass.Applied || !v.BreakGlass.NotNeeded || strings.HasPrefix(v.Title, "break-glass") {
		t.Errorf("%s %q %+v", v.State, v.Title, v.BreakGlass)
	}
}

// FuzzParseBreakGlass holds the parser of untrusted comment bodies to its
// contract: no panic, a reason is one bounded line, a confirmation carries
// none, and a command is only found on a line of its own.
func FuzzParseBreakGlass(f *testing.F) {
	for _, s := range []string{"/foureyes break-glass prod down", "/foureyes break-glass confirm", "x\n  /foureyes break-glass\ty\r\n",
		"> /foureyes break-glass no", "/foureyes break-glass " + strings.Repeat("é", 300), "/foureyes break-glass\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		cmd, ok := ParseBreakGlass(body)
		if !ok {
			if cmd != (BreakGlassCommand{}) {
				t.Fatalf("no command but %+v", cmd)
			}
			return
		}
		if !strings.Contains(body, commandPrefix) {
			t.Fatalf("command found in %q", body)
		}
		if len(cmd.Reason) > maxReason || strings.ContainsAny(cmd.Reason, "\r\n") || (cmd.Confirm && cmd.Reason != "") {
			t.Fatalf("command %+v from %q", cmd, body)
		}
	})
}

// BenchmarkDecideBreakGlass measures what judging votes adds to Decide: a
// change with two counting keys and ten that do not.
func BenchmarkDecideBreakGlass(b *testing.B) {
	p, c := bgPolicy(), testChange()
	votes := []BreakGlassVote{vote("carol", 1, false, "x"), vote("dave", 2, true, "")}
	for i, l := range []string{"author", "dev1", "cmtr", "pair", "pusher", "oldpusher", "robo", "reader", "erin", "stranger"} {
		votes = append(votes, vote(l, 3+i, true, ""))
	}
	b.Run("without votes", func(b *testing.B) {
		for b.Loop() {
			Decide(Input{Policy: p, Change: c})
		}
	})
	b.Run("with 12 votes", func(b *testing.B) {
		for b.Loop() {
			if v := Decide(Input{Policy: p, Change: c, BreakGlass: votes}); !v.BreakGlass.Applied {
				b.Fatal("not applied")
			}
		}
	})
}
