package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// command is one entry of `foureyes help`: the usage line and what it does.
// The list is the one source of the help text, of every command's --help
// header and of the "did you mean" suggestion.
type command struct {
	name, args, summary string
}

var commands = []command{
	{"serve", "[--config FILE]", "run the webhook server"},
	{"validate", "[FILE|-]...", "check policy files (default: the usual locations; - reads stdin)"},
	{"explain", "(--change FILE.json [--policy FILE] | --repo OWNER/NAME (--pr N | --all-open) [--policy FILE]) [--format text|json|markdown]", "evaluate a described change offline, or live changes as the server would (publishing nothing)"},
	{"scan", "--repo OWNER/NAME (--since D | --last N) [--branch B] [--policy FILE] [--format table|json|csv] [--resume]", "which commits of a branch's history were independently reviewed"},
	{"demo", "[--markdown]", "replay example events against a fake forge"},
	{"audit", "verify|export|list|checkpoint|dead|retry [FLAGS]", "the audit trail and dead-lettered deliveries"},
	{"report", "--repo OWNER/NAME --tag TAG [--format markdown|json]", "the review report of a release tag"},
	{"backup", "PATH", "consistent copy of the SQLite database"},
	{"version", "", "version, commit, Go version"},
	{"help", "[COMMAND]", "this text, or one command's"},
}

func lookupCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// usageText is `foureyes help`.
func usageText() string {
	var b strings.Builder
	b.WriteString("usage: foureyes COMMAND [ARGS]\n\ncommands:\n")
	for _, c := range commands {
		line := "  " + c.name
		if c.args != "" {
			line += " " + c.args
		}
		if len(line) > 36 {
			b.WriteString(line + "\n" + strings.Repeat(" ", 37) + c.summary + "\n")
			continue
		}
		fmt.Fprintf(&b, "%-37s%s\n", line, c.summary)
	}
	b.WriteString("\nRun 'foureyes COMMAND --help' for a command's flags.\n")
	return b.String()
}

// helpRequest is returned by a command asked for --help: run prints the
// help on stdout and exits 0, as every command-line tool does.
type helpRequest struct {
	name string
	fs   *flag.FlagSet // nil for a command without flags
}

func (h *helpRequest) Error() string { return "help requested for " + h.name }

// newFlagSet makes a command's flag set. It prints nothing itself: run says
// what went wrong once, on stderr, and prints --help on stdout.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// flagErr turns a flag parse error into a help request or a usage error
// that points at --help.
func flagErr(fs *flag.FlagSet, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return &helpRequest{name: fs.Name(), fs: fs}
	}
	return fmt.Errorf("%w: %s: %v (see 'foureyes %s --help')", errUsage, fs.Name(), err, fs.Name())
}

func isHelpArg(s string) bool { return s == "-h" || s == "-help" || s == "--help" || s == "help" }

// writeHelp prints one command's help: its usage line, what it does, its
// flags, and for serve the environment it reads.
func writeHelp(w io.Writer, h *helpRequest) {
	top, _, _ := strings.Cut(h.name, " ")
	c, _ := lookupCommand(top)
	line := "usage: foureyes " + h.name
	if h.name == c.name && c.args != "" {
		line += " " + c.args
	} else if h.fs != nil {
		line += " [FLAGS]"
	}
	fmt.Fprintln(w, line)
	if c.summary != "" {
		fmt.Fprintf(w, "\n%s.\n", strings.ToUpper(c.summary[:1])+c.summary[1:])
	}
	if h.fs != nil {
		n := 0
		h.fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nflags:")
			h.fs.SetOutput(w)
			h.fs.PrintDefaults()
			h.fs.SetOutput(io.Discard)
		}
	}
	if top == "serve" {
		fmt.Fprintln(w, "\nenvironment (a --config YAML file may set the same keys in lower case without")
		fmt.Fprintln(w, "the FOUREYES_ prefix; the environment wins; secrets also take NAME_FILE):")
		for _, s := range settings {
			name := s.env
			if s.secret {
				name += " (_FILE)"
			}
			def := s.def
			if def == "" {
				def = "-"
			}
			fmt.Fprintf(w, "  %-40s default %s\n", name, def)
		}
	}
}

// suggest names the known command nearest to an unknown one, if any is
// close enough to be a typo.
func suggest(name string) string {
	best, bestD := "", 3
	for _, c := range commands {
		if d := editDistance(name, c.name); d < bestD {
			best, bestD = c.name, d
		}
		if len(name) >= 3 && strings.HasPrefix(c.name, name) {
			return c.name
		}
	}
	return best
}

// editDistance is the Levenshtein distance between two short words.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
