package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/release"
)

// ScanSchemaVersion is the version of `scan --format json`. Fields are only
// ever added; a change of meaning bumps it.
const ScanSchemaVersion = 1

// scanReport is the JSON output of a scan.
type scanReport struct {
	SchemaVersion int                 `json:"schema_version"`
	Forge         string              `json:"forge"`
	Repo          string              `json:"repo"`
	Branch        string              `json:"branch"`
	Window        scanWindow          `json:"window"`
	Policy        scanPolicy          `json:"policy"`
	GeneratedAt   time.Time           `json:"generated_at"`
	Commits       []release.Finding   `json:"commits"`
	Summary       release.ScanSummary `json:"summary"`
	SummaryLine   string              `json:"summary_line"`
	// Requests is how many API requests this run made (a resumed run
	// counts its own only).
	Requests int64 `json:"requests"`
}

type scanWindow struct {
	// Since is the lower bound of the commit dates (zero with Last).
	Since time.Time `json:"since,omitzero"`
	// Last is the number of newest commits asked for (0 with Since).
	Last int `json:"last,omitempty"`
	// Spec is the window as given on the command line.
	Spec string `json:"spec"`
}

type scanPolicy struct {
	Source string `json:"source"`
	Digest string `json:"digest"`
	// WhatIf: judged by a candidate policy (--policy), not the branch's.
	WhatIf bool `json:"what_if"`
	// Error: the branch's own file is invalid; the built-in default was
	// used, as the release guard does.
	Error string `json:"error,omitempty"`
}

func cmdScan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return asExit2(runScan(ctx, defaultLiveEnv(), args, stdout, stderr), stderr)
}

type scanOpts struct {
	configFile, database, repoName, forgeName, branch, since, policyFile, format *string
	last                                                                         *int
	resume                                                                       *bool
}

// scanFlags defines the flags of `foureyes scan` (docs/scan.md lists them).
func scanFlags() (*flag.FlagSet, scanOpts) {
	fs := newFlagSet("scan")
	return fs, scanOpts{
		configFile: fs.String("config", "", "YAML configuration file (the environment wins)"),
		database:   fs.String("database", "", "database with the facts the server recorded (default: FOUREYES_DATABASE)"),
		repoName:   fs.String("repo", "", "repository OWNER/NAME (GitLab: the project's full path)"),
		forgeName:  fs.String("forge", "", "github or gitlab (default: the configured one; github when both are)"),
		branch:     fs.String("branch", "", "branch to scan (default: the repository's default branch)"),
		since:      fs.String("since", "", "window: commits since a duration ago (90d, 12w, 36h) or a date (2026-01-31, RFC 3339)"),
		last:       fs.Int("last", 0, "window: the newest N commits"),
		policyFile: fs.String("policy", "", "judge by this policy file instead of the branch's (\"what if\")"),
		format:     fs.String("format", "table", "output: table, json or csv"),
		resume:     fs.Bool("resume", false, "continue the interrupted scan with the same repository, branch, window and policy"),
	}
}

func runScan(ctx context.Context, env liveEnv, args []string, stdout, stderr io.Writer) error {
	fs, o := scanFlags()
	configFile, database, repoName, forgeName, branch := o.configFile, o.database, o.repoName, o.forgeName, o.branch
	since, last, policyFile, format, resume := o.since, o.last, o.policyFile, o.format, o.resume
	if err := fs.Parse(args); err != nil {
		return flagErr(fs, err)
	}
	switch {
	case *repoName == "":
		return fmt.Errorf("%w: scan needs --repo OWNER/NAME", errUsage)
	case (*since == "") == (*last <= 0):
		return fmt.Errorf("%w: scan needs exactly one window: --since D or --last N", errUsage)
	case *format != "table" && *format != "json" && *format != "csv":
		return fmt.Errorf("%w: unknown --format %q (table, json or csv)", errUsage, *format)
	case fs.NArg() > 0:
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	win := scanWindow{Last: *last, Spec: "last " + strconv.Itoa(*last)}
	if *since != "" {
		t, err := parseSince(*since, env.now())
		if err != nil {
			return err
		}
		win = scanWindow{Since: t, Spec: "since " + *since}
	}
	ls, repo, candidate, err := openLiveRepo(ctx, env, *configFile, *database, *forgeName, *repoName, *policyFile, stderr)
	if err != nil {
		return err
	}
	defer ls.close()
	br := *branch
	if br == "" {
		br = repo.DefaultBranch
	}
	if br == "" {
		return fmt.Errorf("%s has no default branch: name one with --branch", repo.FullName)
	}
	guard := &release.Guard{DefaultPolicy: ls.def}
	sc, err := guard.NewScanner(ctx, ls.forge, ls.db, ls.name, repo, br, candidate)
	if err != nil {
		return err
	}
	rep := scanReport{
		SchemaVersion: ScanSchemaVersion, Forge: string(ls.name), Repo: repo.FullName, Branch: br, Window: win,
		Policy: scanPolicy{Source: sc.PolicySource, Digest: sc.PolicyDigest, WhatIf: sc.WhatIf, Error: sc.PolicyError},
	}

	st := &scanState{path: scanStatePath(ls.cfg.StateDir, ls.name, repo.FullName, br)}
	hdr := scanHeader{Version: 1, Forge: rep.Forge, Repo: rep.Repo, Branch: br, Window: win, PolicyDigest: sc.PolicyDigest}
	var done []release.Finding
	if *resume {
		prev, found, err := st.load()
		switch {
		case err != nil:
			return err
		case !found:
			fmt.Fprintf(stderr, "foureyes: no interrupted scan of %s@%s to resume: starting a new one\n", repo.FullName, br)
		case !prev.matches(hdr):
			fmt.Fprintf(stderr, "foureyes: the interrupted scan of %s@%s was for %s with policy %s: starting a new one\n",
				repo.FullName, br, prev.Header.Window.Spec, shortHead(prev.Header.PolicyDigest))
		default:
			hdr, done = prev.Header, prev.Findings
			rep.Window = hdr.Window
			fmt.Fprintf(stderr, "foureyes: resuming the scan of %s@%s: %d of %d commits already judged\n", repo.FullName, br, len(done), len(hdr.Commits))
		}
	}
	if hdr.Commits == nil {
		commits, err := release.ScanCommits(ctx, ls.forge, repo, br, win.Since, win.Last)
		if err != nil {
			return err
		}
		hdr.Commits = commits
		if err := st.start(hdr); err != nil {
			return err
		}
	} else if err := st.reopen(); err != nil {
		return err
	}

	bar := newScanBar(env, stderr, len(hdr.Commits), len(done))
	judged := make(map[string]bool, len(done))
	for _, fd := range done {
		judged[fd.SHA] = true
	}
	rep.Commits = append(rep.Commits, done...)
	// Newest first: a merge commit's change then claims the commits it
	// brought, which need no lookup of their own.
	for _, c := range hdr.Commits {
		if judged[c.SHA] {
			continue
		}
		fd, err := sc.Judge(ctx, c)
		if err != nil {
			st.close()
			bar.clear()
			return fmt.Errorf("%w\nscan interrupted after %d of %d commits: run it again with --resume to continue", err, len(rep.Commits), len(hdr.Commits))
		}
		if err := st.add(fd); err != nil {
			return err
		}
		rep.Commits = append(rep.Commits, fd)
		bar.add()
	}
	bar.clear()
	if err := st.finish(); err != nil {
		return err
	}
	rep.Commits = inOrder(hdr.Commits, rep.Commits)
	rep.Summary = release.SummarizeScan(rep.Commits)
	rep.SummaryLine = rep.Summary.Line()
	rep.GeneratedAt = env.now().UTC()
	rep.Requests = ls.counter.requests.Load()
	if n, d := ls.budget.Waits(); n > 0 {
		fmt.Fprintf(stderr, "foureyes: waited %d time(s), %s in all, for rate-limit resets\n", n, d.Round(time.Second))
	}

	switch *format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("write scan: %w", err)
		}
	case "csv":
		if err := writeScanCSV(stdout, rep); err != nil {
			return fmt.Errorf("write scan: %w", err)
		}
		// CSV is for spreadsheets: the summary goes where people read.
		fmt.Fprintln(stderr, rep.SummaryLine)
	default:
		writeScanTable(stdout, rep)
	}
	if rep.Summary.Unreviewed > 0 || rep.Policy.Error != "" {
		return exitError(1)
	}
	return nil
}

// inOrder returns the findings in the order of commits (a resumed scan
// appends its findings after the earlier run's).
func inOrder(commits []bot.PushCommit, fds []release.Finding) []release.Finding {
	by := make(map[string]release.Finding, len(fds))
	for _, fd := range fds {
		by[fd.SHA] = fd
	}
	out := make([]release.Finding, 0, len(commits))
	for _, c := range commits {
		if fd, ok := by[c.SHA]; ok {
			out = append(out, fd)
		}
	}
	return out
}

var sinceRE = regexp.MustCompile(`^(\d+)([dw])$`)

// parseSince reads --since: a number of days or weeks (90d, 12w), a Go
// duration (36h), a date (2026-01-31, UTC midnight) or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if m := sinceRE.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err == nil && n > 0 && n <= 36500 {
			days := n
			if m[2] == "w" {
				days = 7 * n
			}
			return now.AddDate(0, 0, -days).UTC(), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d).UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%w: --since %q is neither a duration (90d, 12w, 36h) nor a date (2026-01-31, RFC 3339)", errUsage, s)
}

// verdictLabel is a finding's verdict in one word.
func verdictLabel(fd release.Finding) string {
	if fd.Reviewed() {
		return "reviewed"
	}
	return string(fd.Reason)
}

// categoriesCell renders the per-category evidence: "code 1/1 @bob; infra 0/2".
func categoriesCell(fd release.Finding) string {
	if fd.Change == nil {
		return ""
	}
	var parts []string
	for _, c := range fd.Change.Categories {
		p := fmt.Sprintf("%s %d/%d", c.Name, len(c.Counted), c.Required)
		if len(c.Counted) > 0 {
			p += " " + ats(c.Counted)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

func ats(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "@" + strings.TrimPrefix(n, "@")
	}
	return strings.Join(out, ",")
}

func writeScanTable(w io.Writer, rep scanReport) {
	fmt.Fprintf(w, "%s %s, branch %s, %s\n", rep.Forge, rep.Repo, rep.Branch, windowText(rep.Window))
	pol := "policy: " + oneLine(rep.Policy.Source, 200) + " (" + shortHead(rep.Policy.Digest) + ")"
	if rep.Policy.WhatIf {
		pol += ", what if: not the branch's own policy"
	}
	fmt.Fprintln(w, pol)
	if rep.Policy.Error != "" {
		fmt.Fprintln(w, "the branch's policy file is invalid, judged with the built-in default: "+oneLine(rep.Policy.Error, 300))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "COMMIT\tLANDED\tCHANGE\tVERDICT\tCATEGORIES\tTITLE")
	for _, fd := range rep.Commits {
		change := "-"
		if fd.Change != nil {
			change = "#" + strconv.Itoa(fd.Change.Number)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", shortHead(fd.SHA), fd.LandedAt.UTC().Format(time.DateOnly), change,
			verdictLabel(fd), dash(categoriesCell(fd)), oneLine(fd.Title, 60))
	}
	tw.Flush()
	var unreviewed []release.Finding
	for _, fd := range rep.Commits {
		if !fd.Reviewed() {
			unreviewed = append(unreviewed, fd)
		}
	}
	if len(unreviewed) > 0 {
		fmt.Fprintln(w, "\nnot independently reviewed:")
		for _, fd := range unreviewed {
			fmt.Fprintf(w, "  %s %s: %s\n", shortHead(fd.SHA), fd.Reason, oneLine(fd.Detail, 300))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, rep.SummaryLine)
	if len(rep.Summary.Landers) > 0 {
		var ls []string
		for _, l := range rep.Summary.Landers {
			rs := make([]string, len(l.Reasons))
			for i, r := range l.Reasons {
				rs[i] = string(r)
			}
			ls = append(ls, fmt.Sprintf("%s (%d: %s)", oneLine(l.Who, 100), l.Commits, strings.Join(rs, ", ")))
		}
		fmt.Fprintln(w, "unreviewed changes landed by: "+strings.Join(ls, "; "))
	}
}

func windowText(w scanWindow) string {
	if w.Last > 0 {
		return fmt.Sprintf("the last %d commits", w.Last)
	}
	return "commits since " + w.Since.UTC().Format(time.RFC3339) + " (" + w.Spec + ")"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a cell on one line, printable and at most n runes.
func oneLine(s string, n int) string {
	s = printable(strings.Join(strings.Fields(s), " "))
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func writeScanCSV(w io.Writer, rep scanReport) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"sha", "landed_at", "committed_at", "author", "title", "reviewed", "reason", "change", "change_url",
		"change_author", "verdict", "approvers", "categories", "detail", "policy_digest"})
	for _, fd := range rep.Commits {
		row := []string{fd.SHA, fd.LandedAt.UTC().Format(time.RFC3339), fd.CommittedAt.UTC().Format(time.RFC3339), csvSafe(fd.Author),
			csvSafe(fd.Title), strconv.FormatBool(fd.Reviewed()), string(fd.Reason), "", "", "", "none", "", csvSafe(categoriesCell(fd)), csvSafe(fd.Detail), rep.Policy.Digest}
		if c := fd.Change; c != nil {
			row[7], row[8], row[9], row[10] = strconv.Itoa(c.Number), csvSafe(c.URL), csvSafe(c.Author), string(c.Verdict)
			row[11] = csvSafe(ats(c.Approvers))
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// printable replaces control characters and bidirectional overrides:
// commit titles, author names and details come from whoever pushed, and
// an escape sequence or a right-to-left override in them could redraw a
// terminal line, making an unreviewed commit read as reviewed.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r < 0x20 && r != '\n', r >= 0x7f && r < 0xa0, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return '\uFFFD'
		}
		return r
	}, s)
}

// csvSafe keeps a spreadsheet from running a cell as a formula (commit
// titles and names are written by whoever pushed) and keeps control
// characters out.
func csvSafe(s string) string {
	s = printable(s)
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// --- the progress bar ----------------------------------------------------

type scanBar struct{ b *progressbar.ProgressBar }

// minBarCommits is the shortest scan that gets a progress bar.
const minBarCommits = 20

// newScanBar shows a progress bar on stderr for scans long enough to need
// one, and only on a terminal: logs and pipes get no control characters.
func newScanBar(env liveEnv, stderr io.Writer, total, done int) scanBar {
	if total-done < minBarCommits || env.isTTY == nil || !env.isTTY(stderr) {
		return scanBar{}
	}
	b := progressbar.NewOptions(total,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription("scanning"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	_ = b.Set(done)
	return scanBar{b: b}
}

func (s scanBar) add() {
	if s.b != nil {
		_ = s.b.Add(1)
	}
}

func (s scanBar) clear() {
	if s.b != nil {
		_ = s.b.Clear()
	}
}

// --- resumable progress --------------------------------------------------

// A scan's progress is a JSON Lines file in the state directory: a header
// (what was asked, and the commit list, so a resumed scan judges the same
// commits) and then one finding per judged commit. It is removed when the
// scan completes. A line cut short by a crash is ignored on resume.

type scanHeader struct {
	Version      int              `json:"version"`
	Forge        string           `json:"forge"`
	Repo         string           `json:"repo"`
	Branch       string           `json:"branch"`
	Window       scanWindow       `json:"window"`
	PolicyDigest string           `json:"policy_digest"`
	Commits      []bot.PushCommit `json:"commits"`
}

type savedScan struct {
	Header   scanHeader
	Findings []release.Finding
}

// matches reports whether a saved scan is the one asked for again: same
// repository, branch, window as given and policy.
func (s savedScan) matches(h scanHeader) bool {
	a, b := s.Header, h
	return a.Version == b.Version && a.Forge == b.Forge && strings.EqualFold(a.Repo, b.Repo) && a.Branch == b.Branch &&
		a.Window.Spec == b.Window.Spec && a.PolicyDigest == b.PolicyDigest
}

type scanState struct {
	path string
	f    *os.File
	w    *bufio.Writer
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func scanStatePath(dir string, forge bot.ForgeName, repo, branch string) string {
	name := "scan-" + string(forge) + "-" + unsafeName.ReplaceAllString(strings.ToLower(repo), "_") + "-" + unsafeName.ReplaceAllString(branch, "_") + ".jsonl"
	return filepath.Join(dir, name)
}

func (s *scanState) load() (savedScan, bool, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return savedScan{}, false, nil
	}
	if err != nil {
		return savedScan{}, false, fmt.Errorf("read scan progress: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var out savedScan
	first := true
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			if first {
				if jerr := json.Unmarshal(line, &out.Header); jerr != nil {
					return savedScan{}, false, nil // unreadable: start anew
				}
				first = false
			} else {
				var fd release.Finding
				if jerr := json.Unmarshal(line, &fd); jerr == nil && fd.SHA != "" {
					out.Findings = append(out.Findings, fd)
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return savedScan{}, false, fmt.Errorf("read scan progress: %w", err)
		}
	}
	if first {
		return savedScan{}, false, nil
	}
	return out, true, nil
}

// start writes a new progress file (replacing an older one).
func (s *scanState) start(h scanHeader) error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("scan progress: %w", err)
	}
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("scan progress: %w", err)
	}
	s.f, s.w = f, bufio.NewWriter(f)
	return s.line(h)
}

// reopen appends to the progress file of a resumed scan.
func (s *scanState) reopen() error {
	f, err := os.OpenFile(s.path, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("scan progress: %w", err)
	}
	// A crash may have cut the last line short: end it, so the next
	// finding starts a line of its own (the torn one is then skipped).
	if _, err := f.WriteString("\n"); err != nil {
		f.Close()
		return fmt.Errorf("scan progress: %w", err)
	}
	s.f, s.w = f, bufio.NewWriter(f)
	return nil
}

func (s *scanState) add(fd release.Finding) error { return s.line(fd) }

func (s *scanState) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("scan progress: %w", err)
	}
	b = append(b, '\n')
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("scan progress: %w", err)
	}
	// Flushed per finding: an interrupted scan loses at most the commit
	// it was judging.
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("scan progress: %w", err)
	}
	return nil
}

func (s *scanState) close() {
	if s.f != nil {
		_ = s.w.Flush()
		_ = s.f.Close()
		s.f = nil
	}
}

// finish removes the progress of a completed scan.
func (s *scanState) finish() error {
	s.close()
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("scan progress: %w", err)
	}
	return nil
}
