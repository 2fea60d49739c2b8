package handlers

import (
	"strconv"
	"strings"

	"github.com/foureyes-dev/foureyes/bot"
)

// breakGlassLines says in plain sentences what the break-glass votes on
// the head came to (the template escapes them).
func breakGlassLines(v bot.Verdict) []string {
	bg := v.BreakGlass
	if bg == nil {
		return nil
	}
	agreed := "nobody"
	if len(bg.Agreed) > 0 {
		agreed = "@" + strings.Join(bg.Agreed, ", @")
	}
	var lines []string
	switch {
	case bg.Applied:
		l := "Overridden by " + agreed
		if bg.Reason != "" {
			l += " — " + bg.Reason
		}
		lines = append(lines, l+". A new push ends the override.")
		for _, m := range bg.Missing {
			lines = append(lines, "Missing: "+m)
		}
	case bg.NotNeeded:
		lines = append(lines, agreed+" agreed to break the glass, but the approvals are in: no override was needed.")
	default:
		l := strconv.Itoa(len(bg.Agreed)) + " of " + strconv.Itoa(bg.Required) + " agreed (" + agreed + ")"
		if bg.Why != "" {
			l += "; not applied: " + bg.Why
		}
		lines = append(lines, l+".")
	}
	for _, r := range bg.Rejected {
		lines = append(lines, "Did not count: @"+r.Reviewer+" — "+r.Detail)
	}
	return lines
}
