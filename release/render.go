package release

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// docsURL explains every reason and what to do about it.
const docsURL = "https://github.com/foureyes-dev/foureyes/blob/main/docs/release-guard.md"

// reasonCounts renders "direct-push ×2, force-push" in a stable order.
func reasonCounts(flags []Flag) string {
	n := map[Reason]int{}
	var order []Reason
	for _, f := range flags {
		if n[f.Reason] == 0 {
			order = append(order, f.Reason)
		}
		n[f.Reason]++
	}
	parts := make([]string, 0, len(order))
	for _, r := range order {
		if n[r] > 1 {
			parts = append(parts, fmt.Sprintf("%s ×%d", r, n[r]))
		} else {
			parts = append(parts, string(r))
		}
	}
	return strings.Join(parts, ", ")
}

func checkTitle(an pushAnalysis) string {
	if an.Reconciled {
		return fmt.Sprintf("unreviewed push to %s (reconciled): %s", an.Branch, reasonCounts(an.Flags))
	}
	return fmt.Sprintf("unreviewed push to %s: %s", an.Branch, reasonCounts(an.Flags))
}

func issueTitle(an pushAnalysis) string {
	return fmt.Sprintf("Unreviewed push to %s by %s (%s)", an.Branch, an.Pusher, reasonCounts(an.Flags))
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), "\n", " ")
	return strings.ReplaceAll(s, "|", "\\|")
}

func flagTable(b *strings.Builder, flags []Flag) {
	b.WriteString("| commit | author | reason | change | details |\n|---|---|---|---|---|\n")
	for _, f := range flags {
		change := "—"
		switch {
		case f.ChangeURL != "":
			change = fmt.Sprintf("[#%d](%s)", f.Change, f.ChangeURL)
		case f.Change != 0:
			change = fmt.Sprintf("#%d", f.Change)
		}
		sha := "`" + short(f.SHA) + "`"
		if f.Title != "" {
			sha += " " + cell(f.Title)
		}
		fmt.Fprintf(b, "| %s | %s | **%s** | %s | %s |\n", sha, cell(f.Author), f.Reason, change, cell(f.Detail))
	}
}

// flagMarkdown is the summary of the failing check on a flagged push.
func flagMarkdown(an pushAnalysis, issueURL string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Unreviewed push to `%s`\n\n", an.Branch)
	fmt.Fprintf(&b, "%s pushed `%s..%s` at %s. foureyes found %d problem(s) among %d commit(s):\n\n",
		an.Pusher, short(an.Before), short(an.After), an.PushedAt.Format(time.RFC3339), len(an.Flags), an.Judged)
	flagTable(&b, an.Flags)
	if issueURL != "" {
		fmt.Fprintf(&b, "\nTracked in %s.\n", issueURL)
	}
	if an.Note != "" {
		fmt.Fprintf(&b, "\nNote: %s.\n", an.Note)
	}
	fmt.Fprintf(&b, "\nPolicy: %s (`%s`). What each reason means and what to do: %s\n", an.PolicySource, short(an.PolicyDigest), docsURL)
	if len(an.Overrides) > 0 {
		b.WriteString("\n" + overrideMarkdown(an))
	}
	return b.String()
}

func issueBody(an pushAnalysis, marker string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s pushed to the release branch `%s` of %s (`%s..%s`, %s) commits that did not come through an independently approved change.\n\n",
		an.Pusher, an.Branch, an.Repo, short(an.Before), short(an.After), an.PushedAt.Format(time.RFC3339))
	flagTable(&b, an.Flags)
	b.WriteString("\n**What to do:** for each commit, find out why it bypassed review; have it reviewed after the fact (open a change reverting or re-applying it, and get it approved), or revert it; then close this issue with the outcome. ")
	fmt.Fprintf(&b, "Each reason is explained in %s.\n\n", docsURL)
	if an.Note != "" {
		fmt.Fprintf(&b, "Note: %s.\n\n", an.Note)
	}
	b.WriteString(marker + "\n")
	return b.String()
}

func reportTitle(rep Report) string {
	s := rep.Summary
	var t string
	if s.Unreviewed > 0 {
		t = fmt.Sprintf("%d of %d commits unreviewed", s.Unreviewed, s.Commits)
	} else {
		t = fmt.Sprintf("all %d commits reviewed", s.Commits)
	}
	if s.Overridden > 0 {
		t += fmt.Sprintf(", %d merged on a break-glass override", s.Overridden)
	}
	if s.Late > 0 {
		t += fmt.Sprintf(", %d landed within %s of the tag", s.Late, rep.LateWindow)
	}
	if rep.PolicyError != "" {
		t += "; invalid policy file"
	}
	return t
}

// RenderMarkdown renders a release report for people: a summary, the
// commits that need attention, then every commit with its evidence.
func RenderMarkdown(rep Report) string {
	var b strings.Builder
	s := rep.Summary
	fmt.Fprintf(&b, "## foureyes release report: %s\n\n", rep.Tag)
	fmt.Fprintf(&b, "**%s** — %s.\n\n", strings.ToUpper(string(s.Conclusion)), reportTitle(rep))
	fmt.Fprintf(&b, "- Repository: %s (%s)\n", rep.Repo, rep.Forge)
	fmt.Fprintf(&b, "- Tag: `%s` at `%s`, pushed by %s at %s\n", rep.Tag, short(rep.TagSHA), rep.TaggedBy, rep.TaggedAt.Format(time.RFC3339))
	switch {
	case rep.PreviousTag != "":
		fmt.Fprintf(&b, "- Commits since: `%s` (`%s`)\n", rep.PreviousTag, short(rep.PreviousTagSHA))
	case rep.Truncated:
		fmt.Fprintf(&b, "- First release: only the newest %d commits are listed\n", len(rep.Commits))
	default:
		b.WriteString("- First release: every commit is listed\n")
	}
	fmt.Fprintf(&b, "- Policy: %s (`%s`), late window %s\n", rep.PolicySource, short(rep.PolicyDigest), rep.LateWindow)
	if rep.PolicyError != "" {
		fmt.Fprintf(&b, "- **Invalid policy file**, judged with the built-in default: %s\n", rep.PolicyError)
	}
	fmt.Fprintf(&b, "- Generated: %s\n\n", rep.GeneratedAt.Format(time.RFC3339))

	if len(s.ByReason) > 0 {
		reasons := make([]string, 0, len(s.ByReason))
		for r := range s.ByReason {
			reasons = append(reasons, r)
		}
		sort.Strings(reasons)
		b.WriteString("### Unreviewed\n\n")
		for _, r := range reasons {
			fmt.Fprintf(&b, "- **%s**: %d\n", r, s.ByReason[r])
		}
		b.WriteString("\n")
	}
	if s.Overridden > 0 {
		b.WriteString("### Overridden\n\n")
		for _, c := range rep.Commits {
			if c.Reason == Override {
				fmt.Fprintf(&b, "- `%s` %s: **override** by %s\n", short(c.SHA), cell(c.Title), handles(c.OverriddenBy))
			}
		}
		b.WriteString("\n")
	}
	if len(rep.Commits) == 0 {
		b.WriteString("No commits since the previous release tag.\n")
		return b.String()
	}
	b.WriteString("### Commits\n\n| commit | author | change | approvers | verdict | landed | notes |\n|---|---|---|---|---|---|---|\n")
	for _, c := range rep.Commits {
		change := "—"
		if c.Change != nil {
			change = fmt.Sprintf("#%d", c.Change.Number)
			if c.Change.URL != "" {
				change = fmt.Sprintf("[#%d](%s)", c.Change.Number, c.Change.URL)
			}
		}
		approvers := "—"
		if len(c.Approvers) > 0 {
			approvers = "@" + strings.Join(c.Approvers, ", @")
		}
		var notes []string
		if !c.Reviewed {
			notes = append(notes, "**"+string(c.Reason)+"**")
		}
		if c.Late {
			notes = append(notes, "**late**")
		}
		if !c.Reviewed && c.Detail != "" {
			notes = append(notes, cell(c.Detail))
		}
		title := "`" + short(c.SHA) + "`"
		if c.Title != "" {
			title += " " + cell(c.Title)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", title, cell(c.Author), change, approvers, c.Verdict,
			c.LandedAt.Format(time.RFC3339), strings.Join(notes, "; "))
	}
	fmt.Fprintf(&b, "\nWhat the reasons mean: %s\n", docsURL)
	return b.String()
}
