package bot

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/foureyes-dev/foureyes/policies"
)

// renderFixture has a pending infra category, a satisfied code category,
// and an approval rejected for every reason.
func renderFixture() Verdict {
	c := testChange()
	c.Files = append(c.Files,
		File{Path: "deploy/a|b<script>`x`.tf", PatchDigest: "1"},
		File{Path: "README.md", PatchDigest: "2"})
	for i := range 23 {
		c.Files = append(c.Files, File{Path: fmt.Sprintf("pkg/f%02d.go", i), PatchDigest: "z"})
	}
	c.Unverified = []string{"ghost@example.com"}
	c.Notices = []string{"approvals were read from stored webhook events"}
	c.Reviewers["evil_<b>|x"] = ReviewerFacts{Permission: policies.PermissionWrite}
	c.Reviewers["oldpusher"] = ReviewerFacts{Permission: policies.PermissionTriage}
	c.Reviews = []Review{
		approve("author", 1), approve("bob", 2), rv("dave", Approved, changedSHA, 3),
		approve("reader", 4), approve("ci[bot]", 5), approve("erin", 6), rv("erin", Dismissed, headSHA, 7),
		approve("pair", 8), approve("dev1", 9), approve("pusher", 10), approve("evil_<b>|x", 11),
		approve("alice", 12), rv("alice", ChangesRequested, headSHA, 13),
	}
	return Decide(Input{Policy: testPolicy(), Change: c})
}

func TestMarkdown(t *testing.T) {
	v := renderFixture()
	md := Markdown(v)
	for _, want := range []string{
		"**Failure** — changes requested by @alice\n",
		"| Category | Files | Required | Counted | Missing |",
		"| infra | 1 | 1 | — | 1 |\n",
		"| code | 25 | 1 | @bob, @evil\\_&lt;b&gt;\\|x | 0 |\n",
		"0 of 1 approval; needs 1 more from @acme/sre or @alice.",
		"**Changes requested** by @alice",
		"| Reviewer | Reasons | Detail |",
		"| @author | author of the change, not in @acme/sre or @alice (infra) |",
		"| @dev1 | committed to the change, not in @acme/sre or @alice (infra) | authored 1a2b3c4 |",
		"| @pair | co-author (Co-authored-by), not in @acme/sre or @alice (infra) | co-authored 1a2b3c4 |",
		"| @pusher | pushed the current head, not in @acme/sre or @alice (infra) | pushed head 9f8e7d6 |",
		"| @ci\\[bot\\] | bot account, not in @acme/sre or @alice (infra) |",
		"| @reader | permission below write, not in @acme/sre or @alice (infra) | permission read, needs write |",
		"| @dave | stale: approved an earlier head | approved 0bad0ba, head is now 9f8e7d6; the diff has changed since |",
		"| @erin | dismissed |",
		"| @erin | superseded by a later review |",
		"| @alice | superseded by a later review |",
		"| @bob | not in @acme/sre or @alice | for infra only (counted elsewhere) |",
		// Escaping: the file is a code span with a longer fence, the
		// user name is escaped text that cannot split the table or open HTML.
		"- `` deploy/a|b<script>`x`.tf ``\n",
		"| @evil\\_&lt;b&gt;\\|x | not in @acme/sre or @alice | for infra only (counted elsewhere) |",
		"**Exempt files (no review needed)** (1)\n\n- `README.md`\n",
		"ghost@example.com",
		"- approvals were read from stored webhook events\n",
		"<details><summary>5 more</summary>",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "evil_<b>") || strings.Contains(md, "| @evil\\_&lt;b&gt;|x") {
		t.Errorf("user name not escaped:\n%s", md)
	}
	// Outside code spans no raw HTML from a file name survives.
	for _, line := range strings.Split(md, "\n") {
		if strings.Contains(line, "<script>") && !strings.HasPrefix(line, "- ``") {
			t.Errorf("raw HTML outside a code span: %q", line)
		}
	}
}

func TestMarkdownFailures(t *testing.T) {
	perr := &policies.ParseError{Diagnostics: []policies.Diagnostic{
		{File: ".github/foureyes.yml", Line: 4, Column: 5, Message: "unknown key `aprovals`"},
		{File: ".github/foureyes.yml", Line: 7, Column: 1, Message: "a ``` fence"},
	}}
	md := Markdown(Decide(Input{PolicyErr: perr, Change: testChange()}))
	for _, want := range []string{
		"**Failure** — invalid policy file: .github/foureyes.yml:4:5: unknown key \\`aprovals\\` (+1 more)\n",
		// A fence inside a message cannot close the code block.
		"````\n.github/foureyes.yml:4:5: unknown key `aprovals`\n.github/foureyes.yml:7:1: a ``` fence\n````\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestMarkdownTruncates(t *testing.T) {
	p := testPolicy()
	c := testChange()
	c.Files = nil
	for i := range 3000 {
		dir := []string{"deploy/k8s/overlays/production", "services/payments/internal/handlers", "docs/architecture"}[i%3]
		c.Files = append(c.Files, File{Path: fmt.Sprintf("%s/some_rather_long_file_name_%04d.yaml", dir, i), PatchDigest: "x"})
	}
	c.Files = append(c.Files, File{Path: "notes/zz.md", PatchDigest: "y"})
	c.Reviews = []Review{approve("bob", 1), approve("author", 2)}
	v := Decide(Input{Policy: p, Change: c})
	md := Markdown(v)
	if len(md) > MaxMarkdown {
		t.Fatalf("Markdown is %d bytes, over %d", len(md), MaxMarkdown)
	}
	for _, want := range []string{
		"| infra | 1000 | 1 | — | 1 |",
		"| code | 2000 | 1 | @bob | 0 |",
		"| uncategorized | 1000 | 1 | @bob | 0 |",
		"| @author | author of the change",
		"not shown (size limit)",
		"deploy/k8s/overlays/production/some_rather_long_file_name_0000.yaml",
		"**Exempt files (no review needed)** (1)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("truncated Markdown lacks %q", want)
		}
	}
	if strings.Count(md, "<details>") != strings.Count(md, "</details>") {
		t.Error("unbalanced <details>")
	}

	// Even with thousands of notices and rejections it stays under the limit.
	for i := range 3000 {
		v.Notices = append(v.Notices, strings.Repeat("n", 100))
		v.Ignored = append(v.Ignored, Rejection{Reviewer: fmt.Sprint("r", i), Reasons: []Reason{ReasonBot}})
	}
	if md := Markdown(v); len(md) > MaxMarkdown || !strings.Contains(md, "| code | 2000 |") {
		t.Errorf("Markdown is %d bytes", len(md))
	}
}

func TestText(t *testing.T) {
	v := renderFixture()
	v.Notices = append(v.Notices, "bad \x1b[31mred\x1b[0m")
	txt := Text(v)
	for _, want := range []string{
		"FAILURE: changes requested by @alice\n",
		"infra: 1 file, 0 of 1 approval, needs 1 more from @acme/sre or @alice\n",
		"code: 25 files, 2 approvals, 1 required\n  counted: @bob and @evil_<b>|x\n",
		"did not count: @dev1 — committed to the change (authored 1a2b3c4)",
		"did not count: @bob — not in @acme/sre or @alice\n",
		"exempt:\n  README.md\n",
		"bad \uFFFD[31mred",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("Text lacks %q:\n%s", want, txt)
		}
	}
	if strings.Contains(txt, "\x1b") {
		t.Error("terminal escape passed through")
	}
}

func TestVerdictJSONRoundTrip(t *testing.T) {
	v := renderFixture()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var back Verdict
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v, back) {
		t.Errorf("JSON round trip changed the verdict:\n%+v\n%+v", v, back)
	}
	if !strings.Contains(string(data), `"reasons":["author"]`) {
		t.Errorf("reasons not serialized by name: %s", data)
	}
}
