// Command foureyes enforces the four-eyes principle on GitHub and GitLab.
// See the README for the commands; this package is the only place that reads
// configuration and wires the parts together.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/policies"
)

// Set with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

// errUsage marks a command-line mistake: exit status 2, like flag's.
var errUsage = errors.New("usage")

// exitError carries an exit status without printing anything more.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(int(ee))
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "foureyes:", err)
		os.Exit(1)
	}
}

const usage = `usage: foureyes COMMAND [ARGS]

commands:
  serve [--config FILE]              run the webhook server
  validate [FILE...]                 check policy files (default: the usual locations)
  explain --policy FILE --change FILE.json [--format text|json|markdown]
                                     evaluate a described change offline
  demo                               replay example events against a fake forge
  audit verify|export|list|checkpoint|dead|retry
                                     the audit trail and dead-lettered deliveries
  report --repo OWNER/NAME --tag TAG [--format markdown|json]
                                     the review report of a release tag
  backup PATH                        consistent copy of the SQLite database
  version                            version, commit, Go version`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w\n%s", errUsage, usage)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, stderr)
	case "validate":
		return cmdValidate(rest, stdout, stderr)
	case "explain":
		return cmdExplain(rest, stdout)
	case "demo":
		return cmdDemo(ctx, rest, stdout)
	case "audit":
		return cmdAudit(ctx, rest, stdout)
	case "report":
		return cmdReport(ctx, rest, stdout)
	case "backup":
		return cmdBackup(ctx, rest, stdout)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q\n%s", errUsage, cmd, usage)
}

func versionString() string {
	c := commit
	if c == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("foureyes %s (commit %s, %s)", version, c, runtime.Version())
}

// defaultPolicyPaths are looked at by `validate` without arguments, in the
// GitHub lookup order.
var defaultPolicyPaths = []string{".github/foureyes.yml", ".foureyes.yml", ".gitlab/foureyes.yml"}

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	files := fs.Args()
	if len(files) == 0 {
		for _, p := range defaultPolicyPaths {
			if _, err := os.Stat(p); err == nil {
				files = append(files, p)
			}
		}
		if len(files) == 0 {
			fmt.Fprintln(stderr, "no policy file found (looked for .github/foureyes.yml, .foureyes.yml, .gitlab/foureyes.yml); the built-in default applies")
			return nil
		}
	}
	bad := false
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", f, err)
			bad = true
			continue
		}
		if _, err := policies.Parse(f, data); err != nil {
			for _, d := range policies.Diagnostics(err) {
				if d.File == "" {
					d.File = f
				}
				fmt.Fprintln(stderr, d.String())
			}
			bad = true
			continue
		}
		fmt.Fprintf(stdout, "%s: ok\n", f)
	}
	if bad {
		return exitError(1)
	}
	return nil
}

func cmdExplain(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	policyFile := fs.String("policy", "", "policy file (default: the built-in default policy)")
	changeFile := fs.String("change", "", "the change described as JSON (see examples/change.json)")
	format := fs.String("format", "text", "output format: text, json or markdown")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *changeFile == "" {
		return fmt.Errorf("%w: explain needs --change FILE.json", errUsage)
	}
	raw, err := os.ReadFile(*changeFile)
	if err != nil {
		return fmt.Errorf("read change: %w", err)
	}
	var change bot.Change
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&change); err != nil {
		return fmt.Errorf("change %s: %w", *changeFile, err)
	}
	in := bot.Input{Change: &change}
	if *policyFile == "" {
		in.Policy = policies.Default()
	} else {
		data, err := os.ReadFile(*policyFile)
		if err != nil {
			return fmt.Errorf("read policy: %w", err)
		}
		in.Policy, in.PolicyErr = policies.Parse(*policyFile, data)
	}
	v := bot.Decide(in)
	switch *format {
	case "text":
		fmt.Fprint(stdout, bot.Text(v))
	case "markdown":
		fmt.Fprint(stdout, bot.Markdown(v))
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("write verdict: %w", err)
		}
	default:
		return fmt.Errorf("%w: unknown --format %q (text, json or markdown)", errUsage, *format)
	}
	return nil
}
