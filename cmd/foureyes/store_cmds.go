package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/release"
	"github.com/foureyes-dev/foureyes/store"
)

// openStore opens the configured database for the offline commands.
func openStore(ctx context.Context, fs *flag.FlagSet, args []string) (*store.DB, error) {
	configFile := fs.String("config", "", "YAML configuration file (the environment wins)")
	database := fs.String("database", "", "database (default: FOUREYES_DATABASE or sqlite:foureyes.db)")
	if err := fs.Parse(args); err != nil {
		return nil, flagErr(fs, err)
	}
	dsn := *database
	if dsn == "" {
		cfg, err := LoadConfig(*configFile, os.Getenv)
		if err != nil {
			return nil, err
		}
		dsn = cfg.Database
	}
	db, err := store.Open(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return db, nil
}

func cmdAudit(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: foureyes audit verify|export|list|dead|retry (see 'foureyes audit --help')", errUsage)
	}
	sub, rest := args[0], args[1:]
	if isHelpArg(sub) {
		return &helpRequest{name: "audit"}
	}
	fs := newFlagSet("audit " + sub)
	var (
		repo   = fs.String("repo", "", "only records of this repository (OWNER/NAME)")
		since  = fs.String("since", "", "only records at or after this time (RFC 3339 or a duration ago, e.g. 24h)")
		until  = fs.String("until", "", "only records before this time (RFC 3339)")
		out    = fs.String("o", "", "export: write to this file instead of stdout")
		limit  = fs.Int("n", 20, "list: how many recent records")
		format = fs.String("format", "text", "list: text or json")
	)
	db, err := openStore(ctx, fs, rest)
	if err != nil {
		return err
	}
	defer db.Close()
	filter := store.AuditFilter{Repo: *repo}
	if filter.Since, err = parseWhen(*since); err != nil {
		return err
	}
	if filter.Until, err = parseWhen(*until); err != nil {
		return err
	}
	switch sub {
	case "verify":
		n, err := db.VerifyAudit(ctx)
		if err != nil {
			fmt.Fprintf(stdout, "audit trail BROKEN after %d good records: %v\n", n, err)
			return exitError(1)
		}
		fmt.Fprintf(stdout, "audit trail intact: %d records verified\n", n)
		return nil
	case "export":
		w := stdout
		if *out != "" {
			f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			defer f.Close()
			w = f
		}
		enc := json.NewEncoder(w)
		n := 0
		err := db.EachAudit(ctx, func(r audit.Record) error {
			if !matches(filter, r) {
				return nil
			}
			n++
			return enc.Encode(r)
		})
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if *out != "" {
			fmt.Fprintf(os.Stderr, "exported %d records to %s\n", n, *out)
		}
		return nil
	case "list":
		recs, err := recentAudit(ctx, db, filter, *limit)
		if err != nil {
			return err
		}
		if *format == "json" {
			enc := json.NewEncoder(stdout)
			for _, r := range recs {
				if err := enc.Encode(r); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tFORGE\tREPO\tCHANGE\tHEAD\tVERDICT")
		for _, r := range recs {
			change := ""
			if r.Change != 0 {
				change = "#" + strconv.Itoa(r.Change)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.UTC().Format(time.RFC3339), r.Kind, r.Forge, r.Repo, change, shortHead(r.HeadSHA), r.Verdict)
		}
		return tw.Flush()
	case "dead":
		ds, err := db.ListDeliveries(ctx, store.StateDead, *limit)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tDELIVERY\tFORGE\tKEY\tATTEMPTS\tLAST ERROR")
		for _, d := range ds {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", d.Seq, d.ID, d.Forge, d.Key, d.Attempts, d.LastError)
		}
		return tw.Flush()
	case "retry":
		if fs.NArg() == 0 {
			return fmt.Errorf("%w: foureyes audit retry SEQ... (see `foureyes audit dead`)", errUsage)
		}
		for _, a := range fs.Args() {
			seq, err := strconv.ParseInt(a, 10, 64)
			if err != nil {
				return fmt.Errorf("%w: %q is not a delivery sequence number", errUsage, a)
			}
			if err := db.Requeue(ctx, seq); err != nil {
				return fmt.Errorf("retry %d: %w", seq, err)
			}
			fmt.Fprintf(stdout, "delivery %d queued again\n", seq)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown audit command %q (verify, export, list, dead, retry)", errUsage, sub)
}

func matches(f store.AuditFilter, r audit.Record) bool {
	return (f.Repo == "" || r.Repo == f.Repo) &&
		(f.Since.IsZero() || !r.Time.Before(f.Since)) &&
		(f.Until.IsZero() || r.Time.Before(f.Until))
}

// recentAudit returns the last n matching records, oldest first.
func recentAudit(ctx context.Context, db *store.DB, f store.AuditFilter, n int) ([]audit.Record, error) {
	var ring []audit.Record
	err := db.EachAudit(ctx, func(r audit.Record) error {
		if matches(f, r) {
			ring = append(ring, r)
			if len(ring) > n {
				ring = ring[1:]
			}
		}
		return nil
	})
	return ring, err
}

func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %q is neither RFC 3339 nor a duration", errUsage, s)
	}
	return t, nil
}

func shortHead(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

func cmdBackup(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("backup")
	db, err := openStore(ctx, fs, args)
	if err != nil {
		return err
	}
	defer db.Close()
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: foureyes backup PATH", errUsage)
	}
	path := fs.Arg(0)
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("backup: %s already exists; choose a new path", path)
	}
	if err := db.Backup(ctx, path); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "backup written to %s\n", path)
	return nil
}

func cmdReport(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("report")
	repo := fs.String("repo", "", "repository, OWNER/NAME (GitLab: the project path)")
	tag := fs.String("tag", "", "release tag")
	forge := fs.String("forge", "github", "github or gitlab")
	format := fs.String("format", "markdown", "markdown or json")
	db, err := openStore(ctx, fs, args)
	if err != nil {
		return err
	}
	defer db.Close()
	if *repo == "" || *tag == "" {
		return fmt.Errorf("%w: foureyes report --repo OWNER/NAME --tag TAG [--format markdown|json]", errUsage)
	}
	rep, err := release.Load(ctx, db, *forge, *repo, *tag)
	if errors.Is(err, release.ErrNoReport) {
		return fmt.Errorf("no report for %s %s on %s: the tag was not pushed while foureyes watched, or it does not match release.tags", *repo, *tag, *forge)
	}
	if err != nil {
		return err
	}
	switch *format {
	case "markdown":
		fmt.Fprint(stdout, release.RenderMarkdown(rep))
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	default:
		return fmt.Errorf("%w: unknown --format %q", errUsage, *format)
	}
	return nil
}
