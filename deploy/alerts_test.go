package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/foureyes-dev/foureyes/metrics"
)

const (
	rulesFile      = "prometheus/rules.yml"
	rulesTestFile  = "prometheus/rules_test.yml"
	promRuleFile   = "kubernetes/prometheusrule.yaml"
	runbookAddress = "docs/operations.md#"
)

type rule struct {
	Alert         string            `yaml:"alert,omitempty"`
	Record        string            `yaml:"record,omitempty"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for,omitempty"`
	KeepFiringFor string            `yaml:"keep_firing_for,omitempty"`
	Labels        map[string]string `yaml:"labels,omitempty"`
	Annotations   map[string]string `yaml:"annotations,omitempty"`
}

type ruleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Rules    []rule `yaml:"rules"`
}

type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type prometheusRule struct {
	object `yaml:",inline"`
	Spec   ruleFile `yaml:"spec"`
}

// loadRules reads both rule files, strictly: an unknown key (a misspelt
// "annotation:") is an error rather than a rule that silently lacks it.
func loadRules(t *testing.T) (plain, operator ruleFile) {
	t.Helper()
	plain = decodeOne[ruleFile](t, rulesFile, true)
	pr := decodeOne[prometheusRule](t, promRuleFile, true)
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		t.Errorf("%s: %s %s, want monitoring.coreos.com/v1 PrometheusRule", promRuleFile, pr.APIVersion, pr.Kind)
	}
	return plain, pr.Spec
}

func alerts(f ruleFile) map[string]rule {
	m := map[string]rule{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			m[r.Alert] = r
		}
	}
	return m
}

func TestRuleFilesInSync(t *testing.T) {
	plain, operator := loadRules(t)
	if reflect.DeepEqual(plain, operator) {
		return
	}
	a, b := alerts(plain), alerts(operator)
	for name, r := range a {
		o, ok := b[name]
		switch {
		case !ok:
			t.Errorf("alert %s is in %s but not in %s", name, rulesFile, promRuleFile)
		case strings.Join(strings.Fields(r.Expr), " ") != strings.Join(strings.Fields(o.Expr), " "):
			t.Errorf("alert %s: expressions differ:\n%s\n%s", name, r.Expr, o.Expr)
		case !reflect.DeepEqual(r, o):
			t.Errorf("alert %s differs between the files:\n%+v\n%+v", name, r, o)
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			t.Errorf("alert %s is in %s but not in %s", name, promRuleFile, rulesFile)
		}
	}
	t.Errorf("%s and %s differ (groups, order or fields); regenerate the PrometheusRule as its header says", rulesFile, promRuleFile)
}

// family is what the rules may reference of one metric family.
type family struct {
	labels    map[string]bool
	histogram bool
}

// exported lists the metric families of package metrics with their label
// names. Names() is the authority on which families exist; the labels come
// from the collectors' descriptors, found by walking the exported fields of
// *Metrics (the descriptor's String form is the only place client_golang
// exposes variable label names).
func exported(t *testing.T) map[string]family {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry())
	fams := map[string]family{}
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		if !v.Type().Field(i).IsExported() {
			continue
		}
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok {
			continue
		}
		_, isHist := c.(*prometheus.HistogramVec)
		if _, ok := c.(prometheus.Histogram); ok {
			isHist = true
		}
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			name, labels := parseDesc(t, d.String())
			fams[name] = family{labels: labels, histogram: isHist}
		}
	}
	names := m.Names()
	if len(names) == 0 {
		t.Fatal("metrics.Names() is empty")
	}
	for _, n := range names {
		if _, ok := fams[n]; !ok {
			// A family this walk did not find: its labels are unknown,
			// so accept any rather than fail on a collector kind.
			fams[n] = family{}
		}
	}
	for n := range fams {
		if !slices.Contains(names, n) {
			delete(fams, n)
		}
	}
	return fams
}

var descLabels = regexp.MustCompile(`(?:constLabels: \{(.*?)\}, )?variableLabels: \{([^{}]*)\}\}$`)

func parseDesc(t *testing.T, s string) (string, map[string]bool) {
	t.Helper()
	q, err := strconv.QuotedPrefix(strings.TrimPrefix(s, "Desc{fqName: "))
	if err != nil {
		t.Fatalf("cannot read descriptor %q: %v", s, err)
	}
	name, _ := strconv.Unquote(q)
	m := descLabels.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("cannot read the labels of descriptor %q (has client_golang's format changed?)", s)
	}
	labels := map[string]bool{}
	for _, l := range strings.Split(m[2], ",") {
		l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")")
		if l != "" {
			labels[l] = true
		}
	}
	return name, labels
}

// --- A small PromQL scanner -------------------------------------------------
//
// The rules are checked without a PromQL parser: github.com/prometheus/
// prometheus would pull a large dependency tree into the module for one
// test, and `promtool check rules` (run below when installed) is the real
// parser. The scanner knows enough of the lexical grammar to be exact
// about what it extracts: string literals ("…", '…', `…`) are skipped, so a
// label value such as job="foureyes_x" is not taken for a metric;
// identifiers are read whole, so a metric name is never a substring of a
// longer one; and a name followed by "{" has its label matchers read.

type selector struct {
	metric   string
	matchers [][3]string // label, operator, value
}

type scan struct {
	selectors  []selector // every identifier starting with foureyes_
	calls      []string   // identifiers directly followed by "("
	comparison bool       // a comparison operator outside braces
	durations  []string   // range and subquery durations
	errs       []string
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdent(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// skipString returns the index after the string literal starting at i.
func skipString(s string, i int) (int, bool) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, true
		}
	}
	return len(s), false
}

func scanExpr(expr string) scan {
	var sc scan
	var stack []byte
	closing := map[byte]byte{')': '(', ']': '[', '}': '{'}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j, ok := skipString(expr, i)
			if !ok {
				sc.errs = append(sc.errs, "unterminated string")
			}
			i = j
		case c == '#':
			// A comment runs to the end of the line.
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			id := expr[i:j]
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\t' || expr[k] == '\n') {
				k++
			}
			if strings.HasPrefix(id, "foureyes_") {
				sel := selector{metric: id}
				if k < len(expr) && expr[k] == '{' {
					end, ms, err := scanMatchers(expr, k)
					if err != "" {
						sc.errs = append(sc.errs, err)
					}
					sel.matchers = ms
					j = end
				}
				sc.selectors = append(sc.selectors, sel)
			} else if k < len(expr) && expr[k] == '(' {
				sc.calls = append(sc.calls, id)
			} else if rest := expr[k:]; strings.HasPrefix(rest, "by") || strings.HasPrefix(rest, "without") {
				// "sum by (l) (…)": the aggregation's parenthesis comes later.
				w := strings.TrimLeft(rest, "abcdefghijklmnopqrstuvwxyz")
				if (w == "" || !isIdent(w[0])) && (rest[:len(rest)-len(w)] == "by" || rest[:len(rest)-len(w)] == "without") {
					sc.calls = append(sc.calls, id)
				}
			}
			i = j
		case c == '[':
			end := strings.IndexByte(expr[i:], ']')
			if end < 0 {
				sc.errs = append(sc.errs, "unclosed [")
				return sc
			}
			r, step, _ := strings.Cut(expr[i+1:i+end], ":")
			sc.durations = append(sc.durations, strings.TrimSpace(r))
			if step = strings.TrimSpace(step); step != "" {
				sc.durations = append(sc.durations, step)
			}
			i += end + 1
		case c == '(' || c == '{':
			stack = append(stack, c)
			i++
		case c == ')' || c == '}' || c == ']':
			if len(stack) == 0 || stack[len(stack)-1] != closing[c] {
				sc.errs = append(sc.errs, "unbalanced "+string(c))
				return sc
			}
			stack = stack[:len(stack)-1]
			i++
		case c == '>' || c == '<':
			sc.comparison = true
			i++
		case (c == '=' || c == '!') && i+1 < len(expr) && expr[i+1] == '=':
			sc.comparison = true
			i += 2
		default:
			i++
		}
	}
	if len(stack) > 0 {
		sc.errs = append(sc.errs, "unclosed "+string(stack))
	}
	return sc
}

var matcherRE = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*`)

// scanMatchers reads `{label op "value", …}` starting at the brace.
func scanMatchers(s string, i int) (int, [][3]string, string) {
	var out [][3]string
	i++ // the brace
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\n' || s[i] == ',') {
			i++
		}
		if i >= len(s) {
			return i, out, "unclosed {"
		}
		if s[i] == '}' {
			return i + 1, out, ""
		}
		m := matcherRE.FindStringSubmatch(s[i:])
		if m == nil {
			return len(s), out, "bad label matcher at " + strconv.Quote(s[i:])
		}
		i += len(m[0])
		if i >= len(s) || (s[i] != '"' && s[i] != '\'' && s[i] != '`') {
			return len(s), out, "label " + m[1] + ": value is not a string"
		}
		end, ok := skipString(s, i)
		if !ok {
			return len(s), out, "unterminated string"
		}
		v, err := strconv.Unquote(s[i:end])
		if err != nil && s[i] == '\'' {
			v = s[i+1 : end-1]
		}
		out = append(out, [3]string{m[1], m[2], v})
		i = end
	}
}

// PromQL functions, aggregations and keywords that take parentheses; an
// identifier outside it in front of "(" is a typo ("incrase(").
var promqlCalls = map[string]bool{
	"abs": true, "absent": true, "absent_over_time": true, "avg": true, "avg_over_time": true,
	"bottomk": true, "ceil": true, "changes": true, "clamp": true, "clamp_max": true, "clamp_min": true,
	"count": true, "count_over_time": true, "count_values": true, "delta": true, "deriv": true,
	"floor": true, "group": true, "histogram_quantile": true, "idelta": true, "increase": true,
	"irate": true, "label_replace": true, "last_over_time": true, "max": true, "max_over_time": true,
	"min": true, "min_over_time": true, "predict_linear": true, "quantile": true,
	"quantile_over_time": true, "rate": true, "resets": true, "round": true, "scalar": true,
	"sort": true, "stddev": true, "sum": true, "sum_over_time": true, "time": true, "timestamp": true,
	"topk": true, "vector": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"and": true, "or": true, "unless": true, "offset": true, "bool": true,
}

var promDuration = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)

// Labels a scrape adds to every series (target labels); matching on them is
// legitimate though the metric does not declare them.
var targetLabels = map[string]bool{"job": true, "instance": true, "namespace": true, "pod": true, "service": true, "container": true, "endpoint": true}

// Values the code writes into enumerated labels.
var labelValues = map[string]map[string][]string{
	"foureyes_webhooks_received_total": {"result": {
		metrics.ResultAccepted, metrics.ResultDuplicate, metrics.ResultIgnored, metrics.ResultBadSignature,
		metrics.ResultBadRequest, metrics.ResultTooLarge, metrics.ResultBusy, metrics.ResultUnavailable,
	}},
	"foureyes_deliveries_processed_total": {"result": {metrics.ProcessedOK, metrics.ProcessedRetry, metrics.ProcessedDeadLetter}},
	"foureyes_evaluations_total":          {"verdict": {"success", "pending", "failure"}},
	"foureyes_unreviewed_commits_total":   {"reason": {"direct-push", "force-push", "stale-approval", "unapproved-merge"}},
}

var forges = []string{"github", "gitlab"}

// checkExpr reports every problem of one alert expression.
func checkExpr(t *testing.T, where, expr string, fams map[string]family) {
	t.Helper()
	if strings.Contains(expr, "{{") {
		t.Errorf("%s: template syntax in expr", where)
	}
	sc := scanExpr(expr)
	for _, e := range sc.errs {
		t.Errorf("%s: %s", where, e)
	}
	if !sc.comparison {
		t.Errorf("%s: no comparison operator: an alert fires on every series it returns", where)
	}
	if len(sc.selectors) == 0 {
		t.Errorf("%s: names no foureyes_ metric", where)
	}
	for _, c := range sc.calls {
		if !promqlCalls[c] {
			t.Errorf("%s: unknown function %s(", where, c)
		}
	}
	for _, d := range sc.durations {
		if !promDuration.MatchString(d) {
			t.Errorf("%s: bad duration [%s]", where, d)
		}
	}
	for _, sel := range sc.selectors {
		fam, ok := fams[sel.metric]
		name := sel.metric
		if !ok {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, cut := strings.CutSuffix(sel.metric, suffix); cut && fams[base].histogram {
					fam, ok, name = fams[base], true, base
				}
			}
		}
		if !ok {
			t.Errorf("%s: metric %s is not exported by package metrics", where, sel.metric)
			continue
		}
		for _, m := range sel.matchers {
			label, op, value := m[0], m[1], m[2]
			known := fam.labels == nil || fam.labels[label] || targetLabels[label] ||
				(label == "le" && strings.HasSuffix(sel.metric, "_bucket"))
			if !known {
				t.Errorf("%s: %s has no label %q", where, name, label)
			}
			allowed := labelValues[name][label]
			if label == "forge" {
				allowed = forges
			}
			if op == "=" && allowed != nil && !slices.Contains(allowed, value) {
				t.Errorf("%s: %s{%s=%q}: the code never writes that value (%v)", where, name, label, value, allowed)
			}
		}
	}
}

func TestAlertRules(t *testing.T) {
	plain, _ := loadRules(t) // the other file is identical (TestRuleFilesInSync)
	fams := exported(t)
	if len(plain.Groups) == 0 {
		t.Fatal("no rule groups")
	}
	seen := map[string]bool{}
	bySeverity := map[string]int{}
	for _, g := range plain.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: needs a name and rules", g.Name)
		}
		if g.Interval != "" && !promDuration.MatchString(g.Interval) {
			t.Errorf("group %s: bad interval %q", g.Name, g.Interval)
		}
		for _, r := range g.Rules {
			where := r.Alert
			if r.Alert == "" {
				t.Errorf("group %s: a rule without alert: (recording rules do not belong here): %q", g.Name, r.Expr)
				continue
			}
			if seen[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if !regexp.MustCompile(`^Foureyes[A-Z][A-Za-z]+$`).MatchString(r.Alert) {
				t.Errorf("alert %s: name it FoureyesSomething", r.Alert)
			}
			if !promDuration.MatchString(r.For) {
				t.Errorf("%s: for: %q, want an explicit duration (0m to fire at once)", where, r.For)
			}
			sev := r.Labels["severity"]
			if sev != "warning" && sev != "critical" {
				t.Errorf("%s: severity %q, want warning (soft) or critical (hard)", where, sev)
			}
			bySeverity[sev]++
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: annotation %s missing", where, a)
				}
			}
			if want := runbookAddress + strings.ToLower(r.Alert); !strings.HasSuffix(r.Annotations["runbook_url"], want) {
				t.Errorf("%s: runbook_url %q, want …%s", where, r.Annotations["runbook_url"], want)
			}
			checkExpr(t, where, r.Expr, fams)
		}
	}
	if bySeverity["warning"] == 0 || bySeverity["critical"] == 0 {
		t.Errorf("want soft (warning) and hard (critical) alerts, got %v", bySeverity)
	}

	// What the rules must cover (SPEC section 10, issue 7): an alert of the
	// given severity whose expression contains every fragment.
	all := alerts(plain)
	required := []struct {
		what     string
		severity string
		contains []string
	}{
		{"GitHub rate limit nearly spent", "warning", []string{`foureyes_forge_installation_rate_limit_remaining{forge="github"}`, "< 500", "by (forge, installation)"}},
		{"GitHub rate limit exhausted", "critical", []string{`foureyes_forge_installation_rate_limit_remaining{forge="github"}`, "< 100", "by (forge, installation)"}},
		{"queue depth (soft)", "warning", []string{"foureyes_queue_depth"}},
		{"queue depth (hard)", "critical", []string{"foureyes_queue_depth"}},
		{"queue age (soft)", "warning", []string{"foureyes_queue_oldest_age_seconds"}},
		{"queue age (hard)", "critical", []string{"foureyes_queue_oldest_age_seconds"}},
		{"dead-lettered deliveries", "critical", []string{"foureyes_queue_dead_letters", "> 0"}},
		{"unreviewed push to a release branch", "critical", []string{"increase(foureyes_unreviewed_commits_total[", "> 0"}},
		{"webhook bad signatures", "warning", []string{`result="bad_signature"`}},
		{"webhook bad signatures (hard)", "critical", []string{`result="bad_signature"`}},
		{"evaluation failures", "warning", []string{"foureyes_evaluations_total"}},
		{"evaluation latency", "warning", []string{"foureyes_evaluation_duration_seconds_bucket"}},
	}
	for _, req := range required {
		found := false
		for _, r := range all {
			if r.Labels["severity"] != req.severity {
				continue
			}
			ok := true
			for _, frag := range req.contains {
				ok = ok && strings.Contains(r.Expr, frag)
			}
			found = found || ok
		}
		if !found {
			t.Errorf("no %s alert for %s (expr containing %q)", req.severity, req.what, req.contains)
		}
	}
	// An unreviewed push is reported at once, not after a pending period.
	for _, r := range all {
		if strings.Contains(r.Expr, "foureyes_unreviewed_commits_total") && strings.Trim(r.For, "0smh") != "" {
			t.Errorf("%s: for: %s; an unreviewed push must alert at once (0m)", r.Alert, r.For)
		}
	}
}

// TestScanner pins the scanner on the cases it exists for.
func TestScanner(t *testing.T) {
	sc := scanExpr(`sum by (forge) (rate(foureyes_a_total{job="foureyes_not_a_metric", result=~"x|y"}[5m])) / foureyes_b > 0 # foureyes_comment`)
	var names []string
	for _, s := range sc.selectors {
		names = append(names, s.metric)
	}
	if !slices.Equal(names, []string{"foureyes_a_total", "foureyes_b"}) || !sc.comparison || len(sc.errs) > 0 {
		t.Errorf("names %v, comparison %v, errors %v", names, sc.comparison, sc.errs)
	}
	if !slices.Equal(sc.calls, []string{"sum", "by", "rate"}) || !slices.Equal(sc.durations, []string{"5m"}) {
		t.Errorf("calls %v durations %v", sc.calls, sc.durations)
	}
	if m := sc.selectors[0].matchers; len(m) != 2 || m[1] != [3]string{"result", "=~", "x|y"} {
		t.Errorf("matchers %v", m)
	}
	for _, bad := range []string{`sum(foureyes_a > 1`, `foureyes_a{x="1"]) > 1`, `foureyes_a{x="1} > 1`} {
		if sc := scanExpr(bad); len(sc.errs) == 0 {
			t.Errorf("%q: no error", bad)
		}
	}
	if sc := scanExpr(`foureyes_a{x=~"a"}`); sc.comparison {
		t.Error("=~ inside a selector taken for a comparison")
	}
}

// TestPromtool loads the rules with Prometheus' own parser and runs the
// unit tests in rules_test.yml, when promtool is installed (Debian package
// "prometheus").
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	if out, err := exec.Command(promtool, "check", "rules", rulesFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}

	// promtool compares annotations too, which the unit tests would have to
	// repeat word for word: run them against a copy without annotations.
	plain, _ := loadRules(t)
	for gi := range plain.Groups {
		for ri := range plain.Groups[gi].Rules {
			plain.Groups[gi].Rules[ri].Annotations = nil
		}
	}
	dir := t.TempDir()
	raw, err := yaml.Marshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yml"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules_test.yml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "test", "rules", "rules_test.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

type ruleTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestRuleUnitTestsNameRealAlerts: promtool passes a test of an alert that
// does not exist when it expects no alert, so check the names here.
func TestRuleUnitTestsNameRealAlerts(t *testing.T) {
	f := decodeOne[ruleTests](t, rulesTestFile, false)
	plain, _ := loadRules(t)
	all := alerts(plain)
	if !slices.Equal(f.RuleFiles, []string{"rules.yml"}) {
		t.Errorf("rule_files = %v, want [rules.yml]", f.RuleFiles)
	}
	n := 0
	for _, tc := range f.Tests {
		for _, a := range tc.AlertRuleTest {
			n++
			if _, ok := all[a.Alertname]; !ok {
				t.Errorf("%s tests alert %s, which rules.yml does not define", rulesTestFile, a.Alertname)
			}
		}
	}
	if n == 0 {
		t.Errorf("%s has no alert tests", rulesTestFile)
	}
}
