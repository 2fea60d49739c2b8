package bot

import (
	"slices"
	"strconv"
	"strings"
)

// MaxMarkdown is the size Markdown stays under. GitHub rejects a check-run
// summary over 65535 characters; the margin leaves room for an adapter's
// footer and for counting differences (bytes vs. characters).
const MaxMarkdown = 60000

// visibleFiles is how many files of a list are shown before the rest is
// folded into a <details> block.
const visibleFiles = 20

// Markdown renders the verdict as the GitHub check-run summary and the GitLab
// MR note. Output larger than MaxMarkdown is cut gracefully: file lists go
// first, then long lists of anything else, so the table of categories, the
// failures and the reasons stay readable.
func Markdown(v Verdict) string { return markdown(v, false) }

// MarkdownQuiet is Markdown with every @mention written as a code span. On
// GitLab an edited note notifies everyone it newly mentions, and a group
// mention notifies the whole group: the MR note mentions people when it is
// first posted and uses this form for every later edit.
func MarkdownQuiet(v Verdict) string { return markdown(v, true) }

func markdown(v Verdict, quiet bool) string {
	// Each retry shows fewer items per list; the numbers only need to shrink
	// fast enough that the last one is bounded by the number of categories.
	for _, limit := range [...]int{-1, 200, 50, 10, 0} {
		// File lists are most of a big summary: skip a rendering whose
		// lists alone would not fit.
		if limit != 0 && fileListBytes(v, limit) > MaxMarkdown {
			continue
		}
		if s := renderMarkdown(v, limit, quiet); len(s) <= MaxMarkdown {
			return s
		}
	}
	// Only an absurd number of categories gets here: cut on a line boundary.
	s := renderMarkdown(v, 0, quiet)
	const note = "\n\n_Summary truncated to fit the forge's size limit._\n"
	cut := strings.LastIndexByte(s[:MaxMarkdown-len(note)], '\n')
	if cut < 0 {
		cut = MaxMarkdown - len(note)
	}
	return s[:cut] + note
}

// fileListBytes is a lower bound of the bytes the file lists take when
// rendered with limit.
func fileListBytes(v Verdict, limit int) int {
	n := 0
	add := func(files []string) {
		for _, f := range capped(files, limit) {
			n += len(f) + len("- ``\n")
		}
	}
	for i := range v.Categories {
		add(v.Categories[i].Files)
	}
	add(v.Exempt)
	return n
}

// renderMarkdown renders with at most limit items per list (-1: all, files
// past visibleFiles folded).
func renderMarkdown(v Verdict, limit int, quiet bool) string {
	var b strings.Builder
	b.Grow(4096)
	b.WriteString("**" + verdictWord(v) + "** — " + mdText(v.Title, quiet) + "\n\n")

	if len(v.Failures) > 0 {
		b.WriteString("**Failures**\n\n")
		writeCode(&b, capped(v.Failures, limit), len(v.Failures))
	}
	if len(v.Blocking) > 0 {
		b.WriteString("**Changes requested** by " + handles(v.Blocking, quiet) + ": the check fails until they approve or their review is dismissed.\n\n")
	}

	writeBreakGlass(&b, v, quiet)

	if len(v.Categories) > 0 {
		b.WriteString("| Category | Files | Required | Counted | Missing |\n|---|---:|---:|---|---:|\n")
		for i := range v.Categories {
			c := &v.Categories[i]
			counted := "—"
			if len(c.Counted) > 0 {
				counted = handles(c.Counted, quiet)
			}
			b.WriteString("| " + esc(c.Name) + " | " + strconv.Itoa(len(c.Files)) + " | " +
				strconv.Itoa(c.Required) + " | " + counted + " | " + strconv.Itoa(c.Missing) + " |\n")
		}
		b.WriteString("\n")
	}

	for i := range v.Categories {
		c := &v.Categories[i]
		b.WriteString("#### " + esc(c.Name) + "\n\n")
		b.WriteString(categoryStatus(c, quiet) + "\n\n")
		if len(c.Files) > 0 {
			writeFiles(&b, "Files", c.Files, limit)
		}
	}

	if rows := rejectionRows(v); len(rows) > 0 {
		b.WriteString("#### Approvals that did not count\n\n| Reviewer | Reasons | Detail |\n|---|---|---|\n")
		for _, r := range capped(rows, limit) {
			b.WriteString("| " + mdText("@"+r.reviewer, quiet) + " | " + mdText(r.reasons, quiet) + " | " + mdText(r.detail, quiet) + " |\n")
		}
		if n := len(rows) - len(capped(rows, limit)); n > 0 {
			b.WriteString("\n_" + plural(n, "more row") + " not shown (size limit)._\n")
		}
		b.WriteString("\n")
	}

	if len(v.Exempt) > 0 {
		writeFiles(&b, "Exempt files (no review needed)", v.Exempt, limit)
	}
	if len(v.Unverified) > 0 {
		b.WriteString("**Unverified identities** — commit identities not linked to an account; they could not be checked against the reviewers:\n\n")
		writeItems(&b, v.Unverified, limit, false) // e-mail addresses mention nobody
	}
	if len(v.Notices) > 0 {
		b.WriteString("**Notices**\n\n")
		writeItems(&b, v.Notices, limit, quiet)
	}

	var foot []string
	if v.PolicySource != "" {
		foot = append(foot, "policy "+esc(v.PolicySource))
	}
	if v.PolicyDigest != "" {
		foot = append(foot, "policy digest "+esc(short12(v.PolicyDigest)))
	}
	if v.DiffDigest != "" {
		foot = append(foot, "diff digest "+esc(short12(v.DiffDigest)))
	}
	if v.Ref.HeadSHA != "" {
		foot = append(foot, "head "+esc(short(v.Ref.HeadSHA)))
	}
	if len(foot) > 0 {
		b.WriteString("<sub>" + strings.Join(foot, " · ") + "</sub>\n")
	}
	return b.String()
}

func stateWord(s State) string {
	switch s {
	case Success:
		return "Approved"
	case PendingState:
		return "Pending"
	case Failure:
		return "Failure"
	}
	return "Unknown"
}

func categoryStatus(c *CategoryResult, quiet bool) string {
	var s string
	switch {
	case c.Required == 0:
		s = "No approval required."
	case c.Missing == 0:
		s = "Approved: " + countWords(c) + "."
	default:
		s = countWords(c) + "; needs " + strconv.Itoa(c.Missing) + " more"
		if c.hasApprovers() {
			s += " from " + mdText(c.approvers(), quiet)
		} else {
			s += " independent " + pluralWord(c.Missing, "approval")
		}
		s += "."
	}
	if len(c.Counted) > 0 {
		s += " Counted: " + handles(c.Counted, quiet) + "."
	}
	return s
}

func pluralWord(n int, w string) string {
	if n == 1 {
		return w
	}
	return w + "s"
}

// writeFiles lists paths, folding all but the first visibleFiles into a
// <details> block, and leaving out those past limit (when limit >= 0).
func writeFiles(b *strings.Builder, title string, files []string, limit int) {
	b.WriteString("**" + title + "** (" + strconv.Itoa(len(files)) + ")\n\n")
	shown := capped(files, limit)
	for i, f := range shown {
		if i == visibleFiles {
			b.WriteString("\n<details><summary>" + strconv.Itoa(len(shown)-visibleFiles) + " more</summary>\n\n")
		}
		b.WriteString("- ")
		writeCodeSpan(b, f)
		b.WriteString("\n")
	}
	if len(shown) > visibleFiles {
		b.WriteString("\n</details>\n")
	}
	if n := len(files) - len(shown); n > 0 {
		b.WriteString("\n_" + plural(n, "more file") + " not shown (size limit); the details page lists them all._\n")
	}
	b.WriteString("\n")
}

func writeItems(b *strings.Builder, items []string, limit int, quiet bool) {
	shown := capped(items, limit)
	for _, s := range shown {
		b.WriteString("- " + mdText(s, quiet) + "\n")
	}
	if n := len(items) - len(shown); n > 0 {
		b.WriteString("- _" + strconv.Itoa(n) + " more not shown (size limit)_\n")
	}
	b.WriteString("\n")
}

// writeCode shows lines verbatim (FILE:LINE:COL must survive), with a fence
// longer than any backtick run inside so a message cannot close it.
func writeCode(b *strings.Builder, lines []string, total int) {
	fence := "```"
	for _, l := range lines {
		for strings.Contains(l, fence) {
			fence += "`"
		}
	}
	b.WriteString(fence + "\n")
	for _, l := range lines {
		for _, part := range wrapLine(strings.NewReplacer("\r", " ", "\n", " ").Replace(l), codeWidth) {
			b.WriteString(part + "\n")
		}
	}
	if n := total - len(lines); n > 0 {
		b.WriteString("(" + strconv.Itoa(n) + " more)\n")
	}
	b.WriteString(fence + "\n\n")
}

// codeWidth is where error lines in a code block wrap: the forges show code
// blocks without wrapping, so a long message would run off the page.
const codeWidth = 100

// wrapLine breaks l at spaces so no part is longer than width (a single
// longer word stays whole); continuation parts are indented, so the
// FILE:LINE:COL that starts the first part stays easy to find.
func wrapLine(l string, width int) []string {
	const indent = "    "
	var parts []string
	for len(l) > width {
		cut := strings.LastIndexByte(l[:width+1], ' ')
		if cut <= len(indent) {
			if cut = strings.IndexByte(l[width:], ' '); cut < 0 {
				break
			}
			cut += width
		}
		parts = append(parts, l[:cut])
		l = indent + strings.TrimLeft(l[cut:], " ")
	}
	return append(parts, l)
}

func capped[T any](s []T, limit int) []T {
	if limit >= 0 && len(s) > limit {
		return s[:limit]
	}
	return s
}

func short12(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

func handles(names []string, quiet bool) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(mdText("@"+n, quiet))
	}
	return b.String()
}

// mdText escapes text for Markdown; quiet also writes each @handle in it
// as a code span, which neither forge treats as a mention.
func mdText(s string, quiet bool) string {
	if !quiet || !strings.Contains(s, "@") {
		return esc(s)
	}
	var b strings.Builder
	for s != "" {
		i := mentionStart(s)
		if i < 0 {
			b.WriteString(esc(s))
			break
		}
		b.WriteString(esc(s[:i]))
		j := i + 1
		for j < len(s) && isHandleByte(s[j]) {
			j++
		}
		for j > i+1 && (s[j-1] == '.' || s[j-1] == '-') {
			j-- // "… from @bob." ends the sentence, not the name
		}
		writeCodeSpan(&b, s[i:j])
		s = s[j:]
	}
	return b.String()
}

// mentionStart finds the next "@" that starts a mention: not inside a word
// (an e-mail address is no mention) and followed by a handle.
func mentionStart(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] != '@' || i+1 >= len(s) || !isHandleByte(s[i+1]) {
			continue
		}
		if i > 0 && (isAlnum(s[i-1]) || s[i-1] == '_') {
			continue
		}
		return i
	}
	return -1
}

// isHandleByte: GitHub logins and teams (letters, digits, "-", "/"), bots
// ("name[bot]"), GitLab usernames and group paths ("_", ".").
func isHandleByte(c byte) bool {
	return isAlnum(c) || c == '-' || c == '_' || c == '.' || c == '/' || c == '[' || c == ']'
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// mdEscaper neutralizes what would otherwise format text or inject HTML:
// a file or user name must render as itself, and a "|" must not split a
// table cell.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	"|", `\|`, "~", `\~`, "#", `\#`,
	"<", "&lt;", ">", "&gt;", "&", "&amp;",
	"\r", " ", "\n", " ",
)

func esc(s string) string { return mdEscaper.Replace(s) }

// writeCodeSpan renders s as a code span: paths stay readable and nothing
// in them (HTML, emphasis, @mentions) is interpreted. The fence is longer
// than any backtick run inside.
func writeCodeSpan(b *strings.Builder, s string) {
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	}
	if !strings.Contains(s, "`") {
		b.WriteByte('`')
		b.WriteString(s)
		b.WriteByte('`')
		return
	}
	run, longest := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	// Spaces keep a leading or trailing backtick apart from the fence;
	// CommonMark strips one on each side.
	b.WriteString(fence + " " + s + " " + fence)
}

// rejectionRow is one line of "Approvals that did not count".
type rejectionRow struct {
	reviewer, reasons, detail string
}

// rejectionRows lists, first, the approvals that counted nowhere (with the
// union of their reasons), then approvals rejected by some categories only,
// naming those categories; each approval appears once.
func rejectionRows(v Verdict) []rejectionRow {
	type key struct {
		reviewer string
		id       int64
	}
	seen := make(map[key]bool, len(v.Ignored))
	rows := make([]rejectionRow, 0, len(v.Ignored))
	for _, r := range v.Ignored {
		seen[key{r.Reviewer, r.ReviewID}] = true
		var cats []*CategoryResult
		for i := range v.Categories {
			if hasRejection(&v.Categories[i], r) {
				cats = append(cats, &v.Categories[i])
			}
		}
		words := reasonWords(r, cats)
		detail := extraDetail(r.Detail, words)
		rows = append(rows, rejectionRow{r.Reviewer, strings.Join(scopeReasons(v.Categories, r, words), ", "), detail})
	}
	type partial struct {
		rej  Rejection
		cats []*CategoryResult
	}
	var parts []*partial
	idx := map[key]*partial{}
	for i := range v.Categories {
		c := &v.Categories[i]
		for _, r := range c.Rejected {
			k := key{r.Reviewer, r.ReviewID}
			if seen[k] {
				continue
			}
			p := idx[k]
			if p == nil {
				p = &partial{rej: r}
				idx[k] = p
				parts = append(parts, p)
			}
			p.cats = append(p.cats, c)
		}
	}
	for _, p := range parts {
		names := make([]string, len(p.cats))
		for i, c := range p.cats {
			names[i] = c.Name
		}
		words := reasonWords(p.rej, p.cats)
		detail := "for " + strings.Join(names, ", ") + " only (counted elsewhere)"
		if d := extraDetail(p.rej.Detail, words); d != "" {
			detail += ": " + d
		}
		rows = append(rows, rejectionRow{p.rej.Reviewer, strings.Join(words, ", "), detail})
	}
	return rows
}

// scopeReasons names, after each reason that held in some categories only,
// the categories it held in: "permission below write, not in @acme/sre
// (infra)". A reason without a list held everywhere.
func scopeReasons(cats []CategoryResult, r Rejection, words []string) []string {
	if len(cats) < 2 || len(words) != len(r.Reasons) {
		return words
	}
	out := slices.Clone(words)
	for i, reason := range r.Reasons {
		var in []string
		for ci := range cats {
			if rejectedFor(&cats[ci], r, reason) {
				in = append(in, cats[ci].Name)
			}
		}
		if len(in) > 0 && len(in) < len(cats) {
			out[i] += " (" + strings.Join(in, ", ") + ")"
		}
	}
	return out
}

func hasRejection(c *CategoryResult, r Rejection) bool {
	for _, x := range c.Rejected {
		if x.Reviewer == r.Reviewer && x.ReviewID == r.ReviewID {
			return true
		}
	}
	return false
}

// extraDetail drops the parts of a Rejection.Detail that only repeat the
// reasons in words, so the Detail column adds facts (which commit, which
// head) instead of echoing the Reasons column.
func extraDetail(detail string, words []string) string {
	parts := strings.Split(detail, "; ")
	kept := parts[:0]
	for _, p := range parts {
		if p != "" && !slices.Contains(words, p) {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, "; ")
}

// reasonWords says the reasons in words. cats are the categories that
// rejected the approval, whose reviewer lists name the teams it lacked.
func reasonWords(r Rejection, cats []*CategoryResult) []string {
	words := make([]string, 0, len(r.Reasons))
	for _, reason := range r.Reasons {
		switch reason {
		case ReasonNotInTeam:
			var groups []string
			for _, c := range cats {
				if len(c.Teams)+len(c.Users) == 0 || !rejectedFor(c, r, ReasonNotInTeam) {
					continue
				}
				if g := who(c.Teams, c.Users); !slices.Contains(groups, g) {
					groups = append(groups, g)
				}
			}
			if len(groups) == 0 {
				words = append(words, "not an allowed reviewer")
			} else {
				words = append(words, "not in "+strings.Join(groups, "; "))
			}
		case ReasonPermission:
			w := "permission too low"
			// Decide words the detail "permission X, needs Y".
			if _, after, ok := strings.Cut(r.Detail, ", needs "); ok {
				if need, _, _ := strings.Cut(after, ";"); need != "" {
					w = "permission below " + need
				}
			}
			words = append(words, w)
		default:
			words = append(words, ReasonText(reason))
		}
	}
	return words
}

func rejectedFor(c *CategoryResult, r Rejection, reason Reason) bool {
	for _, x := range c.Rejected {
		if x.Reviewer == r.Reviewer && x.ReviewID == r.ReviewID {
			return slices.Contains(x.Reasons, reason)
		}
	}
	return false
}

// ReasonText says a reason in words, for reports and the details page.
func ReasonText(r Reason) string {
	switch r {
	case ReasonAuthor:
		return "author of the change"
	case ReasonCommitter:
		return "committed to the change"
	case ReasonCoAuthor:
		return "co-author (Co-authored-by)"
	case ReasonLastPusher:
		return "pushed the current head"
	case ReasonBot:
		return "bot account"
	case ReasonPermission:
		return "permission too low"
	case ReasonNotInTeam:
		return "not an allowed reviewer"
	case ReasonStale:
		return "stale: approved an earlier head"
	case ReasonDismissed:
		return "dismissed"
	case ReasonSuperseded:
		return "superseded by a later review"
	case ReasonUnknownPusher:
		return "the pusher of the head is not known yet"
	}
	return string(r)
}

// Text renders the verdict for a terminal (foureyes explain). Names come
// from the forge and may hold control characters; they are made visible so
// a file name cannot rewrite the terminal.
func Text(v Verdict) string {
	const maxFiles = 50
	var b strings.Builder
	b.WriteString(strings.ToUpper(string(v.State)) + ": " + clean(v.Title) + "\n")
	if v.PolicySource != "" {
		b.WriteString("policy: " + clean(v.PolicySource) + "\n")
	}
	for _, f := range v.Failures {
		b.WriteString("failure: " + clean(f) + "\n")
	}
	if len(v.Blocking) > 0 {
		b.WriteString("changes requested by " + clean(people(v.Blocking, "and")) + "\n")
	}
	writeBreakGlassText(&b, v)
	for i := range v.Categories {
		c := &v.Categories[i]
		b.WriteString("\n" + clean(c.Name) + ": " + plural(len(c.Files), "file") + ", " + countWords(c))
		if c.Missing > 0 {
			b.WriteString(", needs " + strconv.Itoa(c.Missing) + " more")
			if c.hasApprovers() {
				b.WriteString(" from " + clean(c.approvers()))
			}
		}
		b.WriteString("\n")
		if len(c.Counted) > 0 {
			b.WriteString("  counted: " + clean(people(c.Counted, "and")) + "\n")
		}
		for _, r := range c.Rejected {
			words := reasonWords(r, []*CategoryResult{c})
			line := "did not count: @" + r.Reviewer + " — " + strings.Join(words, ", ")
			if d := extraDetail(r.Detail, words); d != "" {
				line += " (" + d + ")"
			}
			b.WriteString("  " + clean(line) + "\n")
		}
		writeTextList(&b, "  ", c.Files, maxFiles)
	}
	if len(v.Exempt) > 0 {
		b.WriteString("\nexempt:\n")
		writeTextList(&b, "  ", v.Exempt, maxFiles)
	}
	if len(v.Unverified) > 0 {
		b.WriteString("\nunverified identities:\n")
		writeTextList(&b, "  ", v.Unverified, -1)
	}
	if len(v.Notices) > 0 {
		b.WriteString("\nnotices:\n")
		writeTextList(&b, "  ", v.Notices, -1)
	}
	return b.String()
}

func writeTextList(b *strings.Builder, indent string, items []string, limit int) {
	shown := capped(items, limit)
	for _, s := range shown {
		b.WriteString(indent + clean(s) + "\n")
	}
	if n := len(items) - len(shown); n > 0 {
		b.WriteString(indent + "… " + strconv.Itoa(n) + " more (the JSON output lists all)\n")
	}
}

// clean replaces control characters (terminal escapes, newlines) with U+FFFD.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			return '\uFFFD'
		}
		return r
	}, s)
}
