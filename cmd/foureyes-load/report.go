package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
)

// Goals of issue 4 for intake on a two-core machine.
const (
	// Issue 16, burst mode.
	goalRateLimitedPerDelivery = 0.7
	goalFinalAfterS            = 5.0
	// Issue 16, restart: every pull request final within 3 s of the restart
	// that follows kill -9 (--crash).
	goalFinalAfterRestartS = 3.0

	goalAcceptedPerS = 1000
	goalP99MS        = 50
	goalPeakRSSMB    = 100
)

// report is the outcome of a run; --json prints it as is.
type report struct {
	Date              string  `json:"date"`
	CPUs              int     `json:"cpus"`
	GoMaxProcs        int     `json:"gomaxprocs"`
	Mode              string  `json:"mode"` // spawn or url
	Target            string  `json:"target"`
	Database          string  `json:"database,omitempty"`
	ServerWorkers     string  `json:"server_workers,omitempty"`
	ServerLogLevel    string  `json:"server_log_level,omitempty"`
	Payload           string  `json:"payload"`
	PayloadBytes      int     `json:"payload_bytes"`
	Event             string  `json:"event"`
	PerChangeKeys     bool    `json:"per_change_keys"`
	Requested         int     `json:"requested"`
	Concurrency       int     `json:"concurrency"`
	Rate              float64 `json:"rate_per_s,omitempty"`
	DuplicateFraction float64 `json:"duplicate_fraction"`
	KeepAlive         bool    `json:"keepalive"`
	RunID             string  `json:"run_id"`
	// CalibrationUS is the machine's speed before the load (calibrate).
	CalibrationUS float64 `json:"calibration_us"`

	StoppedBy      string            `json:"stopped_by"`
	Sent           int               `json:"sent"`
	DuplicatesSent int               `json:"duplicates_sent"`
	Accepted       int               `json:"accepted"`
	Duplicates     int               `json:"duplicates"`
	Errors         map[string]int    `json:"errors"`
	ErrorSamples   map[string]string `json:"error_samples,omitempty"`
	ElapsedS       float64           `json:"elapsed_s"`
	AcceptedPerS   float64           `json:"accepted_per_s"`
	AckedPerS      float64           `json:"acked_per_s"`
	LatencyMS      latencyJSON       `json:"latency_ms"`
	Timeline       []second          `json:"timeline"`
	StartLagMS     *latencyJSON      `json:"start_lag_ms,omitempty"`

	ServerPID           int     `json:"server_pid,omitempty"`
	ServerRSSBeforeMB   float64 `json:"server_rss_before_mb,omitempty"`
	ServerPeakRSSMB     float64 `json:"server_peak_rss_mb,omitempty"`
	ServerRSSAfterMB    float64 `json:"server_rss_after_mb,omitempty"`
	ServerCPUSeconds    float64 `json:"server_cpu_s,omitempty"`
	ProcessedDuringLoad int     `json:"processed_during_load"`
	RetriesDuringLoad   int     `json:"retries_during_load"`
	DeadDuringLoad      int     `json:"dead_letters_during_load"`
	DrainedAfterLoadS   float64 `json:"drained_after_load_s,omitempty"`
	ProcessedPerS       float64 `json:"processed_per_s,omitempty"`
	ToolPeakRSSMB       float64 `json:"tool_peak_rss_mb,omitempty"`

	Burst *burstReport `json:"burst,omitempty"`

	Goals    []goal   `json:"goals"`
	Warnings []string `json:"warnings,omitempty"`
}

type latencyJSON struct {
	Count int     `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

type goal struct {
	Name     string  `json:"name"`
	Target   string  `json:"target"`
	Measured float64 `json:"measured"`
	Met      bool    `json:"met"`
	Known    bool    `json:"known"` // false: not measured (e.g. RSS without --pid)
}

func (rep *report) fill(res *loadResult) {
	s := summarize(res.Latencies)
	rep.StoppedBy = res.StoppedBy
	rep.Sent, rep.DuplicatesSent = res.Sent, res.DupsSent
	rep.Accepted, rep.Duplicates = res.Accepted, res.Duplicates
	rep.Errors, rep.ErrorSamples = res.Errors, res.ErrorTexts
	rep.ElapsedS = round3(res.Elapsed.Seconds())
	rep.AcceptedPerS = round3(rate(res.Accepted, res.Elapsed))
	rep.AckedPerS = round3(rate(res.Accepted+res.Duplicates, res.Elapsed))
	rep.Timeline = timeline(res.AckedAt, res.Latencies)
	if len(res.Lags) > 0 {
		lag := summarize(res.Lags)
		rep.StartLagMS = &latencyJSON{Count: lag.Count, Min: ms(lag.Min), Mean: ms(lag.Mean), P50: ms(lag.P50), P90: ms(lag.P90), P99: ms(lag.P99), Max: ms(lag.Max)}
	}
	rep.LatencyMS = latencyJSON{Count: s.Count, Min: ms(s.Min), Mean: ms(s.Mean), P50: ms(s.P50), P90: ms(s.P90), P99: ms(s.P99), Max: ms(s.Max)}
}

func (rep *report) evaluateGoals() {
	rep.Goals = []goal{
		// In open loop the offered rate caps the throughput: only a
		// closed-loop run measures the capacity.
		{Name: "throughput", Target: fmt.Sprintf(">= %d accepted/s (closed loop)", goalAcceptedPerS), Measured: rep.AcceptedPerS,
			Met: rep.AcceptedPerS >= goalAcceptedPerS, Known: rep.Accepted > 0 && rep.Rate == 0},
		{Name: "p99 ack latency", Target: fmt.Sprintf("<= %d ms", goalP99MS), Measured: rep.LatencyMS.P99,
			Met: rep.LatencyMS.Count > 0 && rep.LatencyMS.P99 <= goalP99MS, Known: rep.LatencyMS.Count > 0},
		{Name: "peak RSS", Target: fmt.Sprintf("<= %d MB", goalPeakRSSMB), Measured: rep.ServerPeakRSSMB,
			Met: rep.ServerPeakRSSMB > 0 && rep.ServerPeakRSSMB <= goalPeakRSSMB, Known: rep.ServerPeakRSSMB > 0},
	}
	if b := rep.Burst; b != nil {
		rep.Goals = append(rep.Goals,
			goal{Name: "rate-limited requests per delivery", Target: fmt.Sprintf("<= %.1f (304s not counted)", goalRateLimitedPerDelivery),
				Measured: b.RateLimitedPerD, Met: b.RateLimitedPerD <= goalRateLimitedPerDelivery, Known: rep.Accepted > 0},
			goal{Name: "final verdicts correct", Target: fmt.Sprintf("all %d", b.Changes), Measured: float64(b.Correct),
				Met: b.Correct == b.Changes, Known: true},
		)
		if b.AfterCrash {
			rep.Goals = append(rep.Goals, goal{Name: "time to final after kill -9", Target: fmt.Sprintf("<= %.0f s after the restart", goalFinalAfterRestartS),
				Measured: b.FinalAfterS, Met: b.FinalAfterS >= 0 && b.FinalAfterS <= goalFinalAfterRestartS, Known: true})
		} else {
			rep.Goals = append(rep.Goals, goal{Name: "time to final", Target: fmt.Sprintf("<= %.0f s after the last delivery", goalFinalAfterS),
				Measured: b.FinalAfterS, Met: b.FinalAfterS >= 0 && b.FinalAfterS <= goalFinalAfterS, Known: true})
		}
	}
}

func (rep *report) writeJSON(w io.Writer) error {
	rep.evaluateGoals()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func (rep *report) writeText(w io.Writer, perSecond bool) {
	rep.evaluateGoals()
	fmt.Fprintf(w, "foureyes-load  %s  %d CPUs (GOMAXPROCS %d)\n", rep.Date, rep.CPUs, rep.GoMaxProcs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{k}, a...)...) }
	row("target", "%s (%s)", rep.Target, rep.Mode)
	if rep.Database != "" {
		row("database", "%s", rep.Database)
	}
	if rep.Mode == "spawn" {
		workers := rep.ServerWorkers
		if workers == "" {
			workers = "server default"
		}
		row("server", "workers %s, log level %s, fake GitHub in the load process", workers, rep.ServerLogLevel)
	}
	keys := "one ordering key per delivery"
	if !rep.PerChangeKeys {
		keys = "payload sent unchanged"
	}
	row("payload", "%s, %s event, %.1f KB, %s", rep.Payload, rep.Event, float64(rep.PayloadBytes)/1024, keys)
	if rep.CalibrationUS > 0 {
		row("calibration", "decoding the payload with encoding/json took %.0f µs (median of %d, before the load): compare figures only next to this", rep.CalibrationUS, calibrationRuns)
	}
	load := "closed loop (next request when one is answered)"
	if rep.Rate > 0 {
		load = fmt.Sprintf("open loop at %.0f/s (latency from scheduled start)", rep.Rate)
	}
	conn := "keep-alive"
	if !rep.KeepAlive {
		conn = "new connection per request"
	}
	row("load", "%d requests, concurrency %d, %s, %s", rep.Requested, rep.Concurrency, load, conn)
	if rep.DuplicateFraction > 0 {
		row("duplicates", "%.0f%% of requests resend an earlier delivery (%d sent)", rep.DuplicateFraction*100, rep.DuplicatesSent)
	}
	fmt.Fprintln(tw, "\t")
	row("sent", "%d (stopped by %s)", rep.Sent, rep.StoppedBy)
	row("accepted (202)", "%d", rep.Accepted)
	row("duplicate (200)", "%d", rep.Duplicates)
	row("errors", "%s", formatErrors(rep.Errors))
	row("elapsed", "%.2f s", rep.ElapsedS)
	row("throughput", "%.0f accepted/s  (%.0f acknowledged/s)", rep.AcceptedPerS, rep.AckedPerS)
	l := rep.LatencyMS
	row("ack latency", "p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms  (mean %.1f, n=%d)", l.P50, l.P90, l.P99, l.Max, l.Mean, l.Count)
	if lag := rep.StartLagMS; lag != nil {
		row("start lag", "p50 %.1f ms  p99 %.1f ms  max %.1f ms behind schedule (included in the latency)", lag.P50, lag.P99, lag.Max)
	}
	if full := fullSeconds(rep.Timeline); len(full) > 1 {
		lo, worst := full[0], full[0]
		for _, s := range full {
			if s.Acked < lo.Acked {
				lo = s
			}
			if s.P99MS > worst.P99MS {
				worst = s
			}
		}
		row("per second", "slowest second %d: %d acked; worst p99 in second %d: %.1f ms", lo.Start, lo.Acked, worst.Start, worst.P99MS)
	}
	if rep.ServerPeakRSSMB > 0 {
		row("server RSS", "peak %.1f MB (VmHWM)  before %.1f MB  end %.1f MB", rep.ServerPeakRSSMB, rep.ServerRSSBeforeMB, rep.ServerRSSAfterMB)
	} else {
		row("server RSS", "unknown (give --pid)")
	}
	if rep.ServerCPUSeconds > 0 {
		row("server CPU", "%.1f s (%.2f cores, %.0f µs/accepted)", rep.ServerCPUSeconds,
			rep.ServerCPUSeconds/math.Max(rep.ElapsedS, 1e-9), rep.ServerCPUSeconds/math.Max(float64(rep.Accepted), 1)*1e6)
	}
	row("processed", "%d ok, %d retries, %d dead-lettered during the load", rep.ProcessedDuringLoad, rep.RetriesDuringLoad, rep.DeadDuringLoad)
	if rep.DrainedAfterLoadS > 0 {
		row("drain", "queue empty %.1f s after the load (%.0f processed/s overall)", rep.DrainedAfterLoadS, rep.ProcessedPerS)
	}
	if rep.ToolPeakRSSMB > 0 {
		row("load tool RSS", "peak %.1f MB", rep.ToolPeakRSSMB)
	}
	if b := rep.Burst; b != nil {
		fmt.Fprintln(tw, "\t")
		row("burst", "%d pull requests x %d deliveries", b.Changes, b.PerChange)
		row("forge requests", "%d: %d rate-limited, %d answered 304, %d token", b.Requests, b.RateLimited, b.NotModified, b.TokenRequests)
		row("per delivery", "%.3f rate-limited, %.3f 304, %.3f in all", b.RateLimitedPerD, b.NotModifiedPerD, b.PerDelivery)
		row("final verdicts", "%d of %d correct", b.Correct, b.Changes)
		switch {
		case b.FinalAfterS >= 0 && b.AfterCrash:
			row("kill -9", "right after the last delivery's answer: %d of %d pull requests final then, %d deliveries processed", b.FinalAtCrash, b.Changes, rep.ProcessedDuringLoad)
			row("time to final", "%.2f s after the restart that followed kill -9 (every final head as expected)", b.FinalAfterS)
		case b.FinalAfterS >= 0:
			row("time to final", "%.2f s after the last delivery (queue drained, every final head as expected)", b.FinalAfterS)
		default:
			row("time to final", "not reached")
		}
		for _, r := range b.TopRoutes {
			row("  requests", "%6d  %s", r.Count, r.Route)
		}
		for _, w := range b.Wrong {
			row("  wrong", "%s", w)
		}
	}
	fmt.Fprintln(tw, "\t")
	for _, g := range rep.Goals {
		verdict := "MISSED"
		switch {
		case !g.Known:
			verdict = "not measured"
		case g.Met:
			verdict = "met"
		}
		row("goal "+g.Name, "%s: %s", g.Target, verdict)
	}
	tw.Flush()
	if perSecond {
		fmt.Fprintln(w, "\n  second  acked   p99 ms   max ms")
		for _, s := range rep.Timeline {
			fmt.Fprintf(w, "  %6d  %5d  %7.1f  %7.1f\n", s.Start, s.Acked, s.P99MS, s.MaxMS)
		}
	}
	for k, v := range rep.ErrorSamples {
		fmt.Fprintf(w, "  first %s answer: %s\n", k, v)
	}
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
}

func formatErrors(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func mb(bytes int64) float64 { return round3(float64(bytes) / (1024 * 1024)) }

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// redactURL hides a database password in the report.
func redactURL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	return u.Redacted()
}

// fullSeconds drops the last second of a timeline, which the run's end
// usually cuts short.
func fullSeconds(t []second) []second {
	if len(t) == 0 {
		return nil
	}
	return t[:len(t)-1]
}
