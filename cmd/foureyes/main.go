// Command foureyes enforces the four-eyes principle on GitHub and GitLab.
// See the README for the commands; this package is the only place that reads
// configuration and wires the parts together.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
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
		// Usage errors wrap errUsage as "usage: <what>"; say what, once.
		fmt.Fprintln(os.Stderr, "foureyes:", strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "foureyes:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runIO(ctx, args, os.Stdin, stdout, stderr)
}

// runIO runs one command; a --help anywhere prints that command's help on
// stdout and succeeds.
func runIO(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, stdin, stdout, stderr)
	var h *helpRequest
	if errors.As(err, &h) {
		writeHelp(stdout, h)
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command given\n%s", errUsage, usageText())
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, stderr)
	case "validate":
		return cmdValidate(rest, stdin, stdout, stderr)
	case "explain":
		return cmdExplainAny(ctx, rest, stdout, stderr)
	case "scan":
		return cmdScan(ctx, rest, stdout, stderr)
	case "demo":
		return cmdDemo(ctx, rest, stdout)
	case "audit":
		return cmdAudit(ctx, rest, stdout)
	case "report":
		return cmdReport(ctx, rest, stdout)
	case "backup":
		return cmdBackup(ctx, rest, stdout)
	case "version", "--version", "-v":
		fs := newFlagSet("version")
		if err := fs.Parse(rest); err != nil {
			return flagErr(fs, err)
		}
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "--help":
		if len(rest) > 0 {
			if _, ok := lookupCommand(rest[0]); ok && rest[0] != "help" {
				return dispatch(ctx, []string{rest[0], "--help"}, stdin, stdout, stderr)
			}
		}
		fmt.Fprint(stdout, usageText())
		return nil
	}
	msg := fmt.Sprintf("unknown command %q", cmd)
	if s := suggest(cmd); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return fmt.Errorf("%w: %s (run 'foureyes help' for the list)", errUsage, msg)
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

// defaultPolicyPaths are looked at by `validate` without arguments: every
// location either forge reads (GitHub's order names them all).
func defaultPolicyPaths() []string { return bot.PolicyPaths(bot.GitHub) }

func cmdValidate(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate")
	if err := fs.Parse(args); err != nil {
		return flagErr(fs, err)
	}
	files := fs.Args()
	if len(files) == 0 {
		for _, p := range defaultPolicyPaths() {
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
		var (
			data []byte
			err  error
		)
		if f == "-" {
			data, err = io.ReadAll(io.LimitReader(stdin, policies.MaxSize+1))
			f = "<stdin>"
		} else {
			data, err = os.ReadFile(f)
			warnShadowed(stderr, f)
		}
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

// warnShadowed says when the forge would never read file because a policy
// file earlier in its lookup order exists beside it: a user fixing the
// shadowed file would wonder why nothing changes.
func warnShadowed(stderr io.Writer, file string) {
	for _, order := range []struct {
		forge string
		paths []string
	}{{"GitHub", bot.PolicyPaths(bot.GitHub)}, {"GitLab", bot.PolicyPaths(bot.GitLab)}} {
		root, pos := policyRoot(file, order.paths)
		if pos < 0 {
			continue
		}
		for _, earlier := range order.paths[:pos] {
			if _, err := os.Stat(filepath.Join(root, earlier)); err == nil {
				fmt.Fprintf(stderr, "%s: warning: %s reads %s first, so this file is not used there\n", file, order.forge, filepath.Join(root, earlier))
				break
			}
		}
	}
}

// policyRoot finds which entry of paths file is (by its trailing path) and
// the repository root it sits in; pos is -1 when it is none of them.
func policyRoot(file string, paths []string) (string, int) {
	clean := filepath.ToSlash(filepath.Clean(file))
	for i, p := range paths {
		if clean == p {
			return ".", i
		}
		if strings.HasSuffix(clean, "/"+p) {
			return filepath.FromSlash(strings.TrimSuffix(clean, "/"+p)), i
		}
	}
	return "", -1
}

func cmdExplain(args []string, stdout io.Writer) error {
	fs := newFlagSet("explain")
	policyFile := fs.String("policy", "", "policy file (default: the built-in default policy)")
	changeFile := fs.String("change", "", "the change described as JSON (see examples/change.json)")
	format := fs.String("format", "text", "output format: text, json or markdown")
	if err := fs.Parse(args); err != nil {
		return flagErr(fs, err)
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
	if v.State != bot.Success {
		return exitError(1)
	}
	return nil
}
