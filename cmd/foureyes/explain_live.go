package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/foureyes-dev/foureyes/bot"
)

// cmdExplainAny is `foureyes explain`: a described change (--change FILE)
// or a live one (--repo with --pr or --all-open). Either way the exit
// status is 0 for success, 1 for pending or failure, 2 for an error.
func cmdExplainAny(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if isLiveExplain(args) {
		return asExit2(runExplainLive(ctx, defaultLiveEnv(), args, stdout, stderr), stderr)
	}
	return asExit2(cmdExplain(args, stdout), stderr)
}

// isLiveExplain reports whether the arguments name a live change.
func isLiveExplain(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "repo" || name == "pr" || name == "all-open") {
			return true
		}
	}
	return false
}

type explainLiveOpts struct {
	configFile, database, repoName, forgeName, branch, policyFile, format *string
	pr                                                                    *int
	allOpen                                                               *bool
}

// explainLiveFlags defines the flags of a live `foureyes explain`
// (docs/scan.md lists them).
func explainLiveFlags() (*flag.FlagSet, explainLiveOpts) {
	fs := newFlagSet("explain")
	return fs, explainLiveOpts{
		configFile: fs.String("config", "", "YAML configuration file (the environment wins)"),
		database:   fs.String("database", "", "database with the facts the server recorded (default: FOUREYES_DATABASE)"),
		repoName:   fs.String("repo", "", "repository OWNER/NAME (GitLab: the project's full path)"),
		forgeName:  fs.String("forge", "", "github or gitlab (default: the configured one; github when both are)"),
		pr:         fs.Int("pr", 0, "the pull/merge request number"),
		allOpen:    fs.Bool("all-open", false, "every open change, one line each"),
		branch:     fs.String("branch", "", "with --all-open: only changes targeting this branch (default: the default branch)"),
		policyFile: fs.String("policy", "", "judge by this candidate policy file instead of the base branch's"),
		format:     fs.String("format", "text", "output: text, json or markdown"),
	}
}

// runExplainLive judges live changes with bot.Service.Explain: the same
// facts and the same Decide as the server, nothing published.
func runExplainLive(ctx context.Context, env liveEnv, args []string, stdout, stderr io.Writer) error {
	fs, o := explainLiveFlags()
	configFile, database, repoName, forgeName, pr := o.configFile, o.database, o.repoName, o.forgeName, o.pr
	allOpen, branch, policyFile, format := o.allOpen, o.branch, o.policyFile, o.format
	if err := fs.Parse(args); err != nil {
		return flagErr(fs, err)
	}
	switch {
	case *repoName == "":
		return fmt.Errorf("%w: explain needs --repo OWNER/NAME with --pr N or --all-open (or --change FILE.json)", errUsage)
	case (*pr > 0) == *allOpen:
		return fmt.Errorf("%w: explain --repo needs exactly one of --pr N and --all-open", errUsage)
	case *format != "text" && *format != "json" && *format != "markdown":
		return fmt.Errorf("%w: unknown --format %q (text, json or markdown)", errUsage, *format)
	case fs.NArg() > 0:
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	ls, repo, candidate, err := openLiveRepo(ctx, env, *configFile, *database, *forgeName, *repoName, *policyFile, stderr)
	if err != nil {
		return err
	}
	defer ls.close()
	// The service as `serve` wires it, minus everything that publishes:
	// Explain reads the forge and the store and decides.
	svc := &bot.Service{Forges: map[bot.ForgeName]bot.Forge{ls.name: ls.forge}, Store: ls.db, DefaultPolicy: ls.def}

	if !*allOpen {
		v, _, err := svc.Explain(ctx, bot.ChangeRef{Forge: ls.name, Repo: repo, Number: *pr}, candidate)
		if err != nil {
			return err
		}
		if err := writeVerdict(stdout, v, *format); err != nil {
			return err
		}
		if v.State != bot.Success {
			return exitError(1)
		}
		return nil
	}

	br := *branch
	if br == "" {
		br = repo.DefaultBranch
	}
	refs, err := ls.forge.OpenChanges(ctx, repo, br)
	if err != nil {
		return fmt.Errorf("list open changes of %s on %s: %w", repo.FullName, br, err)
	}
	slices.SortFunc(refs, func(a, b bot.ChangeRef) int { return a.Number - b.Number })
	type line struct {
		Number  int          `json:"number"`
		HeadSHA string       `json:"head_sha"`
		State   bot.State    `json:"state"`
		Title   string       `json:"title"`
		Error   string       `json:"error,omitempty"`
		Verdict *bot.Verdict `json:"verdict,omitempty"`
	}
	var lines []line
	allGood, anyErr := true, false
	for _, ref := range refs {
		// The current head, whatever the listing said a moment ago.
		ref.HeadSHA = ""
		v, _, err := svc.Explain(ctx, ref, candidate)
		if err != nil {
			// One change that cannot be read does not hide the others; it
			// is reported as an error and makes the run exit 2.
			lines = append(lines, line{Number: ref.Number, State: bot.Failure, Error: err.Error()})
			allGood, anyErr = false, true
			continue
		}
		lines = append(lines, line{Number: ref.Number, HeadSHA: v.Ref.HeadSHA, State: v.State, Title: v.Title, Verdict: &v})
		if v.State != bot.Success {
			allGood = false
		}
	}
	switch *format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if lines == nil {
			lines = []line{}
		}
		if err := enc.Encode(lines); err != nil {
			return fmt.Errorf("write verdicts: %w", err)
		}
	case "markdown":
		fmt.Fprintln(stdout, "| change | head | verdict | title |")
		fmt.Fprintln(stdout, "|---|---|---|---|")
		for _, l := range lines {
			title := l.Title
			if l.Error != "" {
				title = "error: " + l.Error
			}
			fmt.Fprintf(stdout, "| #%d | %s | %s | %s |\n", l.Number, shortHead(l.HeadSHA), l.State, strings.ReplaceAll(oneLine(title, 200), "|", `\|`))
		}
	default:
		for _, l := range lines {
			if l.Error != "" {
				fmt.Fprintf(stdout, "#%d error: %s\n", l.Number, oneLine(l.Error, 300))
				continue
			}
			fmt.Fprintf(stdout, "#%d %s %s: %s\n", l.Number, shortHead(l.HeadSHA), strings.ToUpper(string(l.State)), oneLine(l.Title, 200))
		}
	}
	if len(lines) == 0 {
		fmt.Fprintf(stderr, "foureyes: no open changes target %s in %s\n", br, repo.FullName)
	}
	switch {
	case anyErr:
		return exitError(2)
	case !allGood:
		return exitError(1)
	}
	return nil
}

// writeVerdict prints one verdict as `explain --change` does.
func writeVerdict(w io.Writer, v bot.Verdict, format string) error {
	switch format {
	case "markdown":
		fmt.Fprint(w, bot.Markdown(v))
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("write verdict: %w", err)
		}
	default:
		fmt.Fprint(w, bot.Text(v))
	}
	return nil
}
