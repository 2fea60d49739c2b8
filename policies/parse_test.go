package policies

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string // every diagnostic, in order, as FILE:LINE:COL: message
	}{
		{
			name: "unknown category key with suggestion",
			yaml: "version: 1\ncategories:\n  infra:\n    paths: [\"deploy/**\"]\n    aprovals: 2\n",
			want: []string{`p.yml:5:5: unknown key "aprovals" in categories.infra; did you mean "approvals"?`},
		},
		{
			name: "unknown key differing only in case",
			yaml: "version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    Approvals: 1\n",
			want: []string{`p.yml:5:5: unknown key "Approvals" in categories.code; did you mean "approvals"?`},
		},
		{
			name: "unknown top-level key without suggestion lists valid keys",
			yaml: "version: 1\nfoo: 1\n",
			want: []string{`p.yml:2:1: unknown key "foo"; valid keys are version, categories, exempt, review, release, break_glass`},
		},
		{
			name: "unknown nested keys",
			yaml: "version: 1\nrelease:\n  brnches: [main]\n  alert: {isue: true}\ncategories:\n  a: {paths: [x], reviewers: {team: [x]}}\n",
			want: []string{
				`p.yml:3:3: unknown key "brnches" in release; did you mean "branches"?`,
				`p.yml:4:11: unknown key "isue" in release.alert; did you mean "issue"?`,
				`p.yml:6:31: unknown key "team" in categories.a.reviewers; did you mean "teams"?`,
			},
		},
		{
			name: "version as string",
			yaml: "version: \"1\"\n",
			want: []string{`p.yml:1:10: version: expected an integer, got string "1"`},
		},
		{
			name: "unsupported version",
			yaml: "version: 2\n",
			want: []string{`p.yml:1:10: version: unsupported version 2; only "version: 1" is defined`},
		},
		{
			name: "missing version",
			yaml: "categories: {}\n",
			want: []string{`p.yml:1:1: missing required key "version"; add "version: 1" at the top of the file`},
		},
		{
			name: "scalar where list expected and string where int expected",
			yaml: "version: 1\ncategories:\n  code:\n    paths: \"**\"\n    approvals: two\n",
			want: []string{
				`p.yml:4:12: categories.code.paths: expected a list of globs, got string "**"; write ["**"]`,
				`p.yml:5:16: categories.code.approvals: expected an integer, got string "two"`,
			},
		},
		{
			name: "float approvals",
			yaml: "version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    approvals: 1.0\n",
			want: []string{`p.yml:5:16: categories.code.approvals: expected an integer, got number 1.0`},
		},
		{
			name: "negative approvals",
			yaml: "version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    approvals: -1\n",
			want: []string{`p.yml:5:16: categories.code.approvals: must be 0 or more, got -1`},
		},
		{
			name: "bad globs",
			yaml: "version: 1\nexempt: [\"docs/[a\", \"/x/**\", \"./y\", \"!z\", \"\", 3]\n",
			want: []string{
				`p.yml:2:10: exempt[0]: invalid glob "docs/[a"`,
				`p.yml:2:21: exempt[1]: glob "/x/**" can never match: paths are relative to the repository root; write "x/**"`,
				`p.yml:2:30: exempt[2]: glob "./y" can never match: paths are relative to the repository root; write "y"`,
				`p.yml:2:37: exempt[3]: glob "!z": negation is not supported; list exclusions under a category's ignore`,
				`p.yml:2:43: exempt[4]: must not be empty`,
				`p.yml:2:47: exempt[5]: expected a string, got integer 3`,
			},
		},
		{
			name: "unknown min_permission with suggestion",
			yaml: "version: 1\nreview:\n  min_permission: writer\n",
			want: []string{`p.yml:3:19: review.min_permission: unknown permission "writer"; did you mean "write"? (valid: read, triage, write, maintain, admin)`},
		},
		{
			name: "min_permission none is refused",
			yaml: "version: 1\nreview:\n  min_permission: none\n",
			want: []string{`p.yml:3:19: review.min_permission: unknown permission "none" (valid: read, triage, write, maintain, admin)`},
		},
		{
			name: "yes is not a boolean in YAML 1.2",
			yaml: "version: 1\nreview:\n  count_bots: yes\n",
			want: []string{`p.yml:3:15: review.count_bots: expected true or false, got string "yes"`},
		},
		{
			name: "duplicate keys",
			yaml: "version: 1\ncategories:\n  a: {paths: [x]}\n  a: {paths: [y]}\nreview:\n  allow_author: true\n  allow_author: false\nversion: 1\n",
			want: []string{
				`p.yml:4:3: duplicate key "a" in categories (first at line 3)`,
				`p.yml:7:3: duplicate key "allow_author" in review (first at line 6)`,
				`p.yml:8:1: duplicate key "version" (first at line 1)`,
			},
		},
		{
			name: "approvals over 100",
			yaml: "version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    approvals: 250\n",
			want: []string{`p.yml:5:16: categories.code.approvals: at most 100 approvals can be required, got 250`},
		},
		{
			name: "team without its organization",
			yaml: "version: 1\ncategories:\n  infra:\n    paths: [x]\n    reviewers: {teams: [\"acme/sre\", \"sre\"]}\n",
			want: []string{`p.yml:5:37: categories.infra.reviewers.teams[1]: team "sre" needs its organization or parent group: write ORG/TEAM (GitHub) or GROUP/SUBGROUP (GitLab), e.g. "acme/sre"`},
		},
		{
			name: "a tab in the indentation is named as a tab",
			yaml: "version: 1\ncategories:\n  code:\n  \tpaths: [x]\n",
			want: []string{`p.yml:4:3: YAML syntax error: a tab character; YAML indents with spaces, never tabs`},
		},
		{
			name: "late_window",
			yaml: "version: 1\nrelease:\n  late_window: 7x\n",
			want: []string{`p.yml:3:16: release.late_window: invalid duration "7x": write a Go duration such as 24h or 90m, or days such as 7d`},
		},
		{
			name: "negative late_window",
			yaml: "version: 1\nrelease:\n  late_window: -1h\n",
			want: []string{`p.yml:3:16: release.late_window: must not be negative, got "-1h"`},
		},
		{
			name: "overflowing late_window",
			yaml: "version: 1\nrelease: {late_window: 1d99999999999h}\n",
			want: []string{`p.yml:2:24: release.late_window: duration "1d99999999999h" is too long`},
		},
		{
			name: "late_window as date",
			yaml: "version: 1\nrelease: {late_window: 2001-12-14}\n",
			want: []string{`p.yml:2:24: release.late_window: expected a string, got date 2001-12-14`},
		},
		{
			name: "category names",
			yaml: "version: 1\ncategories:\n  a.b: {paths: [x]}\n  Uncategorized: {paths: [x]}\n  [a]: {paths: [x]}\n",
			want: []string{
				`p.yml:3:3: invalid category name "a.b": use only letters, digits, "_" and "-"`,
				`p.yml:4:3: category name "Uncategorized" is reserved for files in no category`,
				`p.yml:5:3: keys in categories must be plain names, got a list`,
			},
		},
		{
			name: "category shape",
			yaml: "version: 1\ncategories:\n  a:\n  b: {approvals: 1}\n  c: {paths: []}\n",
			want: []string{
				`p.yml:3:5: categories.a: expected a mapping, got no value (null)`,
				`p.yml:4:3: categories.b: missing required key "paths"`,
				`p.yml:5:14: categories.c.paths: must list at least one glob; a category without paths matches nothing`,
			},
		},
		{
			name: "categories null",
			yaml: "version: 1\ncategories:\n",
			want: []string{`p.yml:2:12: categories: expected a mapping of category names, got no value (null)`},
		},
		{
			name: "break_glass one person",
			yaml: "version: 1\nbreak_glass:\n  approvers: {teams: [acme/rm]}\n  required: 1\n",
			want: []string{`p.yml:4:13: break_glass.required: must be at least 2 (two-person rule), got 1`},
		},
		{
			name: "break_glass without approvers",
			yaml: "version: 1\nbreak_glass:\n  required: 2\nx:\n  y: 1\n",
			want: []string{
				`p.yml:2:1: break_glass: missing required key "approvers"; name who may break the glass`,
				`p.yml:4:1: unknown key "x"; valid keys are version, categories, exempt, review, release, break_glass`,
			},
		},
		{
			name: "break_glass reason not a boolean",
			yaml: "version: 1\nbreak_glass:\n  approvers: {users: [carol]}\n  reason: sometimes\n",
			want: []string{`p.yml:4:11: break_glass.reason: expected true or false, got string "sometimes"`},
		},
		{
			name: "break_glass required zero",
			yaml: "version: 1\nbreak_glass: {approvers: {users: [carol]}, required: 0}\n",
			want: []string{`p.yml:2:54: break_glass.required: must be at least 2 (two-person rule), got 0`},
		},
		{
			name: "break_glass empty approvers",
			yaml: "version: 1\nbreak_glass:\n  approvers: {teams: []}\n",
			want: []string{`p.yml:3:14: break_glass.approvers: must name at least one team or user`},
		},
		{
			name: "reviewers scalar",
			yaml: "version: 1\ncategories:\n  a: {paths: [x], reviewers: {users: alice}}\n",
			want: []string{`p.yml:3:38: categories.a.reviewers.users: expected a list of strings, got string "alice"; write ["alice"]`},
		},
		{
			name: "alert types",
			yaml: "version: 1\nrelease:\n  alert: {issue: 1, labels: [\"\"]}\n",
			want: []string{
				`p.yml:3:18: release.alert.issue: expected true or false, got integer 1`,
				`p.yml:3:30: release.alert.labels[0]: must not be empty`,
			},
		},
		{
			name: "merge key",
			yaml: "version: 1\ncategories:\n  a: &c {paths: [x]}\n  b:\n    <<: *c\n",
			want: []string{
				`p.yml:4:3: categories.b: missing required key "paths"`,
				`p.yml:5:5: merge keys ("<<") are not supported in policy files; write the keys out`,
			},
		},
		{
			name: "empty file",
			yaml: "",
			want: []string{`p.yml:1:1: policy file is empty; it needs at least "version: 1"`},
		},
		{
			name: "comments only",
			yaml: "# policy\n\n# to do\n",
			want: []string{`p.yml:1:1: policy file is empty; it needs at least "version: 1"`},
		},
		{
			name: "list document",
			yaml: "- version: 1\n",
			want: []string{`p.yml:1:1: policy file must be a mapping of keys starting with "version: 1", got a list`},
		},
		{
			name: "scalar document",
			yaml: "version 1\n",
			want: []string{`p.yml:1:1: policy file must be a mapping of keys starting with "version: 1", got string "version 1"`},
		},
		{
			name: "two documents",
			yaml: "version: 1\n---\nversion: 1\n",
			want: []string{`p.yml:2:1: policy file holds more than one YAML document; only one is allowed`},
		},
		{
			name: "syntax error keeps yaml's line",
			yaml: "version: 1\ncategories:\n  x:\n    paths:\n      - a\n    - b\n",
			want: []string{`p.yml:3:1: YAML syntax error: did not find expected key`},
		},
		{
			name: "tab indentation",
			yaml: "version: 1\n\tcategories: {}\n",
			want: []string{`p.yml:2:1: YAML syntax error: a tab character; YAML indents with spaces, never tabs`},
		},
		{
			name: "unquoted leading star",
			yaml: "version: 1\nexempt: [**/*.md]\n",
			want: []string{`p.yml:2:1: YAML syntax error: did not find expected alphabetic or numeric character`},
		},
		{
			name: "invalid UTF-8 is located",
			yaml: "version: 1\nexempt: [\"\xff\"]\n",
			want: []string{`p.yml:2:11: YAML syntax error: invalid leading UTF-8 octet`},
		},
		{
			name: "control character is located",
			yaml: "version: 1\nexempt: [a\x01]\n",
			want: []string{`p.yml:2:11: YAML syntax error: control characters are not allowed`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pol, err := Parse("p.yml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded, want errors %q", tc.want)
			}
			if pol != nil {
				t.Errorf("Parse returned a policy along with errors")
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T, want *ParseError", err)
			}
			var got []string
			for _, d := range pe.Diagnostics {
				got = append(got, d.String())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("diagnostics:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(tc.want, "\n      "))
			}
			if err.Error() != strings.Join(tc.want, "\n") {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

// A file with many mistakes gets all of them reported at once, in file
// order, each naming its key.
func TestParseReportsEveryError(t *testing.T) {
	src := `version: 3
categories:
  infra:
    paths: ["deploy/**", "[oops"]
    aprovals: 2
  data:
    paths: ["**/*.sql"]
    approvals: -2
exempt: "**/*.md"
review:
  min_permission: owner
  count_bots: 1
release:
  late_window: soon
break_glass:
  approvers: {users: [alice]}
  required: 1
`
	_, err := Parse("multi.yml", []byte(src))
	diags := Diagnostics(err)
	want := []struct {
		line, col int
		key       string
	}{
		{1, 10, "version"},
		{4, 26, "categories.infra.paths[1]"},
		{5, 5, "categories.infra.aprovals"},
		{8, 16, "categories.data.approvals"},
		{9, 9, "exempt"},
		{11, 19, "review.min_permission"},
		{12, 15, "review.count_bots"},
		{14, 16, "release.late_window"},
		{17, 13, "break_glass.required"},
	}
	if len(diags) != len(want) {
		t.Fatalf("got %d diagnostics, want %d:\n%v", len(diags), len(want), err)
	}
	for i, w := range want {
		d := diags[i]
		if d.File != "multi.yml" || d.Line != w.line || d.Column != w.col || d.Key != w.key {
			t.Errorf("diagnostic %d = %s:%d:%d key %q, want multi.yml:%d:%d key %q (%s)",
				i, d.File, d.Line, d.Column, d.Key, w.line, w.col, w.key, d.Message)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	pol, err := Parse("min.yml", []byte("version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	wantReview := Review{
		DismissStale:           true,
		IgnoreBaseUpdates:      true,
		MinPermission:          PermissionWrite,
		ChangesRequestedBlocks: true,
	}
	if pol.Review != wantReview {
		t.Errorf("Review = %+v, want %+v", pol.Review, wantReview)
	}
	if len(pol.Categories) != 1 || pol.Categories[0].Approvals != 1 || !pol.Categories[0].Reviewers.Empty() {
		t.Errorf("Categories = %+v, want code with 1 approval and no reviewer restriction", pol.Categories)
	}
	r := pol.Release
	if !r.DefaultBranches || globStrings(r.Branches) != "release/**" || globStrings(r.Tags) != "v*" {
		t.Errorf("Release branches/tags = %v %q %q", r.DefaultBranches, globStrings(r.Branches), globStrings(r.Tags))
	}
	if r.LateWindow != 24*time.Hour {
		t.Errorf("LateWindow = %v, want 24h", r.LateWindow)
	}
	if !r.Alert.Issue || strings.Join(r.Alert.Labels, ",") != "foureyes,unreviewed-push" {
		t.Errorf("Alert = %+v", r.Alert)
	}
	if pol.BreakGlass != nil {
		t.Errorf("BreakGlass = %+v, want nil", pol.BreakGlass)
	}
	if len(pol.Exempt) != 0 {
		t.Errorf("Exempt = %v, want none", pol.Exempt)
	}
}

func TestParseValues(t *testing.T) {
	src := `version: 1
categories:
  docs:
    paths: ["docs/**"]
    approvals: 0
release:
  branches: ["stable"]
  tags: []
  late_window: 1d12h
  alert: {issue: false, labels: []}
review:
  allow_author: true
  min_permission: maintain
break_glass:
  approvers: {teams: ["acme/rm"]}
`
	pol, err := Parse("v.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if pol.Categories[0].Approvals != 0 {
		t.Errorf("explicit 0 approvals became %d", pol.Categories[0].Approvals)
	}
	r := pol.Release
	if r.DefaultBranches || globStrings(r.Branches) != "stable" || len(r.Tags) != 0 {
		t.Errorf("Release = %+v; listed branches must replace the default set", r)
	}
	if r.LateWindow != 36*time.Hour {
		t.Errorf("LateWindow = %v, want 36h", r.LateWindow)
	}
	if r.Alert.Issue || len(r.Alert.Labels) != 0 {
		t.Errorf("Alert = %+v, want off with no labels", r.Alert)
	}
	if !pol.Review.AllowAuthor || pol.Review.MinPermission != PermissionMaintain || !pol.Review.DismissStale {
		t.Errorf("Review = %+v", pol.Review)
	}
	if pol.BreakGlass == nil || pol.BreakGlass.Required != 2 || strings.Join(pol.BreakGlass.Approvers.Teams, ",") != "acme/rm" || !pol.BreakGlass.Reason {
		t.Errorf("BreakGlass = %+v, want acme/rm with required defaulting to 2 and a reason required", pol.BreakGlass)
	}
	if pol, err := Parse("r.yml", []byte("version: 1\nbreak_glass: {approvers: {users: [carol]}, reason: false}\n")); err != nil || pol.BreakGlass.Reason {
		t.Errorf("reason: false: %+v, %v", pol, err)
	}
	if pol.IsReleaseBranch("main", "main") || !pol.IsReleaseBranch("stable", "main") {
		t.Errorf("branches: [stable] must watch stable and not the default branch")
	}
}

func TestParseDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"24h":    24 * time.Hour,
		"90m":    90 * time.Minute,
		"7d":     7 * 24 * time.Hour,
		"1d12h":  36 * time.Hour,
		"0":      0,
		"1.5h":   90 * time.Minute,
		"0d":     0,
		"2h45m":  165 * time.Minute,
		"500ms":  500 * time.Millisecond,
		"10000d": 10000 * 24 * time.Hour,
	} {
		got, err := parseDuration(in)
		if err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "7", "7 d", "1h7d", "7D", "-1h", "+1h", "1e3h", "106752d", "1d2562047h"} {
		if got, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) = %v, want error", in, got)
		}
	}
}

func TestParseSourceAndDigest(t *testing.T) {
	data := []byte("version: 1\n")
	pol, err := Parse(".github/foureyes.yml", data)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if pol.Source != ".github/foureyes.yml" || pol.Digest != hex.EncodeToString(sum[:]) || pol.Version != 1 {
		t.Errorf("Source %q Digest %q Version %d", pol.Source, pol.Digest, pol.Version)
	}
	// A comment changes the digest: the audit trail pins the exact bytes.
	other, err := Parse(".github/foureyes.yml", []byte("version: 1 # same rules\n"))
	if err != nil {
		t.Fatal(err)
	}
	if other.Digest == pol.Digest {
		t.Error("different files share a digest")
	}
}

func TestParseKeepsCategoryOrder(t *testing.T) {
	pol, err := Parse("o.yml", []byte("version: 1\ncategories:\n  zeta: {paths: [z]}\n  alpha: {paths: [a]}\n  mid: {paths: [m]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range pol.Categories {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, ","); got != "zeta,alpha,mid" {
		t.Errorf("category order = %s, want file order zeta,alpha,mid", got)
	}
}

func TestParseEmptyCategoriesMeansUncategorized(t *testing.T) {
	pol, err := Parse("e.yml", []byte("version: 1\ncategories: {}\nexempt: [\"**/*.md\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cats, exempt := pol.Classify("main.go", nil); len(cats) != 0 || exempt {
		t.Errorf("main.go: cats %v exempt %v; want uncategorized (no category, not exempt)", cats, exempt)
	}
	if _, exempt := pol.Classify("docs/a.md", nil); !exempt {
		t.Error("docs/a.md should be exempt")
	}
}

func TestParseAliases(t *testing.T) {
	src := "version: 1\ncategories:\n  a: &c {paths: [x], approvals: 2, reviewers: &r {teams: [acme/sre]}}\n  b: *c\nbreak_glass: {approvers: *r}\n"
	pol, err := Parse("a.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(pol.Categories) != 2 || pol.Categories[1].Approvals != 2 || pol.BreakGlass.Approvers.Teams[0] != "acme/sre" {
		t.Errorf("aliases not followed: %+v %+v", pol.Categories, pol.BreakGlass)
	}
}

// One anchored list referenced by thousands of categories must not expand
// into millions of globs.
func TestParseAliasExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\ncategories:\n  c0:\n    paths: &p [")
	for i := range 2000 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("x")
	}
	b.WriteString("]\n")
	for i := 1; i < 2000; i++ {
		fmt.Fprintf(&b, "  c%d: {paths: *p}\n", i)
	}
	start := time.Now()
	_, err := Parse("bomb.yml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "too complex") {
		t.Fatalf("err = %v, want a too-complex error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestParseRejectsHugeFile(t *testing.T) {
	data := []byte("version: 1\n# " + strings.Repeat("x", MaxSize) + "\n")
	_, err := Parse("big.yml", data)
	if err == nil || !strings.Contains(err.Error(), "big.yml:1:1: policy file is") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseAllowsTrailingDocumentMarker(t *testing.T) {
	for _, src := range []string{"---\nversion: 1\n", "version: 1\n---\n", "version: 1\n...\n"} {
		if _, err := Parse("t.yml", []byte(src)); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
}

func TestSuggest(t *testing.T) {
	for in, want := range map[string]string{
		"aprovals":       "approvals",
		"approval":       "approvals",
		"Approvals":      "approvals",
		"ignre":          "ignore",
		"path":           "paths",
		"reviewer":       "reviewers",
		"allow_authors":  "allow_author",
		"minpermission":  "min_permission",
		"totally_off":    "",
		"x":              "",
		"":               "",
		"break-glass":    "break_glass",
		"categoris":      "categories",
		"changes_reqstd": "",
	} {
		candidates := append(append(append([]string{}, topKeys...), categoryKeys...), reviewKeys...)
		if got := suggest(in, candidates); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFullExample(t *testing.T) {
	data, err := os.ReadFile("testdata/full.yml")
	if err != nil {
		t.Fatal(err)
	}
	pol, err := Parse("testdata/full.yml", data)
	if err != nil {
		t.Fatalf("the SPEC example must parse: %v", err)
	}
	if len(pol.Categories) != 3 {
		t.Fatalf("categories = %d, want 3", len(pol.Categories))
	}
	infra, data_, code := pol.Categories[0], pol.Categories[1], pol.Categories[2]
	if infra.Name != "infra" || infra.Approvals != 2 ||
		globStrings(infra.Paths) != "deploy/**,**/*.tf,**/Dockerfile,.github/workflows/**" ||
		strings.Join(infra.Reviewers.Teams, ",") != "acme/sre" || strings.Join(infra.Reviewers.Users, ",") != "alice" {
		t.Errorf("infra = %+v", infra)
	}
	if data_.Name != "data" || data_.Approvals != 1 || !data_.Reviewers.Empty() || globStrings(data_.Paths) != "migrations/**,**/*.sql,data/**" {
		t.Errorf("data = %+v", data_)
	}
	if code.Name != "code" || globStrings(code.Paths) != "**" || globStrings(code.Ignore) != "docs/**" {
		t.Errorf("code = %+v", code)
	}
	if globStrings(pol.Exempt) != "**/*.md" {
		t.Errorf("exempt = %q", globStrings(pol.Exempt))
	}
	if pol.Review.MinPermission != PermissionWrite || !pol.Review.DismissStale || pol.Review.AllowAuthor {
		t.Errorf("review = %+v", pol.Review)
	}
	r := pol.Release
	if r.DefaultBranches || globStrings(r.Branches) != "main,release/**" || globStrings(r.Tags) != "v*" ||
		r.LateWindow != 24*time.Hour || !r.Alert.Issue || strings.Join(r.Alert.Labels, ",") != "foureyes,unreviewed-push" {
		t.Errorf("release = %+v", r)
	}
	if pol.BreakGlass == nil || pol.BreakGlass.Required != 2 || strings.Join(pol.BreakGlass.Approvers.Teams, ",") != "acme/release-managers" {
		t.Errorf("break_glass = %+v", pol.BreakGlass)
	}
	for path, want := range map[string]string{
		"deploy/app.yaml":  "infra,code",
		"db/schema.sql":    "data,code",
		"docs/guide.txt":   "",
		"cmd/main.go":      "code",
		"infra/Dockerfile": "infra,code",
	} {
		if got := classifyNames(pol, path); got != want {
			t.Errorf("Classify(%q) = %q, want %q", path, got, want)
		}
	}
	if _, exempt := pol.Classify("README.md", nil); !exempt {
		t.Error("README.md should be exempt")
	}
	if !pol.IsReleaseBranch("main", "trunk") || !pol.IsReleaseBranch("release/1.2", "trunk") || pol.IsReleaseBranch("trunk", "trunk") {
		t.Error("release branches should be exactly main and release/**")
	}
}

func TestDefault(t *testing.T) {
	pol := Default()
	if pol.Source != "built-in default" || pol.Digest == "" || pol.Version != 1 {
		t.Errorf("Source %q Digest %q Version %d", pol.Source, pol.Digest, pol.Version)
	}
	for path, want := range map[string]string{
		"deploy/k8s/app.yaml":             "infra,code",
		"db/migrations/001.sql":           "data,code",
		"README.md":                       "code",
		".github/workflows/ci.yml":        "infra,code",
		".gitlab-ci.yml":                  "infra,code",
		"services/api/Dockerfile":         "infra,code",
		"terraform/main.tf":               "infra,code",
		"charts/app/values.yaml":          "infra,code",
		"ops/ansible/site.yml":            "infra,code",
		"infra/network.hcl":               "infra,code",
		"data/users.csv":                  "data,code",
		"test/fixtures/user.json":         "data,code",
		"exports/daily.parquet":           "data,code",
		"db/seeds/users.rb":               "data,code",
		"cmd/foureyes/main.go":            "code",
		".hidden/config":                  "code",
		"migrations/002_add_index.up.sql": "data,code",
	} {
		if got := classifyNames(pol, path); got != want {
			t.Errorf("Classify(%q) = %q, want %q", path, got, want)
		}
	}
	if len(pol.Exempt) != 0 {
		t.Errorf("default exempts %v; every change must be reviewed", pol.Exempt)
	}
	for _, c := range pol.Categories {
		if c.Approvals != 1 {
			t.Errorf("%s needs %d approvals, want 1", c.Name, c.Approvals)
		}
	}
	if !pol.IsReleaseBranch("main", "main") || !pol.IsReleaseBranch("develop", "develop") ||
		!pol.IsReleaseBranch("release/2.0", "main") || pol.IsReleaseBranch("feature/x", "main") ||
		pol.IsReleaseBranch("", "") {
		t.Error("default release branches must be the default branch and release/**")
	}
	if !pol.IsReleaseTag("v1.2.3") || pol.IsReleaseTag("nightly") {
		t.Error("default release tags must be v*")
	}
	strict := Review{DismissStale: true, IgnoreBaseUpdates: true, MinPermission: PermissionWrite, ChangesRequestedBlocks: true}
	if pol.Review != strict || pol.BreakGlass != nil {
		t.Errorf("Review %+v BreakGlass %+v", pol.Review, pol.BreakGlass)
	}

	// Each call is independent: changing one copy must not leak.
	pol.Categories[0].Approvals = 99
	pol.Categories[0].Paths[0] = MustCompileGlob("nothing")
	pol.Release.Alert.Labels[0] = "changed"
	again := Default()
	if again.Categories[0].Approvals != 1 || again.Categories[0].Paths[0].Pattern != ".github/workflows/**" || again.Release.Alert.Labels[0] != "foureyes" {
		t.Error("Default() shares state between calls")
	}
}

func TestDiagnosticsOfOtherErrors(t *testing.T) {
	d := Diagnostics(errors.New("boom"))
	if len(d) != 1 || d[0].Line != 1 || d[0].Message != "boom" {
		t.Errorf("Diagnostics = %+v", d)
	}
	if Diagnostics(nil) != nil {
		t.Error("Diagnostics(nil) != nil")
	}
	_, err := Parse("w.yml", []byte("version: 2\n"))
	wrapped := fmt.Errorf("loading policy: %w", err)
	if d := Diagnostics(wrapped); len(d) != 1 || d[0].Key != "version" || d[0].File != "w.yml" {
		t.Errorf("Diagnostics through wrapping = %+v", d)
	}
}

func globStrings(gs []Glob) string {
	s := make([]string, len(gs))
	for i, g := range gs {
		s[i] = g.Pattern
	}
	return strings.Join(s, ",")
}

func classifyNames(p *Policy, path string) string {
	idx, exempt := p.Classify(path, nil)
	if exempt {
		return "exempt"
	}
	names := make([]string, len(idx))
	for i, j := range idx {
		names[i] = p.Categories[j].Name
	}
	return strings.Join(names, ",")
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("testdata/full.yml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("full.yml", data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseClipsEchoedValues(t *testing.T) {
	long := strings.Repeat("k", 1000) // YAML caps plain keys at 1024 characters
	_, err := Parse("l.yml", []byte("version: 1\n"+long+": 1\nreview: {min_permission: "+long+"}\n"))
	for _, d := range Diagnostics(err) {
		if len(d.Message) > 300 {
			t.Errorf("message of %d bytes: %.80s...", len(d.Message), d.Message)
		}
	}
	if n := len(Diagnostics(err)); n != 2 {
		t.Errorf("got %d diagnostics, want 2: %v", n, err)
	}
}

func TestFormatDurationRoundTrips(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0", 24 * time.Hour: "24h", 36 * time.Hour: "36h", 90 * time.Minute: "1h30m",
		7 * 24 * time.Hour: "7d", 45 * time.Second: "45s", 25*time.Hour + time.Second: "25h1s",
	} {
		got := FormatDuration(d)
		if got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		back, err := parseDuration(got)
		if err != nil || back != d {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", got, back, err, d)
		}
	}
}
