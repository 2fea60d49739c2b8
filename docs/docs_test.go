package docs_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	ghforge "github.com/foureyes-dev/foureyes/forge/github"
	glforge "github.com/foureyes-dev/foureyes/forge/gitlab"
	"github.com/foureyes-dev/foureyes/metrics"
	"github.com/foureyes-dev/foureyes/policies"
)

// The tests run in docs/; the rest of the repository is one level up.
const root = ".."

// --- Markdown, just enough of it ---------------------------------------------

// doc is a Markdown file split into what the tests look at.
type doc struct {
	name   string
	lines  []string // every line
	prose  []bool   // prose[i]: line i is outside fenced code blocks
	fences []fence
}

// fence is one fenced code block.
type fence struct {
	lang   string
	body   string
	line   int    // 1-based line of the opening fence
	before string // the last non-blank line before the opening fence
	next   *fence // the following block when only blank lines separate them
}

func readDoc(t *testing.T, name string) *doc {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	d := &doc{name: name, lines: strings.Split(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n")}
	d.prose = make([]bool, len(d.lines))
	var (
		cur      *fence
		body     []string
		lastText string
		// adjacent[i]: block i follows block i-1 with only blank lines
		// between them.
		adjacent  []bool
		blankOnly bool
	)
	for i, l := range d.lines {
		trimmed := strings.TrimSpace(l)
		if cur != nil {
			if trimmed == "```" {
				cur.body = strings.Join(body, "\n")
				if len(body) > 0 {
					cur.body += "\n"
				}
				d.fences = append(d.fences, *cur)
				cur, body, blankOnly = nil, nil, true
				continue
			}
			body = append(body, l)
			continue
		}
		if lang, ok := strings.CutPrefix(trimmed, "```"); ok {
			cur = &fence{lang: strings.TrimSpace(lang), line: i + 1, before: lastText}
			adjacent = append(adjacent, len(d.fences) > 0 && blankOnly)
			continue
		}
		d.prose[i] = true
		if trimmed != "" {
			lastText = trimmed
			blankOnly = false
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: code block never closed", name, cur.line)
	}
	for i := 1; i < len(d.fences); i++ {
		if adjacent[i] {
			d.fences[i-1].next = &d.fences[i]
		}
	}
	return d
}

var headingRE = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)

// heading is a Markdown heading outside code blocks.
type heading struct {
	level  int
	text   string
	anchor string
	line   int
}

// headings lists the headings with the anchors GitHub gives them: lower
// case, punctuation other than "-" and "_" dropped, spaces turned into "-",
// and "-1", "-2", ... appended to repeats.
func (d *doc) headings() []heading {
	var hs []heading
	seen := map[string]int{}
	for i, l := range d.lines {
		if !d.prose[i] {
			continue
		}
		m := headingRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		a := githubAnchor(m[2])
		if n := seen[a]; n > 0 {
			seen[a] = n + 1
			a += "-" + strconv.Itoa(n)
		} else {
			seen[a] = 1
		}
		hs = append(hs, heading{level: len(m[1]), text: m[2], anchor: a, line: i + 1})
	}
	return hs
}

func githubAnchor(text string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(text)) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// section returns the prose lines from the heading with this exact text
// up to the next heading of the same or a higher level.
func (d *doc) section(t *testing.T, title string) []string {
	t.Helper()
	var out []string
	level := 0
	for i, l := range d.lines {
		if !d.prose[i] {
			continue
		}
		if m := headingRE.FindStringSubmatch(l); m != nil {
			if level > 0 && len(m[1]) <= level {
				break
			}
			if level == 0 && m[2] == title {
				level = len(m[1])
				continue
			}
		}
		if level > 0 {
			out = append(out, l)
		}
	}
	if level == 0 {
		t.Fatalf("%s: no heading %q", d.name, title)
	}
	return out
}

// tableRows returns the cells of every table row among lines (header and
// separator rows excluded). Cells are trimmed; "\|" is not a separator.
func tableRows(lines []string) [][]string {
	var rows [][]string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "|") {
			continue
		}
		l = strings.ReplaceAll(l, `\|`, "\x00")
		cells := strings.Split(strings.Trim(l, "|"), "|")
		sep := true
		for i := range cells {
			cells[i] = strings.TrimSpace(strings.ReplaceAll(cells[i], "\x00", "|"))
			if strings.Trim(cells[i], ":-") != "" {
				sep = false
			}
		}
		if sep {
			continue
		}
		rows = append(rows, cells)
	}
	if len(rows) > 0 {
		rows = rows[1:] // the header
	}
	return rows
}

func (d *doc) proseLines() []string {
	var out []string
	for i, l := range d.lines {
		if d.prose[i] {
			out = append(out, l)
		}
	}
	return out
}

func code(s string) string { return "`" + s + "`" }

// --- policy.md ---------------------------------------------------------------

// schemaInfo is what the policy reference must cover: every property path
// (categories.<name>.paths, review.min_permission, ...), the defaults the
// schema states for them, and every enum value.
type schemaInfo struct {
	paths    []string
	defaults map[string]any
	enums    []string
}

func loadSchema(t *testing.T) schemaInfo {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal(policies.Schema(), &s); err != nil {
		t.Fatalf("policies/schema.json: %v", err)
	}
	defs, _ := s["$defs"].(map[string]any)
	info := schemaInfo{defaults: map[string]any{}}
	seen := map[string]bool{}
	enumSeen := map[string]bool{}

	// resolve follows "$ref": "#/$defs/NAME" chains, returning every
	// schema object that applies to a node (the node first).
	var resolve func(n map[string]any, depth int) []map[string]any
	resolve = func(n map[string]any, depth int) []map[string]any {
		if depth > 20 {
			t.Fatal("schema.json: $ref loop")
		}
		out := []map[string]any{n}
		if ref, ok := n["$ref"].(string); ok {
			name, ok := strings.CutPrefix(ref, "#/$defs/")
			target, _ := defs[name].(map[string]any)
			if !ok || target == nil {
				t.Fatalf("schema.json: unresolvable $ref %q", ref)
			}
			out = append(out, resolve(target, depth+1)...)
		}
		for _, k := range []string{"anyOf", "allOf", "oneOf"} {
			list, _ := n[k].([]any)
			for _, item := range list {
				if m, ok := item.(map[string]any); ok {
					out = append(out, resolve(m, depth+1)...)
				}
			}
		}
		return out
	}

	var walk func(path string, n map[string]any)
	walk = func(path string, n map[string]any) {
		for _, part := range resolve(n, 0) {
			if path != "" {
				if def, ok := part["default"]; ok {
					if _, dup := info.defaults[path]; !dup {
						info.defaults[path] = def
					}
				}
			}
			if enum, ok := part["enum"].([]any); ok {
				for _, v := range enum {
					s := fmt.Sprint(v)
					if !enumSeen[s] {
						enumSeen[s] = true
						info.enums = append(info.enums, s)
					}
				}
			}
			props, _ := part["properties"].(map[string]any)
			for _, k := range sortedKeys(props) {
				child, _ := props[k].(map[string]any)
				p := k
				if path != "" {
					p = path + "." + k
				}
				if !seen[p] {
					seen[p] = true
					info.paths = append(info.paths, p)
				}
				walk(p, child)
			}
			if ap, ok := part["additionalProperties"].(map[string]any); ok {
				p := path + ".<name>"
				if !seen[p] {
					seen[p] = true
					info.paths = append(info.paths, p)
				}
				walk(p, ap)
			}
		}
	}
	walk("", s)
	if len(info.paths) < 20 || len(info.enums) == 0 {
		t.Fatalf("schema.json: found only %d property paths and %d enum values; has its shape changed?", len(info.paths), len(info.enums))
	}
	return info
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestPolicyReferenceCoversSchema checks policy.md against
// policies/schema.json: every property path is documented (as `path` in a
// table row or a heading), its documented default is the schema's, every
// enum value appears, and the key table names nothing the schema lacks.
func TestPolicyReferenceCoversSchema(t *testing.T) {
	d := readDoc(t, "policy.md")
	info := loadSchema(t)

	var rowsAndHeadings []string
	for i, l := range d.lines {
		if d.prose[i] && (strings.HasPrefix(strings.TrimSpace(l), "|") || headingRE.MatchString(l)) {
			rowsAndHeadings = append(rowsAndHeadings, l)
		}
	}
	for _, p := range info.paths {
		found := false
		for _, l := range rowsAndHeadings {
			if strings.Contains(l, code(p)) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("policy.md does not document %s (the schema has it): add a row to the key table", code(p))
		}
	}

	keyRows := map[string][]string{}
	for _, row := range tableRows(d.section(t, "Keys")) {
		key := strings.Trim(row[0], "`")
		if !slices.Contains(info.paths, key) {
			t.Errorf("policy.md key table documents %s, which policies/schema.json does not have", row[0])
		}
		if len(row) != 5 {
			t.Errorf("policy.md key table row %s has %d cells, want 5 (key, type, default, meaning, example)", row[0], len(row))
			continue
		}
		keyRows[key] = row
	}
	for _, p := range info.paths {
		if _, ok := keyRows[p]; !ok {
			t.Errorf("policy.md key table has no row for %s", code(p))
		}
	}

	for p, def := range info.defaults {
		row, ok := keyRows[p]
		if !ok {
			continue // reported above
		}
		cell := row[2]
		switch v := def.(type) {
		case []any:
			for _, item := range v {
				if !strings.Contains(cell, strconv.Quote(fmt.Sprint(item))) {
					t.Errorf("policy.md: the default of %s is %v per the schema; the table says %q", code(p), v, cell)
				}
			}
		default:
			if !strings.Contains(cell, code(fmt.Sprint(v))) {
				t.Errorf("policy.md: the default of %s is %v per the schema; the table says %q", code(p), v, cell)
			}
		}
	}

	text := strings.Join(d.proseLines(), "\n")
	for _, e := range info.enums {
		if !strings.Contains(text, code(e)) {
			t.Errorf("policy.md does not mention the value %s (an enum value in the schema)", code(e))
		}
	}
}

// TestPolicyDefaultsMatchParser checks the documented defaults against
// what Parse actually fills in for keys left out, so the reference (and
// the schema it is checked against) cannot drift from the parser.
func TestPolicyDefaultsMatchParser(t *testing.T) {
	p, err := policies.Parse("min.yml", []byte("version: 1\ncategories:\n  c:\n    paths: [\"**\"]\nbreak_glass:\n  approvers: {users: [\"x\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	globs := func(gs []policies.Glob) []any {
		out := []any{}
		for _, g := range gs {
			out = append(out, g.Pattern)
		}
		return out
	}
	parsed := map[string]any{
		"categories.<name>.approvals":     p.Categories[0].Approvals,
		"review.allow_author":             p.Review.AllowAuthor,
		"review.allow_committers":         p.Review.AllowCommitters,
		"review.allow_last_pusher":        p.Review.AllowLastPusher,
		"review.dismiss_stale":            p.Review.DismissStale,
		"review.ignore_base_updates":      p.Review.IgnoreBaseUpdates,
		"review.count_bots":               p.Review.CountBots,
		"review.min_permission":           p.Review.MinPermission.String(),
		"review.changes_requested_blocks": p.Review.ChangesRequestedBlocks,
		"release.tags":                    globs(p.Release.Tags),
		"release.late_window":             p.Release.LateWindow,
		"release.alert.issue":             p.Release.Alert.Issue,
		"release.alert.labels":            toAny(p.Release.Alert.Labels),
		"break_glass.required":            p.BreakGlass.Required,
		"break_glass.reason":              p.BreakGlass.Reason,
	}
	info := loadSchema(t)
	for path, want := range info.defaults {
		got, ok := parsed[path]
		if !ok {
			t.Errorf("the schema states a default for %s; add it to this test", path)
			continue
		}
		if d, ok := got.(time.Duration); ok {
			if w, err := time.ParseDuration(fmt.Sprint(want)); err != nil || w != d {
				t.Errorf("%s: Parse defaults to %v, the schema (and policy.md) say %v", path, d, want)
			}
			continue
		}
		if fmt.Sprint(normalize(got)) != fmt.Sprint(normalize(want)) {
			t.Errorf("%s: Parse defaults to %v, the schema (and policy.md) say %v", path, got, want)
		}
	}
	if !p.Release.DefaultBranches || len(p.Release.Branches) != 1 || p.Release.Branches[0].Pattern != "release/**" {
		t.Errorf("release.branches left out: got %v (default branch: %v); policy.md says the default branch and release/**",
			globs(p.Release.Branches), p.Release.DefaultBranches)
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// normalize makes JSON numbers and Go ints print alike.
func normalize(v any) any {
	switch x := v.(type) {
	case float64:
		if x == float64(int(x)) {
			return int(x)
		}
	}
	return v
}

// startsWithVersion reports whether a YAML block's first line that is not
// blank and not a comment is "version: 1".
func startsWithVersion(body string) bool {
	for _, l := range strings.Split(body, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		return l == "version: 1"
	}
	return false
}

const invalidMarker = "<!-- invalid -->"

// TestPolicyExamples parses the YAML examples of policy.md: a block that
// starts with "version: 1" must parse; a block marked <!-- invalid --> must
// not, and the console block right after it must show exactly what
// `foureyes validate` prints for it.
func TestPolicyExamples(t *testing.T) {
	d := readDoc(t, "policy.md")
	valid, invalid := 0, 0
	for _, f := range d.fences {
		if f.lang != "yaml" {
			continue
		}
		where := fmt.Sprintf("policy.md:%d", f.line)
		if f.before == invalidMarker {
			invalid++
			out := f.next
			if out == nil || out.lang != "console" {
				t.Errorf("%s: an invalid example must be followed by a console block with the output of foureyes validate", where)
				_, err := policies.Parse("policy.yml", []byte(f.body))
				if err == nil {
					t.Errorf("%s: marked invalid but parses", where)
				}
				continue
			}
			lines := strings.Split(strings.TrimRight(out.body, "\n"), "\n")
			name, ok := strings.CutPrefix(lines[0], "$ foureyes validate ")
			if !ok || strings.Contains(name, " ") {
				t.Errorf("policy.md:%d: the output block must start with \"$ foureyes validate FILE\", got %q", out.line, lines[0])
				continue
			}
			_, err := policies.Parse(name, []byte(f.body))
			if err == nil {
				t.Errorf("%s: marked invalid but parses", where)
				continue
			}
			var got []string
			for _, dg := range policies.Diagnostics(err) {
				got = append(got, dg.String())
			}
			if want := lines[1:]; !slices.Equal(got, want) {
				t.Errorf("policy.md:%d: foureyes validate prints\n%s\nbut the document shows\n%s",
					out.line, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			continue
		}
		if !startsWithVersion(f.body) {
			continue // a fragment
		}
		valid++
		if _, err := policies.Parse("foureyes.yml", []byte(f.body)); err != nil {
			t.Errorf("%s: example does not parse:\n%v", where, err)
		}
	}
	if valid < 3 || invalid < 1 {
		t.Errorf("policy.md: found %d valid and %d invalid examples; the reference should have both", valid, invalid)
	}
}

// TestPolicyBuiltInDefault checks that the reference lists every glob of the
// built-in default policy, so the list cannot fall behind default.yml.
func TestPolicyBuiltInDefault(t *testing.T) {
	d := readDoc(t, "policy.md")
	text := strings.Join(d.section(t, "The built-in default"), "\n")
	def := policies.Default()
	for _, c := range def.Categories {
		if !strings.Contains(text, code(c.Name)) {
			t.Errorf("policy.md built-in default: category %s is not listed", code(c.Name))
		}
		for _, g := range c.Paths {
			if !strings.Contains(text, code(g.Pattern)) {
				t.Errorf("policy.md built-in default: %s of %s is not listed", code(g.Pattern), c.Name)
			}
		}
	}
	for _, g := range def.Exempt {
		t.Errorf("the built-in default now exempts %s; policy.md says it exempts nothing", g.Pattern)
	}
}

// TestPolicyLookupOrder checks the lookup table of policy.md against the
// adapters' lookup orders.
func TestPolicyLookupOrder(t *testing.T) {
	d := readDoc(t, "policy.md")
	rows := tableRows(d.section(t, "Where foureyes looks"))
	if len(rows) < 4 {
		t.Fatalf("policy.md: lookup table has %d rows", len(rows))
	}
	for i := range ghforge.PolicyPaths {
		if rows[i][1] != code(ghforge.PolicyPaths[i]) || rows[i][2] != code(glforge.PolicyPaths[i]) {
			t.Errorf("policy.md lookup row %d: %s | %s, want %s | %s (forge/github, forge/gitlab PolicyPaths)",
				i+1, rows[i][1], rows[i][2], code(ghforge.PolicyPaths[i]), code(glforge.PolicyPaths[i]))
		}
	}
	if len(ghforge.PolicyPaths) != 3 || len(glforge.PolicyPaths) != 3 {
		t.Errorf("the adapters look in %d/%d places; update the lookup table of policy.md", len(ghforge.PolicyPaths), len(glforge.PolicyPaths))
	}
	if !strings.Contains(rows[3][1], code(ghforge.OrgPolicyPath)) || !strings.Contains(rows[3][1], code(ghforge.OrgPolicyRepo)) {
		t.Errorf("policy.md lookup row 4: %q does not name the org policy %s/%s", rows[3][1], ghforge.OrgPolicyRepo, ghforge.OrgPolicyPath)
	}
}

// --- gitlab.md ---------------------------------------------------------------

// TestGitLabGuide checks that the GitLab guide names every webhook event the
// adapter handles, the lookup order, and every FOUREYES_GITLAB_* setting.
func TestGitLabGuide(t *testing.T) {
	d := readDoc(t, "gitlab.md")
	text := strings.Join(d.proseLines(), "\n")
	for _, ev := range []string{glforge.HookMergeRequest, glforge.HookPush, glforge.HookTagPush, glforge.HookNote, glforge.HookPipeline} {
		if !strings.Contains(text, code(ev)) {
			t.Errorf("gitlab.md does not name the %s webhook event (X-Gitlab-Event), which foureyes handles", code(ev))
		}
	}
	var quoted []string
	for _, p := range glforge.PolicyPaths {
		quoted = append(quoted, code(p))
	}
	if !strings.Contains(text, strings.Join(quoted, ", ")) {
		t.Errorf("gitlab.md does not give the policy lookup order %s", strings.Join(quoted, ", "))
	}
	for _, env := range settings(t) {
		if strings.HasPrefix(env, "FOUREYES_GITLAB_") && !strings.Contains(text, code(env)) {
			t.Errorf("gitlab.md does not document %s", code(env))
		}
	}
}

// settings reads the configuration keys from the settings table in
// cmd/foureyes/config.go, the only place that reads configuration.
func settings(t *testing.T) []string {
	t.Helper()
	path := filepath.Join(root, "cmd", "foureyes", "config.go")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`\{"(FOUREYES_[A-Z0-9_]+)",\s*(?:true|false),`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		out = append(out, m[1])
	}
	if len(out) < 10 {
		t.Fatalf("%s: found %d settings; has the settings table changed shape? (this test reads it)", path, len(out))
	}
	return out
}

// --- operations.md -----------------------------------------------------------

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func alertNames(t *testing.T) (names []string, runbooks map[string]string) {
	t.Helper()
	path := filepath.Join(root, "deploy", "prometheus", "rules.yml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	runbooks = map[string]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				names = append(names, r.Alert)
				runbooks[r.Alert] = r.Annotations["runbook_url"]
			}
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s: no alerts", path)
	}
	return names, runbooks
}

// TestOperationsRunbooks checks that every alert of
// deploy/prometheus/rules.yml has a runbook section in operations.md whose
// anchor is the lower-cased alert name (what its runbook_url points at),
// and that the Alerts section holds no runbook for an alert that is gone.
func TestOperationsRunbooks(t *testing.T) {
	d := readDoc(t, "operations.md")
	anchors := map[string]heading{}
	for _, h := range d.headings() {
		anchors[h.anchor] = h
	}
	names, runbooks := alertNames(t)
	for _, a := range names {
		want := strings.ToLower(a)
		h, ok := anchors[want]
		switch {
		case !ok:
			t.Errorf("operations.md has no heading for alert %s (want \"### %s\", anchor #%s)", a, a, want)
		case h.text != a:
			t.Errorf("operations.md:%d: heading %q has anchor #%s; write it as \"### %s\"", h.line, h.text, want, a)
		}
		if u := runbooks[a]; !strings.HasSuffix(u, "docs/operations.md#"+want) {
			t.Errorf("alert %s: runbook_url %q does not point at docs/operations.md#%s", a, u, want)
		}
	}
	inAlerts := false
	for _, h := range d.headings() {
		if h.level <= 2 {
			inAlerts = h.text == "Alerts"
			continue
		}
		if inAlerts && h.level == 3 && !slices.Contains(names, h.text) {
			t.Errorf("operations.md:%d: runbook %q under Alerts matches no alert in deploy/prometheus/rules.yml", h.line, h.text)
		}
	}
}

// collectors captures what metrics.New registers, to read each metric's
// labels from its descriptor.
type collectors struct{ list []prometheus.Collector }

func (c *collectors) Register(col prometheus.Collector) error {
	c.list = append(c.list, col)
	return nil
}
func (c *collectors) MustRegister(cols ...prometheus.Collector) { c.list = append(c.list, cols...) }
func (c *collectors) Unregister(prometheus.Collector) bool      { return false }

var descRE = regexp.MustCompile(`^Desc\{fqName: "([^"]+)",.*variableLabels: \{([^{}]*)\}\}$`)

// metricLabels returns each foureyes metric with its label names.
func metricLabels(t *testing.T) map[string][]string {
	t.Helper()
	var c collectors
	metrics.New(&c)
	out := map[string][]string{}
	for _, col := range c.list {
		ch := make(chan *prometheus.Desc, 16)
		go func() { col.Describe(ch); close(ch) }()
		for d := range ch {
			m := descRE.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read the name and labels of %s (has client_golang's Desc.String changed?)", d)
			}
			var labels []string
			for _, l := range strings.Split(m[2], ",") {
				if l = strings.TrimSpace(l); l != "" {
					l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")")
					labels = append(labels, l)
				}
			}
			out[m[1]] = labels
		}
	}
	return out
}

// TestOperationsMetrics checks that operations.md documents every metric
// foureyes exports, with its labels, in the metrics table, and no metric
// that does not exist.
func TestOperationsMetrics(t *testing.T) {
	d := readDoc(t, "operations.md")
	names := metrics.New(prometheus.NewRegistry()).Names()
	labels := metricLabels(t)
	if len(names) == 0 {
		t.Fatal("metrics.New registers no metric")
	}
	rows := map[string][]string{}
	for _, row := range tableRows(d.section(t, "Metrics")) {
		name := strings.Trim(row[0], "`")
		if !strings.HasPrefix(name, "foureyes_") {
			continue
		}
		if !slices.Contains(names, name) {
			t.Errorf("operations.md documents metric %s, which foureyes does not export", row[0])
		}
		rows[name] = row
	}
	for _, n := range names {
		row, ok := rows[n]
		if !ok {
			t.Errorf("operations.md metrics table has no row for %s", code(n))
			continue
		}
		line := strings.Join(row, " | ")
		for _, l := range labels[n] {
			if !strings.Contains(line, code(l)) {
				t.Errorf("operations.md: the row of %s does not name its label %s", code(n), code(l))
			}
		}
	}
}

// --- links -------------------------------------------------------------------

var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestLinks checks the relative links of these documents: the file exists
// and, for a link into a Markdown file, the anchor is one of its headings.
func TestLinks(t *testing.T) {
	anchorsOf := map[string]map[string]bool{}
	anchors := func(path string) map[string]bool {
		if a, ok := anchorsOf[path]; ok {
			return a
		}
		a := map[string]bool{}
		for _, h := range readDoc(t, path).headings() {
			a[h.anchor] = true
		}
		anchorsOf[path] = a
		return a
	}
	for _, name := range []string{"policy.md", "gitlab.md", "operations.md", "scan.md"} {
		d := readDoc(t, name)
		for i, l := range d.lines {
			if !d.prose[i] {
				continue
			}
			for _, m := range linkRE.FindAllStringSubmatch(l, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				file, frag, _ := strings.Cut(target, "#")
				path := name
				if file != "" {
					path = filepath.Clean(file)
					if _, err := os.Stat(path); err != nil {
						t.Errorf("%s:%d: link to %s: %v", name, i+1, target, err)
						continue
					}
				}
				if frag != "" && strings.HasSuffix(path, ".md") && !anchors(path)[frag] {
					t.Errorf("%s:%d: link to %s: %s has no heading with anchor #%s", name, i+1, target, path, frag)
				}
			}
		}
	}
}

// TestOperationsClaimsMatchTheCode pins the operations guide's claims about
// start-up validation, retention and the dead-letter alert to the code and
// rules they describe, so a change to either shows up here.
func TestOperationsClaimsMatchTheCode(t *testing.T) {
	ops := strings.Join(readDoc(t, "operations.md").lines, "\n")
	serve, err := os.ReadFile(filepath.Join(root, "cmd", "foureyes", "serve.go"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(serve)

	// The default policy file is parsed at start and an error stops it.
	if !regexp.MustCompile(`policies\.Parse\(cfg\.DefaultPolicyFile`).MatchString(src) {
		t.Fatal("serve.go no longer parses FOUREYES_DEFAULT_POLICY_FILE at start: fix operations.md")
	}
	if strings.Contains(ops, "not validated") || !strings.Contains(ops, "`FOUREYES_DEFAULT_POLICY_FILE` is read and validated at start") {
		t.Error("operations.md must say FOUREYES_DEFAULT_POLICY_FILE is validated at start")
	}

	// Finished deliveries are purged after the retention serve.go sets.
	m := regexp.MustCompile(`keepDone = (\d+) \* 24 \* time\.Hour`).FindStringSubmatch(src)
	if m == nil {
		t.Fatal("serve.go has no keepDone retention: fix operations.md")
	}
	if !strings.Contains(ops, "Finished deliveries are kept for "+m[1]+" days") || strings.Contains(ops, "nothing purges") {
		t.Errorf("operations.md must say finished deliveries are purged after %s days", m[1])
	}

	// The dead-letter alert's own text names the command the runbook gives.
	rules, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rules), "foureyes audit dead") {
		t.Fatal("rules.yml no longer names `foureyes audit dead`")
	}
	if strings.Contains(ops, "alert text mentions `foureyes audit list`") {
		t.Error("operations.md says the alert text names `foureyes audit list`; it names `foureyes audit dead`")
	}
}
