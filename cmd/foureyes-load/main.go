// Command foureyes-load measures foureyes' webhook intake: it sends signed
// GitHub deliveries on loopback and reports how many were accepted per
// second, the acknowledgement latency (p50/p90/p99/max), errors by status
// and the server's peak resident memory.
//
// Against a running server:
//
//	foureyes-load --url http://127.0.0.1:8080 --secret S [--pid PID]
//
// Or starting one (with a fake GitHub in this process for its workers):
//
//	go build -o /tmp/foureyes ./cmd/foureyes
//	foureyes-load --spawn /tmp/foureyes [--database sqlite:/tmp/x.db|postgres://...]
//
// A 202 from foureyes means the delivery is committed to its store, so the
// latency measured here is the latency of a durable write. The run is
// bounded by --n requests and --duration and only ever targets loopback.
// See docs/benchmarks.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
)

func main() {
	// The tool stands in for GitHub, whose CPU is not the server's in
	// production; on a shared machine every cycle it spends is taken from
	// the server it measures. Its heap is small and it allocates a body per
	// request, so at the default it collected about every 200 ms, an eighth
	// of its CPU. Its memory is not what is measured.
	debug.SetGCPercent(400)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "foureyes-load:", err)
		}
		os.Exit(2)
	}
}

// options are the parsed flags.
type options struct {
	url, secret, secretFile string
	pid                     int
	spawn, database         string
	workers, logLevel       string
	keep                    bool
	n, concurrency          int
	duration, timeout       time.Duration
	drain                   time.Duration
	crash                   bool
	rate, dups              float64
	payload, event          string
	keepAlive, jsonOut      bool
	perSecond               bool
	changes                 int
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("foureyes-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "", "base URL of a running foureyes on loopback, e.g. http://127.0.0.1:8080")
	fs.StringVar(&o.secret, "secret", "", "GitHub webhook secret of the running server (with --url)")
	fs.StringVar(&o.secretFile, "secret-file", "", "file holding the webhook secret (with --url)")
	fs.IntVar(&o.pid, "pid", 0, "process ID of the running server, for its peak RSS (with --url)")
	fs.StringVar(&o.spawn, "spawn", "", "path to a foureyes binary to start for the run")
	fs.StringVar(&o.database, "database", "", "FOUREYES_DATABASE for --spawn (default: a fresh sqlite file in a scratch directory)")
	fs.StringVar(&o.workers, "workers", "", "FOUREYES_WORKERS for --spawn (default: the server's)")
	fs.StringVar(&o.logLevel, "server-log-level", "info", "FOUREYES_LOG_LEVEL for --spawn")
	fs.BoolVar(&o.keep, "keep", false, "keep the scratch directory of --spawn (database, server.log)")
	fs.IntVar(&o.n, "n", 20000, "total requests, duplicates included")
	fs.IntVar(&o.concurrency, "concurrency", 32, "requests in flight at most")
	fs.DurationVar(&o.duration, "duration", 2*time.Minute, "no request starts after this")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "per request")
	fs.DurationVar(&o.drain, "drain", 0, "after the load, wait up to this long for the workers to process every accepted delivery")
	fs.Float64Var(&o.rate, "rate", 0, "requests per second (open loop, latency counted from the scheduled start); 0: as fast as answered")
	fs.Float64Var(&o.dups, "duplicates", 0, "fraction (0-1) of requests that resend an earlier delivery ID")
	fs.StringVar(&o.payload, "payload", "", "JSON payload file (default: a built-in pull_request.opened)")
	fs.StringVar(&o.event, "event", "pull_request", "X-GitHub-Event for --payload")
	fs.BoolVar(&o.keepAlive, "keepalive", true, "reuse connections (GitHub's senders do; false: one connection per request)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON (it always includes the per-second timeline)")
	fs.BoolVar(&o.perSecond, "timeline", false, "print acknowledgements and latency per second after the table")
	fs.BoolVar(&o.crash, "crash", false, "burst mode: kill -9 the server right after the last delivery is answered, start it again on the same database, and report how long after the restart every pull request showed its final verdict")
	fs.IntVar(&o.changes, "changes", 0, "burst mode: --n deliveries telling the story of this many pull requests (pushes, reviews), round-robin; reports forge requests per delivery, final-verdict correctness and time to final (needs --spawn)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case (o.url == "") == (o.spawn == ""):
		return nil, errors.New("give exactly one of --url (a running server) or --spawn (a foureyes binary to start)")
	case o.url != "" && (o.database != "" || o.workers != "" || o.keep):
		return nil, errors.New("--database, --workers and --keep apply to --spawn only")
	case o.spawn != "" && (o.secret != "" || o.secretFile != "" || o.pid != 0):
		return nil, errors.New("--secret, --secret-file and --pid apply to --url only (--spawn makes its own)")
	case o.url != "" && (o.secret == "") == (o.secretFile == ""):
		return nil, errors.New("--url needs the webhook secret: --secret or --secret-file")
	case o.n < 1 || o.n > 10_000_000:
		return nil, errors.New("--n must be between 1 and 10000000")
	case o.concurrency < 1 || o.concurrency > 4096:
		return nil, errors.New("--concurrency must be between 1 and 4096")
	case o.duration <= 0 || o.duration > time.Hour:
		return nil, errors.New("--duration must be positive and at most 1h")
	case o.timeout <= 0:
		return nil, errors.New("--timeout must be positive")
	case o.crash && (o.changes == 0 || o.spawn == ""):
		return nil, errors.New("--crash needs burst mode (--changes) and --spawn")
	case o.drain < 0 || o.drain > time.Hour:
		return nil, errors.New("--drain must be between 0 and 1h")
	case o.rate < 0:
		return nil, errors.New("--rate must not be negative")
	case o.dups < 0 || o.dups >= 1:
		return nil, errors.New("--duplicates must be in [0, 1)")
	case o.changes < 0:
		return nil, errors.New("--changes must not be negative")
	case o.changes > 0 && (o.spawn == "" || o.payload != "" || o.dups > 0):
		return nil, errors.New("--changes needs --spawn (it drives the fake GitHub) and no --payload or --duplicates")
	case o.changes > 0 && o.n/o.changes < 2:
		return nil, errors.New("--changes: --n must give each pull request at least 2 deliveries")
	case o.database != "" && !strings.HasPrefix(o.database, "sqlite:") && !strings.HasPrefix(o.database, "postgres://") && !strings.HasPrefix(o.database, "postgresql://"):
		return nil, errors.New("--database must be sqlite:PATH or a postgres:// URL")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	tmpl, err := builtinTemplate()
	payloadName := "built-in pull_request.opened"
	if o.payload != "" {
		raw, rerr := os.ReadFile(o.payload)
		if rerr != nil {
			return rerr
		}
		tmpl, err = fileTemplate(o.event, raw)
		payloadName = o.payload
	}
	if err != nil {
		return fmt.Errorf("payload: %w", err)
	}

	cfg := loadConfig{
		n: o.n, concurrency: o.concurrency, duration: o.duration, rate: o.rate, dupFraction: o.dups,
		timeout: o.timeout, keepAlive: o.keepAlive, tmpl: tmpl, runID: "load-" + randomHex(6),
		seed: uint64(time.Now().UnixNano()),
	}
	rep := &report{
		Date: time.Now().UTC().Format(time.RFC3339), CPUs: runtime.NumCPU(), GoMaxProcs: runtime.GOMAXPROCS(0),
		Payload: payloadName, PayloadBytes: len(tmpl.render(1, headSHA("x", 1))), Event: tmpl.event,
		PerChangeKeys: tmpl.perChange, Requested: o.n, Concurrency: o.concurrency, Rate: o.rate,
		DuplicateFraction: o.dups, KeepAlive: o.keepAlive, RunID: cfg.runID,
		CalibrationUS: float64(calibrate(tmpl.render(1, headSHA("x", 1))).Nanoseconds()) / 1e3,
	}

	var (
		srv *server
		pid int
	)
	if o.spawn != "" {
		dir, err := os.MkdirTemp("", "foureyes-load-")
		if err != nil {
			return err
		}
		if o.keep {
			fmt.Fprintln(stderr, "foureyes-load: scratch directory", dir)
		} else {
			defer os.RemoveAll(dir)
		}
		srv, err = spawnServer(ctx, spawnConfig{binary: o.spawn, database: o.database, workers: o.workers, logLevel: o.logLevel, dir: dir}, tmpl)
		if err != nil {
			return err
		}
		stopped := false
		defer func() {
			if !stopped {
				_ = srv.stop()
			}
		}()
		cfg.baseURL, cfg.secret, pid = srv.url, srv.secret, srv.pid()
		cfg.newChange = srv.seedChange(tmpl)
		cfg.tally = srv.tally
		if o.changes > 0 {
			if cfg.burst, err = newBurst(o.changes, o.n, cfg.runID, srv.fake); err != nil {
				return err
			}
			cfg.n, cfg.newChange = cfg.burst.total(), nil
			rep.Requested = cfg.n
			rep.Payload, rep.Event = fmt.Sprintf("burst over %d pull requests (opened, synchronize, reviews)", o.changes), "pull_request, pull_request_review"
		}
		rep.Mode, rep.Target, rep.Database = "spawn", srv.url, redactURL(srv.database)
		rep.ServerWorkers = o.workers
		rep.ServerLogLevel = o.logLevel
		if o.crash {
			cfg.crash = srv.crash
		}
		if err := measure(ctx, cfg, rep, pid, o.drain); err != nil {
			return err
		}
		stopped = true
		if err := srv.stop(); err != nil {
			rep.Warnings = append(rep.Warnings, err.Error())
		}
	} else {
		base, err := checkLoopback(o.url)
		if err != nil {
			return err
		}
		secret := []byte(o.secret)
		if o.secretFile != "" {
			raw, err := os.ReadFile(o.secretFile)
			if err != nil {
				return err
			}
			secret = []byte(strings.TrimRight(string(raw), "\r\n"))
		}
		if o.pid != 0 {
			if _, err := procStatus(o.pid, "VmHWM"); err != nil {
				return fmt.Errorf("--pid %d: %w", o.pid, err)
			}
		}
		cfg.baseURL, cfg.secret, pid = base, secret, o.pid
		rep.Mode, rep.Target = "url", base
		if err := measure(ctx, cfg, rep, pid, o.drain); err != nil {
			return err
		}
	}
	if o.jsonOut {
		return rep.writeJSON(stdout)
	}
	rep.writeText(stdout, o.perSecond)
	return nil
}

// measure runs the load against cfg.baseURL and fills rep.
func measure(ctx context.Context, cfg loadConfig, rep *report, pid int, drain time.Duration) error {
	before := scrape(ctx, cfg.baseURL)
	var rssBefore int64
	if pid != 0 {
		rssBefore, _ = procStatus(pid, "VmRSS")
	}
	if cfg.tally != nil {
		cfg.tally.reset() // what the fake answered before the load is not the load's
	}
	res := runLoad(ctx, cfg)
	lastAck := time.Now()
	after := scrape(ctx, cfg.baseURL)
	rep.fill(res)
	if cfg.crash != nil {
		// What the dead process counted is gone with it: from here on
		// only the verdicts on the fake tell when the work is done.
		rep.ServerCPUSeconds = round3(after.CPUSeconds - before.CPUSeconds)
		rep.ProcessedDuringLoad = int(after.Processed - before.Processed)
		finalAtCrash := cfg.burst.correct()
		restarted, err := cfg.crash(ctx)
		if err != nil {
			return err
		}
		limit := drain
		if limit <= 0 {
			limit = burstFinalLimit
		}
		rep.Burst = cfg.burst.awaitFinal(ctx, cfg.baseURL, serverMetrics{}, res.Accepted, false, restarted, cfg.tally, limit)
		rep.Burst.AfterCrash, rep.Burst.FinalAtCrash = true, finalAtCrash
		return nil
	}
	if before.OK && after.OK {
		rep.ServerCPUSeconds = round3(after.CPUSeconds - before.CPUSeconds)
		rep.ProcessedDuringLoad = int(after.Processed - before.Processed)
		rep.RetriesDuringLoad = int(after.Retried - before.Retried)
		rep.DeadDuringLoad = int(after.Dead - before.Dead)
		if cfg.burst != nil {
			limit := drain
			if limit <= 0 {
				limit = burstFinalLimit
			}
			rep.Burst = cfg.burst.awaitFinal(ctx, cfg.baseURL, before, res.Accepted, true, lastAck, cfg.tally, limit)
		} else if drain > 0 && res.Accepted > 0 {
			rep.drain(ctx, cfg.baseURL, before, res, drain)
		}
	} else {
		rep.Warnings = append(rep.Warnings, "no /metrics: server CPU and processing figures unavailable")
	}
	// Read after the drain: the peak then covers processing too.
	if pid != 0 {
		rep.ServerPID = pid
		rep.ServerRSSBeforeMB = mb(rssBefore)
		if hwm, err := procStatus(pid, "VmHWM"); err == nil {
			rep.ServerPeakRSSMB = mb(hwm)
		} else {
			rep.Warnings = append(rep.Warnings, "peak RSS: "+err.Error())
		}
		if rss, err := procStatus(pid, "VmRSS"); err == nil {
			rep.ServerRSSAfterMB = mb(rss)
		}
	}
	if self, err := procStatus(os.Getpid(), "VmHWM"); err == nil {
		rep.ToolPeakRSSMB = mb(self)
	}
	if res.StoppedBy == "interrupted" {
		return errors.New("interrupted")
	}
	return nil
}

// drain waits until the workers have finished (done or dead-lettered) as
// many deliveries as the load had accepted.
func (rep *report) drain(ctx context.Context, base string, before serverMetrics, res *loadResult, limit time.Duration) {
	start := time.Now()
	deadline := start.Add(limit)
	for {
		m := scrape(ctx, base)
		finished := int(m.Processed+m.Dead) - int(before.Processed+before.Dead)
		if m.OK && finished >= res.Accepted {
			total := res.Elapsed + time.Since(start)
			rep.DrainedAfterLoadS = round3(time.Since(start).Seconds())
			rep.ProcessedPerS = round3(rate(finished, total))
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("drain: %d of %d accepted deliveries finished after %s", finished, res.Accepted, limit))
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
