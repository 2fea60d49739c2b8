package bot

import (
	"regexp"
	"strings"
	"testing"

	"github.com/foureyes-dev/foureyes/policies"
)

// The check's words must never contradict or repeat themselves, and never
// invite someone to approve a change they cannot approve (issue 15).
func TestWordingNeverOffersTheAuthorAsApprover(t *testing.T) {
	c := testChange()
	c.Author = User{Login: "alice"} // alice is an allowed infra reviewer
	c.Files = append(c.Files, File{Path: "deploy/prod/app.yaml", PatchDigest: "x"})
	c.Reviews = []Review{approve("bob", 1)} // code is approved; infra is not
	v := Decide(Input{Policy: testPolicy(), Change: c})
	if strings.Contains(v.Title, "alice") {
		t.Errorf("title offers the author as an approver: %q", v.Title)
	}
	if want := "infra needs 1 more approval from @acme/sre"; v.Title != want {
		t.Errorf("title = %q, want %q", v.Title, want)
	}
	md := Markdown(v)
	if !strings.Contains(md, "needs 1 more from @acme/sre.") || strings.Contains(md, "needs 1 more from @acme/sre or @alice") {
		t.Errorf("summary offers the author:\n%s", md)
	}

	// Only users, all of them excluded: say so rather than name them.
	p := testPolicy()
	p.Categories[0].Reviewers = policies.Reviewers{Users: []string{"alice", "dev1"}}
	v = Decide(Input{Policy: p, Change: c})
	if want := "infra needs 1 more approval from an allowed reviewer (@alice and @dev1 cannot approve this change)"; v.Title != want {
		t.Errorf("title = %q, want %q", v.Title, want)
	}

	// The honest reading beside it: with allow_author the author is offered.
	p = testPolicy()
	p.Review.AllowAuthor = true
	if v = Decide(Input{Policy: p, Change: c}); !strings.Contains(v.Title, "@acme/sre or @alice") {
		t.Errorf("allow_author: title = %q", v.Title)
	}
}

func TestWordingCountsStaleAndSuperseded(t *testing.T) {
	c := testChange()
	c.Reviews = []Review{
		approve("bob", 1), approve("erin", 2),
		rv("carol", Approved, commitSHA, 3), // an earlier head whose diff was never recorded
		approve("dave", 4), rv("dave", ChangesRequested, headSHA, 5),
	}
	v := Decide(Input{Policy: testPolicy(), Change: c})
	txt, md := Text(v), Markdown(v)
	for _, bad := range []string{"2 of 1", "(diff of", "superseded by a later review (superseded", "different diff (", "unknown))"} {
		if strings.Contains(txt, bad) || strings.Contains(md, bad) {
			t.Errorf("report says %q:\n%s\n%s", bad, txt, md)
		}
	}
	for _, want := range []string{
		"code: 1 file, 2 approvals, 1 required",
		"stale: approved an earlier head (approved 1a2b3c4, head is now 9f8e7d6; the diff 1a2b3c4 had is not known)",
		"superseded by a later review (their latest review: changes requested)",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("text lacks %q:\n%s", want, txt)
		}
	}
	if !strings.Contains(md, "Approved: 2 approvals, 1 required.") {
		t.Errorf("markdown lacks the count:\n%s", md)
	}
}

func TestWordingNamesTheCategoryOfEachReason(t *testing.T) {
	c := testChange()
	c.Files = append(c.Files, File{Path: "deploy/prod/app.yaml", PatchDigest: "x"})
	c.Reviews = []Review{approve("reader", 1)}
	md := Markdown(Decide(Input{Policy: testPolicy(), Change: c}))
	// Too low a permission holds everywhere; not being in @acme/sre only
	// for infra.
	if want := "| @reader | permission below write, not in @acme/sre or @alice (infra) |"; !strings.Contains(md, want) {
		t.Errorf("markdown lacks %q:\n%s", want, md)
	}
}

func TestWrapLine(t *testing.T) {
	long := ".github/foureyes.yml:3:19: " + strings.Repeat("word ", 40) + "end"
	parts := wrapLine(long, 60)
	if len(parts) < 3 {
		t.Fatalf("not wrapped: %q", parts)
	}
	if !strings.HasPrefix(parts[0], ".github/foureyes.yml:3:19: ") {
		t.Errorf("position not kept at the start: %q", parts[0])
	}
	joined := parts[0]
	for _, p := range parts[1:] {
		if !strings.HasPrefix(p, "    ") {
			t.Errorf("continuation not indented: %q", p)
		}
		joined += " " + strings.TrimLeft(p, " ")
	}
	for _, p := range parts {
		if len(p) > 60 {
			t.Errorf("part longer than 60: %q", p)
		}
	}
	if joined != long {
		t.Errorf("wrapping lost text:\n got %q\nwant %q", joined, long)
	}
	word := strings.Repeat("x", 80)
	if got := wrapLine(word, 60); len(got) != 1 || got[0] != word {
		t.Errorf("a single long word must stay whole: %q", got)
	}
}

func TestMarkdownQuietMentionsNobody(t *testing.T) {
	c := testChange()
	c.Files = append(c.Files, File{Path: "deploy/@bob/app.yaml", PatchDigest: "x"})
	c.Reviews = []Review{approve("bob", 1), approve("reader", 2), approve("alice", 3), rv("alice", ChangesRequested, headSHA, 4)}
	v := Decide(Input{Policy: testPolicy(), Change: c})
	loud, quiet := Markdown(v), MarkdownQuiet(v)
	if !strings.Contains(loud, "@acme/sre") || !strings.Contains(loud, "by @alice:") {
		t.Fatalf("Markdown lost its mentions:\n%s", loud)
	}
	// Every @ outside a code span is a mention; the quiet form has none, but
	// keeps the file path (which holds an @) as it was.
	outside := regexp.MustCompile("`[^`]*`").ReplaceAllString(quiet, "")
	if strings.Contains(outside, "@") {
		t.Errorf("quiet Markdown still mentions someone:\n%s", quiet)
	}
	for _, want := range []string{"`@acme/sre`", "`@alice`:", "`@bob`", "- `deploy/@bob/app.yaml`", "| `@reader` |"} {
		if !strings.Contains(quiet, want) {
			t.Errorf("quiet Markdown lacks %q:\n%s", want, quiet)
		}
	}
	if got := mdText("mail bob@example.com, ask @bob.", true); got != "mail bob@example.com, ask `@bob`." {
		t.Errorf("mdText = %q", got)
	}
}

func TestDecideFailsClosedOnAnEmptyPolicyError(t *testing.T) {
	v := Decide(Input{Policy: nil, PolicyErr: &policies.ParseError{}, Change: testChange()})
	if v.State != Failure || v.Title != "invalid policy file: the policy file could not be read" || len(v.Failures) != 1 {
		t.Errorf("verdict %+v", v)
	}
}
