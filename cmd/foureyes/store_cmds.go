package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/release"
	"github.com/foureyes-dev/foureyes/store"
)

// storeFlags are the flags every offline command shares.
type storeFlags struct {
	configFile, database *string
}

func addStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		configFile: fs.String("config", "", "YAML configuration file (the environment wins)"),
		database:   fs.String("database", "", "database (default: FOUREYES_DATABASE or sqlite:foureyes.db)"),
	}
}

func (sf storeFlags) config() (*Config, error) {
	cfg, err := LoadConfig(*sf.configFile, os.Getenv)
	if err != nil {
		return nil, err
	}
	if *sf.database != "" {
		cfg.Database = *sf.database
	}
	return cfg, nil
}

// open opens an existing database (never creating one: a command that
// reads the trail must not find an empty database it just made intact),
// keyed with chain when it is not nil.
func (sf storeFlags) open(ctx context.Context, cfg *Config, chain *audit.Chain) (*store.DB, error) {
	opts := []store.Option{store.MustExist()}
	if chain != nil {
		opts = append(opts, store.WithAuditChain(chain))
	}
	db, err := store.Open(ctx, cfg.Database, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return db, nil
}

// openStore opens the configured, existing database for the offline
// commands that do not touch the audit chain.
func openStore(ctx context.Context, fs *flag.FlagSet, args []string) (*store.DB, error) {
	sf := addStoreFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, flagErr(fs, err)
	}
	cfg, err := sf.config()
	if err != nil {
		return nil, err
	}
	return sf.open(ctx, cfg, nil)
}

func cmdAudit(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: foureyes audit verify|export|list|checkpoint|dead|retry (see 'foureyes audit --help')", errUsage)
	}
	sub, rest := args[0], args[1:]
	if isHelpArg(sub) {
		return &helpRequest{name: "audit"}
	}
	fs := newFlagSet("audit " + sub)
	var (
		repo       = fs.String("repo", "", "only records of this repository (OWNER/NAME)")
		since      = fs.String("since", "", "only records at or after this time (RFC 3339 or a duration ago, e.g. 24h)")
		until      = fs.String("until", "", "only records before this time (RFC 3339)")
		out        = fs.String("o", "", "export: write to this file instead of stdout")
		limit      = fs.Int("n", 20, "list: how many recent records")
		format     = fs.String("format", "text", "list: text or json")
		checkpoint = fs.String("checkpoint", "", "verify: a signed checkpoint the trail must contain")
		file       = fs.String("file", "", "verify: an export (JSON lines) to verify instead of the database")
	)
	sf := addStoreFlags(fs)
	if err := fs.Parse(rest); err != nil {
		return flagErr(fs, err)
	}
	cfg, err := sf.config()
	if err != nil {
		return err
	}
	filter := store.AuditFilter{Repo: *repo}
	if filter.Since, err = parseWhen(*since); err != nil {
		return err
	}
	if filter.Until, err = parseWhen(*until); err != nil {
		return err
	}
	// Everything that vouches for the trail needs the key; list, dead and
	// retry only read, and work on a database without one.
	var chain *audit.Chain
	switch sub {
	case "verify", "export", "checkpoint":
		if chain, err = auditChain(cfg, false, nil); err != nil {
			return err
		}
	default:
		chain, _ = auditChain(cfg, false, nil)
	}
	if sub == "verify" && *file != "" {
		return verifyExport(*file, *checkpoint, chain, stdout)
	}
	db, err := sf.open(ctx, cfg, chain)
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "verify":
		v := audit.NewVerifier(chain)
		var cp *audit.Checkpoint
		if *checkpoint != "" {
			c, err := readCheckpoint(*checkpoint, chain)
			if err != nil {
				fmt.Fprintf(stdout, "audit trail NOT verified: %v\n", err)
				return exitError(1)
			}
			cp = &c
			v.Expect(c)
		}
		if err := db.VerifyAuditWith(ctx, v); err != nil {
			fmt.Fprintf(stdout, "audit trail BROKEN after %d good records: %v\n", v.Count(), err)
			return exitError(1)
		}
		reportIntact(stdout, "audit trail", v, cp)
		return nil
	case "checkpoint":
		v := audit.NewVerifier(chain)
		if err := db.VerifyAuditWith(ctx, v); err != nil {
			fmt.Fprintf(stdout, "audit trail BROKEN after %d good records: %v\nno checkpoint signed\n", v.Count(), err)
			return exitError(1)
		}
		seq, head := v.Head()
		if seq == 0 {
			return errors.New("checkpoint: the audit trail is empty")
		}
		cp := chain.Checkpoint(seq, head, time.Now())
		path, err := writeCheckpoint(cfg.AuditCheckpointDir, cp)
		if err != nil {
			return err
		}
		stdout.Write(audit.MarshalCheckpoint(cp))
		fmt.Fprintf(os.Stderr, "checkpoint of seq %d written to %s\n", seq, path)
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
		// The whole trail goes through the verifier (filtered records
		// too): the checkpoint written with the export vouches for it.
		v := audit.NewVerifier(chain)
		var broken error
		err := db.EachAudit(ctx, func(r audit.Record) error {
			if broken == nil {
				broken = v.Add(r)
			}
			if !matches(filter, r) {
				return nil
			}
			n++
			return enc.Encode(r)
		})
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if broken == nil {
			broken = v.End()
		}
		if *out != "" {
			fmt.Fprintf(os.Stderr, "exported %d records to %s\n", n, *out)
		}
		if broken != nil {
			fmt.Fprintf(os.Stderr, "audit trail BROKEN after %d good records: %v\nno checkpoint signed\n", v.Count(), broken)
			return exitError(1)
		}
		if seq, head := v.Head(); seq > 0 {
			path, err := writeCheckpoint(cfg.AuditCheckpointDir, chain.Checkpoint(seq, head, time.Now()))
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			fmt.Fprintf(os.Stderr, "checkpoint of seq %d written to %s: ship it off-site with the export\n", seq, path)
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
	return fmt.Errorf("%w: unknown audit command %q (verify, export, list, checkpoint, dead, retry)", errUsage, sub)
}

// reportIntact prints the verdict of a trail that verified.
func reportIntact(w io.Writer, what string, v *audit.Verifier, cp *audit.Checkpoint) {
	seq, head := v.Head()
	fmt.Fprintf(w, "%s intact: %d records verified", what, v.Count())
	if seq > 0 {
		fmt.Fprintf(w, ", head seq %d %s", seq, head)
	}
	fmt.Fprintln(w)
	if n := v.Unkeyed(); n > 0 {
		fmt.Fprintf(w, "%d records from before the audit key are chained unkeyed; the keyed records after them vouch for them\n", n)
	}
	if cp != nil {
		fmt.Fprintf(w, "contains the checkpoint of %s (seq %d)\n", cp.Time.UTC().Format(time.RFC3339), cp.Seq)
	} else {
		fmt.Fprintln(w, "no --checkpoint given: deletion of the newest records cannot be detected without one")
	}
}

// verifyExport verifies an export file (JSON lines of audit.Record, as
// `audit export` writes them) without the database.
func verifyExport(path, checkpoint string, chain *audit.Chain, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("verify export: %w", err)
	}
	defer f.Close()
	v := audit.NewVerifier(chain)
	var cp *audit.Checkpoint
	if checkpoint != "" {
		c, err := readCheckpoint(checkpoint, chain)
		if err != nil {
			fmt.Fprintf(stdout, "export NOT verified: %v\n", err)
			return exitError(1)
		}
		cp = &c
		v.Expect(c)
	}
	br := bufio.NewReader(f)
	line := 0
	_, err = v.Run(func() (audit.Record, bool, error) {
		for {
			b, err := br.ReadBytes('\n')
			if len(b) == 0 && errors.Is(err, io.EOF) {
				return audit.Record{}, false, nil
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return audit.Record{}, false, err
			}
			line++
			if len(strings.TrimSpace(string(b))) == 0 {
				continue
			}
			r, err := audit.DecodeRecord(b)
			if err != nil {
				return r, false, fmt.Errorf("%s line %d: %w", path, line, err)
			}
			return r, true, nil
		}
	})
	if err != nil {
		fmt.Fprintf(stdout, "export BROKEN after %d good records: %v\n", v.Count(), err)
		return exitError(1)
	}
	reportIntact(stdout, "export "+path, v, cp)
	return nil
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
