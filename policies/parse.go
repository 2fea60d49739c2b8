package policies

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// MaxSize is the largest policy file Parse accepts. Real policies are a few
// kilobytes; the cap keeps a hostile file in a repository from costing the
// server more than a moment.
const MaxSize = 1 << 20

// maxNodes bounds the nodes visited while walking the document. Aliases let
// a small file reference one large list many times; the bound keeps that from
// turning into an unbounded number of compiled globs.
const maxNodes = 1 << 20

// The keys each section accepts, in the order the SPEC documents them: the
// order is used when listing them in a message.
var (
	topKeys        = []string{"version", "categories", "exempt", "review", "release", "break_glass"}
	categoryKeys   = []string{"paths", "ignore", "approvals", "reviewers"}
	reviewersKeys  = []string{"teams", "users"}
	reviewKeys     = []string{"allow_author", "allow_committers", "allow_last_pusher", "dismiss_stale", "ignore_base_updates", "count_bots", "min_permission", "changes_requested_blocks"}
	releaseKeys    = []string{"branches", "tags", "late_window", "alert"}
	alertKeys      = []string{"issue", "labels"}
	breakGlassKeys = []string{"approvers", "required", "reason"}
	// "none" is a Permission but not a sensible minimum: it would let anyone
	// who can post a review approve.
	minPermissions = []string{"read", "triage", "write", "maintain", "admin"}
)

var (
	categoryNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	// Go durations without a sign, optionally led by a whole number of days.
	// schema.json carries the same pattern so editors and Parse agree.
	durationRE    = regexp.MustCompile(`^(0|[0-9]+d|([0-9]+d)?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`)
	yamlLineErrRE = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)
)

// Parse reads and validates a policy file (SPEC section 5). source names the
// file in diagnostics. On any problem it returns a *ParseError listing every
// problem found, each with its line and column; keys left out take the
// strict defaults.
func Parse(source string, data []byte) (*Policy, error) {
	p := &parser{source: source, budget: maxNodes}
	pol := p.parse(data)
	if len(p.diags) > 0 {
		sort.SliceStable(p.diags, func(i, j int) bool {
			a, b := p.diags[i], p.diags[j]
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Column < b.Column
		})
		return nil, &ParseError{Diagnostics: p.diags}
	}
	sum := sha256.Sum256(data)
	pol.Source = source
	pol.Digest = hex.EncodeToString(sum[:])
	return pol, nil
}

type parser struct {
	source string
	diags  []Diagnostic
	budget int
}

// errBudget unwinds the walk when the node budget is spent; parse recovers
// it and nothing else, so genuine bugs still crash loudly in tests.
type errBudget struct{}

func (p *parser) parse(data []byte) (pol *Policy) {
	if len(data) > MaxSize {
		p.add(1, 1, "", fmt.Sprintf("policy file is %d bytes; the limit is %d", len(data), MaxSize))
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.add(1, 1, "", `policy file is empty; it needs at least "version: 1"`)
		} else {
			p.syntax(err, data)
		}
		return nil
	}
	// A stray "---" at the end is harmless; a second document with content
	// would be ignored by a lenient reader, so it is refused rather than
	// letting its rules silently not apply.
	for {
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p.syntax(err, data)
			break
		}
		if len(extra.Content) > 0 && !isEmpty(extra.Content[0]) {
			p.add(extra.Line, extra.Column, "", "policy file holds more than one YAML document; only one is allowed")
			break
		}
	}

	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(errBudget); !ok {
				panic(r)
			}
			p.add(1, 1, "", "policy file is too complex: too many values once aliases are expanded")
			pol = nil
		}
	}()
	if len(doc.Content) == 0 {
		p.add(1, 1, "", `policy file is empty; it needs at least "version: 1"`)
		return nil
	}
	root := p.deref(doc.Content[0])
	if isEmpty(root) {
		p.add(1, 1, "", `policy file is empty; it needs at least "version: 1"`)
		return nil
	}
	if root.Kind != yaml.MappingNode {
		p.add(root.Line, root.Column, "", fmt.Sprintf(`policy file must be a mapping of keys starting with "version: 1", got %s`, describe(root)))
		return nil
	}
	return p.policy(root)
}

// syntax turns a yaml.v3 error into a diagnostic. yaml.v3 reports a line
// but no column; errors about the byte stream carry neither, so for those
// the offending byte is located here.
func (p *parser) syntax(err error, data []byte) {
	msg := err.Error()
	if m := yamlLineErrRE.FindStringSubmatch(msg); m != nil {
		line, convErr := strconv.Atoi(m[1])
		if convErr != nil || line < 1 {
			line = 1
		}
		if col, ok := tabColumn(data, line); ok {
			// yaml.v3 only says "found character that cannot start any
			// token"; the usual cause is a tab, which YAML forbids in
			// indentation and editors hide.
			p.add(line, col, "", "YAML syntax error: a tab character; YAML indents with spaces, never tabs")
			return
		}
		p.add(line, 1, "", "YAML syntax error: "+m[2])
		return
	}
	line, col := firstUnprintable(data)
	p.add(line, col, "", "YAML syntax error: "+strings.TrimPrefix(msg, "yaml: "))
}

// tabColumn returns the 1-based column of the first tab in the leading
// white space of line (1-based) of data.
func tabColumn(data []byte, line int) (int, bool) {
	lines := strings.SplitN(string(data), "\n", line+1)
	if line > len(lines) {
		return 0, false
	}
	l := lines[line-1]
	for i := 0; i < len(l); i++ {
		switch l[i] {
		case '\t':
			return i + 1, true
		case ' ':
		default:
			return 0, false
		}
	}
	return 0, false
}

// firstUnprintable returns the 1-based position of the first byte YAML
// rejects (invalid UTF-8 or a control character), or 1:1 when there is none.
func firstUnprintable(data []byte) (line, col int) {
	line, col = 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if (r == utf8.RuneError && size <= 1) || !yamlPrintable(r) {
			return line, col
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return 1, 1
}

// yamlPrintable is YAML 1.2's c-printable set (plus the BOM).
func yamlPrintable(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r' || r == 0x85:
		return true
	case r >= 0x20 && r <= 0x7e:
		return true
	case r >= 0xa0 && r <= 0xd7ff, r >= 0xe000 && r <= 0xfffd, r >= 0x10000 && r <= 0x10ffff:
		return true
	}
	return false
}

// isEmpty reports whether a document holds nothing but comments or null.
func isEmpty(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func (p *parser) add(line, col int, key, msg string) {
	p.diags = append(p.diags, Diagnostic{File: p.source, Line: line, Column: col, Key: key, Message: msg})
}

func (p *parser) errorf(n *yaml.Node, key, format string, args ...any) {
	p.add(n.Line, n.Column, key, fmt.Sprintf(format, args...))
}

// deref follows aliases and charges the node budget.
func (p *parser) deref(n *yaml.Node) *yaml.Node {
	p.budget--
	if p.budget < 0 {
		panic(errBudget{})
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func (p *parser) policy(root *yaml.Node) *Policy {
	pol := &Policy{
		Version: 1,
		Review: Review{
			DismissStale:           true,
			IgnoreBaseUpdates:      true,
			MinPermission:          PermissionWrite,
			ChangesRequestedBlocks: true,
		},
		Release: defaultRelease(),
	}
	hasVersion := false
	p.fields(root, "", topKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "version":
			hasVersion = true
			if n, ok := p.int(v, key); ok && n != 1 {
				p.errorf(v, key, `version: unsupported version %d; only "version: 1" is defined`, n)
			}
		case "categories":
			pol.Categories = p.categories(v, key)
		case "exempt":
			pol.Exempt = p.globs(v, key)
		case "review":
			p.review(v, key, &pol.Review)
		case "release":
			p.release(v, key, &pol.Release)
		case "break_glass":
			pol.BreakGlass = p.breakGlass(k, v, key)
		}
	})
	if !hasVersion {
		p.add(root.Line, root.Column, "version", `missing required key "version"; add "version: 1" at the top of the file`)
	}
	return pol
}

func defaultRelease() Release {
	return Release{
		Branches:        []Glob{MustCompileGlob("release/**")},
		DefaultBranches: true,
		Tags:            []Glob{MustCompileGlob("v*")},
		LateWindow:      24 * time.Hour,
		Alert:           Alert{Issue: true, Labels: []string{"foureyes", "unreviewed-push"}},
	}
}

// entries walks a mapping whose keys are the caller's to judge, after
// checking what every mapping must satisfy: plain scalar keys, no merge
// keys, no duplicates. It reports false when n is not a mapping.
func (p *parser) entries(n *yaml.Node, path, what string, each func(k, v *yaml.Node)) bool {
	n = p.deref(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(n, path, "%s: expected %s, got %s", path, what, describe(n))
		return false
	}
	var seen map[string]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := p.deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, path, "keys%s must be plain names, got %s", in(path), describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			p.errorf(k, join(path, k.Value), `merge keys ("<<") are not supported in policy files; write the keys out`)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.errorf(k, join(path, k.Value), "duplicate key %q%s (first at line %d)", clip(k.Value), in(path), first.Line)
			continue
		}
		if seen == nil {
			seen = make(map[string]*yaml.Node, len(n.Content)/2)
		}
		seen[k.Value] = k
		each(k, v)
	}
	return true
}

// in is the " in SECTION" phrase of a message; nothing at the top level.
func in(path string) string {
	if path == "" {
		return ""
	}
	return " in " + path
}

// fields walks a mapping with a fixed set of keys, reporting unknown ones
// with the closest valid key as a suggestion.
func (p *parser) fields(n *yaml.Node, path string, valid []string, each func(key string, k, v *yaml.Node)) bool {
	return p.entries(n, path, "a mapping", func(k, v *yaml.Node) {
		for _, name := range valid {
			if k.Value == name {
				each(name, k, v)
				return
			}
		}
		p.errorf(k, join(path, k.Value), "%s", unknownKey(k.Value, path, valid))
	})
}

func unknownKey(key, path string, valid []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "unknown key %q%s", clip(key), in(path))
	if s := suggest(key, valid); s != "" {
		fmt.Fprintf(&b, "; did you mean %q?", s)
	} else {
		fmt.Fprintf(&b, "; valid keys are %s", strings.Join(valid, ", "))
	}
	return b.String()
}

func (p *parser) categories(n *yaml.Node, path string) []Category {
	var cats []Category
	p.entries(n, path, "a mapping of category names", func(k, v *yaml.Node) {
		name := k.Value
		cpath := join(path, name)
		switch {
		case !categoryNameRE.MatchString(name):
			p.errorf(k, cpath, `invalid category name %q: use only letters, digits, "_" and "-"`, clip(name))
		case strings.EqualFold(name, UncategorizedName):
			p.errorf(k, cpath, "category name %q is reserved for files in no category", name)
		}
		c := Category{Name: name, Approvals: 1}
		hasPaths := false
		isMap := p.fields(v, cpath, categoryKeys, func(key string, _, v *yaml.Node) {
			kpath := join(cpath, key)
			switch key {
			case "paths":
				hasPaths = true
				c.Paths = p.globs(v, kpath)
				if vv := p.deref(v); vv.Kind == yaml.SequenceNode && len(vv.Content) == 0 {
					p.errorf(vv, kpath, "%s: must list at least one glob; a category without paths matches nothing", kpath)
				}
			case "ignore":
				c.Ignore = p.globs(v, kpath)
			case "approvals":
				c.Approvals = p.count(v, kpath, 0)
				if c.Approvals > MaxApprovals {
					p.errorf(p.deref(v), kpath, "%s: at most %d approvals can be required, got %d", kpath, MaxApprovals, c.Approvals)
				}
			case "reviewers":
				c.Reviewers = p.reviewers(v, kpath)
			}
		})
		if isMap && !hasPaths {
			p.errorf(k, cpath, "%s: missing required key \"paths\"", cpath)
		}
		cats = append(cats, c)
	})
	return cats
}

func (p *parser) reviewers(n *yaml.Node, path string) Reviewers {
	var r Reviewers
	p.fields(n, path, reviewersKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "teams":
			kpath := join(path, key)
			r.Teams = p.strings(v, kpath)
			if seq := p.deref(v); seq.Kind == yaml.SequenceNode {
				for i, item := range seq.Content {
					item = p.deref(item)
					if t := item.Value; item.Kind == yaml.ScalarNode && t != "" && !validTeam(t) {
						p.errorf(item, index(kpath, i), "%s: team %q needs its organization or parent group: write ORG/TEAM (GitHub) or GROUP/SUBGROUP (GitLab), e.g. \"acme/%s\"", index(kpath, i), t, strings.Trim(t, "/"))
					}
				}
			}
		case "users":
			r.Users = p.strings(v, join(path, key))
		}
	})
	return r
}

func (p *parser) review(n *yaml.Node, path string, r *Review) {
	p.fields(n, path, reviewKeys, func(key string, _, v *yaml.Node) {
		kpath := join(path, key)
		switch key {
		case "allow_author":
			p.bool(v, kpath, &r.AllowAuthor)
		case "allow_committers":
			p.bool(v, kpath, &r.AllowCommitters)
		case "allow_last_pusher":
			p.bool(v, kpath, &r.AllowLastPusher)
		case "dismiss_stale":
			p.bool(v, kpath, &r.DismissStale)
		case "ignore_base_updates":
			p.bool(v, kpath, &r.IgnoreBaseUpdates)
		case "count_bots":
			p.bool(v, kpath, &r.CountBots)
		case "changes_requested_blocks":
			p.bool(v, kpath, &r.ChangesRequestedBlocks)
		case "min_permission":
			s, ok := p.string(v, kpath)
			if !ok {
				return
			}
			for _, name := range minPermissions {
				if s == name {
					r.MinPermission, _ = ParsePermission(s)
					return
				}
			}
			msg := fmt.Sprintf("%s: unknown permission %q", kpath, clip(s))
			if sug := suggest(s, minPermissions); sug != "" {
				msg += fmt.Sprintf("; did you mean %q?", sug)
			}
			p.errorf(p.deref(v), kpath, "%s (valid: %s)", msg, strings.Join(minPermissions, ", "))
		}
	})
}

func (p *parser) release(n *yaml.Node, path string, r *Release) {
	p.fields(n, path, releaseKeys, func(key string, _, v *yaml.Node) {
		kpath := join(path, key)
		switch key {
		case "branches":
			// Listing branches replaces the default set, default branch
			// included: the file then says exactly what is watched.
			r.Branches = p.globs(v, kpath)
			r.DefaultBranches = false
		case "tags":
			r.Tags = p.globs(v, kpath)
		case "late_window":
			s, ok := p.string(v, kpath)
			if !ok {
				return
			}
			if strings.HasPrefix(s, "-") {
				p.errorf(p.deref(v), kpath, "%s: must not be negative, got %q", kpath, clip(s))
				return
			}
			d, err := parseDuration(s)
			if err != nil {
				p.errorf(p.deref(v), kpath, "%s: %v", kpath, err)
				return
			}
			r.LateWindow = d
		case "alert":
			p.fields(v, kpath, alertKeys, func(key string, _, v *yaml.Node) {
				apath := join(kpath, key)
				switch key {
				case "issue":
					p.bool(v, apath, &r.Alert.Issue)
				case "labels":
					r.Alert.Labels = p.strings(v, apath)
				}
			})
		}
	})
}

func (p *parser) breakGlass(k, n *yaml.Node, path string) *BreakGlass {
	bg := &BreakGlass{Required: 2, Reason: true}
	hasApprovers := false
	isMap := p.fields(n, path, breakGlassKeys, func(key string, _, v *yaml.Node) {
		kpath := join(path, key)
		switch key {
		case "approvers":
			hasApprovers = true
			bg.Approvers = p.reviewers(v, kpath)
			if vv := p.deref(v); vv.Kind == yaml.MappingNode && bg.Approvers.Empty() {
				p.errorf(vv, kpath, "%s: must name at least one team or user", kpath)
			}
		case "required":
			bg.Required = p.count(v, kpath, 2)
		case "reason":
			p.bool(v, kpath, &bg.Reason)
		}
	})
	if isMap && !hasApprovers {
		p.errorf(k, path, "%s: missing required key \"approvers\"; name who may break the glass", path)
	}
	return bg
}

// parseDuration accepts Go durations and a leading whole number of days
// ("7d", "1d12h"), since release windows are naturally written in days.
func parseDuration(s string) (time.Duration, error) {
	if !durationRE.MatchString(s) {
		return 0, fmt.Errorf("invalid duration %q: write a Go duration such as 24h or 90m, or days such as 7d", clip(s))
	}
	tooLong := fmt.Errorf("duration %q is too long", s)
	rest := s
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n > int64(maxDuration/(24*time.Hour)) {
			return 0, tooLong
		}
		days = time.Duration(n) * 24 * time.Hour
		rest = s[i+1:]
		if rest == "" {
			return days, nil
		}
	}
	// The pattern already holds, so the only failure left is overflow.
	d, err := time.ParseDuration(rest)
	if err != nil || d > maxDuration-days {
		return 0, tooLong
	}
	return days + d, nil
}

const maxDuration = time.Duration(1<<63 - 1)

// count reads a non-negative integer no smaller than minimum.
// MaxApprovals bounds categories.*.approvals: a larger number is a typo
// (no team approves a change 500 times) that would make a category
// impossible to satisfy.
const MaxApprovals = 100

// validTeam reports whether t names a team with its organization
// ("acme/sre") or a GitLab subgroup path ("group/sub/team"): a bare "sre"
// cannot be looked up and would never match anyone.
func validTeam(t string) bool {
	org, team, ok := strings.Cut(t, "/")
	return ok && org != "" && team != "" && !strings.HasSuffix(team, "/") && !strings.Contains(team, "//")
}

func (p *parser) count(n *yaml.Node, path string, minimum int) int {
	v, ok := p.int(n, path)
	if !ok {
		return minimum
	}
	if v < minimum {
		if minimum == 2 {
			p.errorf(p.deref(n), path, "%s: must be at least 2 (two-person rule), got %d", path, v)
		} else {
			p.errorf(p.deref(n), path, "%s: must be %d or more, got %d", path, minimum, v)
		}
		return minimum
	}
	return v
}

func (p *parser) int(n *yaml.Node, path string) (int, bool) {
	n = p.deref(n)
	var v int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		p.errorf(n, path, "%s: expected an integer, got %s", path, describe(n))
		return 0, false
	}
	return v, true
}

func (p *parser) bool(n *yaml.Node, path string, dst *bool) {
	n = p.deref(n)
	var v bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		p.errorf(n, path, "%s: expected true or false, got %s", path, describe(n))
		return
	}
	*dst = v
}

// string reads a non-empty string. Only scalars YAML types as strings are
// accepted: an unquoted 123 or true is almost always a slip, and quoting it
// says what was meant.
func (p *parser) string(n *yaml.Node, path string) (string, bool) {
	n = p.deref(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		p.errorf(n, path, "%s: expected a string, got %s", path, describe(n))
		return "", false
	}
	if n.Value == "" {
		p.errorf(n, path, "%s: must not be empty", path)
		return "", false
	}
	return n.Value, true
}

// seq checks n is a list, pointing at the fix when a single value was given.
func (p *parser) seq(n *yaml.Node, path, what string) (*yaml.Node, bool) {
	n = p.deref(n)
	if n.Kind != yaml.SequenceNode {
		msg := fmt.Sprintf("%s: expected a list of %s, got %s", path, what, describe(n))
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
			msg += fmt.Sprintf("; write [%q]", n.Value)
		}
		p.errorf(n, path, "%s", msg)
		return nil, false
	}
	return n, true
}

func (p *parser) strings(n *yaml.Node, path string) []string {
	n, ok := p.seq(n, path, "strings")
	if !ok {
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		if s, ok := p.string(item, index(path, i)); ok {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) globs(n *yaml.Node, path string) []Glob {
	n, ok := p.seq(n, path, "globs")
	if !ok {
		return nil
	}
	out := make([]Glob, 0, len(n.Content))
	for i, item := range n.Content {
		ipath := index(path, i)
		s, ok := p.string(item, ipath)
		if !ok {
			continue
		}
		item = p.deref(item)
		// Changed paths and ref names are never written with these prefixes,
		// so such a glob would silently match nothing and let files fall
		// through to a weaker category.
		switch {
		case strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./"):
			p.errorf(item, ipath, "%s: glob %q can never match: paths are relative to the repository root; write %q", ipath, s, strings.TrimLeft(strings.TrimPrefix(s, "."), "/"))
			continue
		case strings.HasPrefix(s, "!"):
			p.errorf(item, ipath, "%s: glob %q: negation is not supported; list exclusions under a category's ignore", ipath, s)
			continue
		}
		g, err := CompileGlob(s)
		if err != nil {
			p.errorf(item, ipath, "%s: %v", ipath, err)
			continue
		}
		out = append(out, g)
	}
	return out
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.DocumentNode:
		return "a document"
	case yaml.AliasNode:
		return "an alias"
	}
	v := clip(n.Value)
	switch n.ShortTag() {
	case "!!str":
		return fmt.Sprintf("string %q", v)
	case "!!int":
		return "integer " + v
	case "!!float":
		return "number " + v
	case "!!bool":
		return "boolean " + v
	case "!!null":
		return "no value (null)"
	case "!!timestamp":
		return "date " + v
	}
	return fmt.Sprintf("%s %q", n.ShortTag(), v)
}

// clip shortens a value quoted back in a message, so a hostile file cannot
// make its own diagnostics huge.
func clip(s string) string {
	const limit = 40
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	return string([]rune(s)[:limit]) + "..."
}

// suggest returns the candidate closest to s by edit distance, or "" when
// none is close enough to be a plausible typo.
func suggest(s string, candidates []string) string {
	ls := strings.ToLower(s)
	best, bestD := "", -1
	for _, c := range candidates {
		d := levenshtein(ls, c)
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD > max(2, len(best)/3) || bestD >= len(best) {
		return ""
	}
	return best
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// FormatDuration writes d the way a policy file would, without Go's zero
// parts ("24h", not "24h0m0s"; "1h30m"; two or more whole days as "7d"), so a
// report repeats the policy's own words. It round-trips through the policy
// duration parser.
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	var b strings.Builder
	const day = 24 * time.Hour
	if d%day == 0 && d >= 2*day {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + u.name)
			d -= n * u.unit
		}
	}
	if d > 0 {
		// Below a second: rare in a policy; Go's form is exact.
		b.WriteString(d.String())
	}
	return b.String()
}
