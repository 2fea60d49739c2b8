package main

import (
	"bytes"
	"flag"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/foureyes-dev/foureyes/release"
)

// docs/scan.md is checked against the code: every flag, the constants it
// quotes, the JSON keys and CSV columns, and its example summary line.

func readScanDoc(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../docs/scan.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// section returns the text from heading to the next heading of the same
// or a higher level (outside code blocks).
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("docs/scan.md has no heading %q", heading)
	}
	level := strings.Index(heading, " ")
	rest := doc[i+len(heading)+2:]
	var b strings.Builder
	fenced := false
	for _, l := range strings.SplitAfter(rest, "\n") {
		if strings.HasPrefix(l, "```") {
			fenced = !fenced
		}
		if !fenced {
			for k := 1; k <= level; k++ {
				if strings.HasPrefix(l, strings.Repeat("#", k)+" ") {
					return b.String()
				}
			}
		}
		b.WriteString(l)
	}
	return b.String()
}

// firstCell returns the first cell of a table row that starts with code
// (an escaped \| stays in the cell).
type cellMatcher struct{}

func (cellMatcher) FindStringSubmatch(l string) []string {
	if !strings.HasPrefix(l, "| `") {
		return nil
	}
	cells := strings.Split(strings.ReplaceAll(l, `\|`, "\x00"), "|")
	cell := strings.ReplaceAll(strings.TrimSpace(cells[1]), "\x00", `\|`)
	return []string{l, cell}
}

var flagCellRE cellMatcher
var flagNameRE = regexp.MustCompile(`--([a-z-]+)`)

// documentedFlags lists the flags in the first column of a section's tables.
func documentedFlags(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		m := flagCellRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		for _, f := range flagNameRE.FindAllStringSubmatch(m[1], -1) {
			if !slices.Contains(out, f[1]) {
				out = append(out, f[1])
			}
		}
	}
	slices.Sort(out)
	return out
}

func definedFlags(fs *flag.FlagSet) []string {
	var out []string
	fs.VisitAll(func(f *flag.Flag) { out = append(out, f.Name) })
	slices.Sort(out)
	return out
}

func TestScanDocFlags(t *testing.T) {
	doc := readScanDoc(t)
	fs, _ := scanFlags()
	if got, want := documentedFlags(section(t, doc, "## `foureyes scan`")), definedFlags(fs); !slices.Equal(got, want) {
		t.Errorf("docs/scan.md documents scan flags %v; scan has %v", got, want)
	}
	fs, _ = explainLiveFlags()
	if got, want := documentedFlags(section(t, doc, "## `foureyes explain` on a live change")), definedFlags(fs); !slices.Equal(got, want) {
		t.Errorf("docs/scan.md documents live explain flags %v; explain has %v", got, want)
	}
}

func TestScanDocConstants(t *testing.T) {
	doc := strings.Join(strings.Fields(readScanDoc(t)), " ")
	for _, claim := range []string{
		"When fewer than " + strconv.Itoa(defaultLowBudget) + " requests are left",
		"A window of more than " + strconv.Itoa(release.MaxScanCommits) + " commits is refused",
		"a scan of " + strconv.Itoa(minBarCommits) + " or more commits",
		"`FOUREYES_STATE_DIR` as `" + strings.TrimPrefix(scanStatePath("", "FORGE", "OWNER/NAME", "BRANCH"), "") + "`",
	} {
		if !strings.Contains(doc, strings.Join(strings.Fields(claim), " ")) {
			t.Errorf("docs/scan.md does not say %q", claim)
		}
	}
	for _, r := range []release.Reason{release.StaleApproval, release.UnapprovedMerge, release.DirectPush, release.Override} {
		if !strings.Contains(doc, "| `"+string(r)+"` |") {
			t.Errorf("docs/scan.md's verdict table lacks %s", r)
		}
	}
}

// The example's summary line is what the code prints for the example's
// verdicts.
func TestScanDocSummaryLine(t *testing.T) {
	doc := readScanDoc(t)
	block := section(t, doc, "## `foureyes scan`")
	start := strings.Index(block, "```console\n")
	end := strings.Index(block[start+1:], "\n```")
	example := block[start : start+1+end]
	var fds []release.Finding
	var line string
	inTable := false
	for _, l := range strings.Split(example, "\n") {
		switch {
		case strings.HasPrefix(l, "COMMIT"):
			inTable = true
		case inTable && strings.TrimSpace(l) == "":
			inTable = false
		case inTable:
			f := strings.Fields(l)
			fd := release.Finding{SHA: f[0], Author: "@x"}
			if f[3] != "reviewed" {
				fd.Reason = release.Reason(f[3])
			}
			fds = append(fds, fd)
		case strings.Contains(l, "commits independently reviewed"):
			line = l
		}
	}
	if len(fds) == 0 || line == "" {
		t.Fatalf("cannot read the example:\n%s", example)
	}
	if want := release.SummarizeScan(fds).Line(); line != want {
		t.Errorf("docs/scan.md's summary line\n%q\nthe code prints\n%q", line, want)
	}
}

func jsonKeys(typ reflect.Type) []string {
	var out []string
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

func TestScanDocJSONAndCSV(t *testing.T) {
	doc := readScanDoc(t)
	text := section(t, doc, "### Output formats")
	rows := map[string]string{}
	for _, l := range strings.Split(text, "\n") {
		if m := flagCellRE.FindStringSubmatch(l); m != nil {
			rows[m[1]] = l
		}
	}
	for _, k := range jsonKeys(reflect.TypeOf(scanReport{})) {
		found := false
		for cell := range rows {
			cell = strings.ReplaceAll(cell, "`", "")
			if slices.Contains(strings.Split(cell, ", "), k) {
				found = true
			}
		}
		if !found {
			t.Errorf("docs/scan.md's JSON table has no row for %q", k)
		}
	}
	commits := rows["`commits`"]
	for _, typ := range []reflect.Type{reflect.TypeOf(release.Finding{}), reflect.TypeOf(release.ChangeProof{}), reflect.TypeOf(release.CategoryProof{})} {
		for _, k := range jsonKeys(typ) {
			if !strings.Contains(commits, "`"+k+"`") {
				t.Errorf("docs/scan.md's commits row does not name %s.%s", typ.Name(), k)
			}
		}
	}
	var buf bytes.Buffer
	if err := writeScanCSV(&buf, scanReport{}); err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range strings.Split(strings.TrimSpace(buf.String()), ",") {
		cols = append(cols, "`"+c+"`")
	}
	if !strings.Contains(strings.Join(strings.Fields(text), " "), "the columns "+strings.Join(cols, ", ")+";") {
		t.Errorf("docs/scan.md does not list the CSV columns %v", cols)
	}
}
