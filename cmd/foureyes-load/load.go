package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// loadConfig is one load run.
type loadConfig struct {
	baseURL     string // e.g. http://127.0.0.1:8080
	secret      []byte
	n           int           // total requests, duplicates included
	concurrency int           // requests in flight at most
	duration    time.Duration // no request starts after this
	rate        float64       // requests/s; 0: as fast as the server answers (closed loop)
	dupFraction float64       // share of requests that resend an earlier delivery
	timeout     time.Duration // per request
	keepAlive   bool
	tmpl        *template
	runID       string // makes delivery IDs unique across runs on one database
	seed        uint64 // for the duplicate choice
	// newChange, when set, is called once per distinct pull request before
	// its first delivery is sent (spawn mode seeds the fake GitHub with it).
	newChange func(number int, sha string)
	// burst, when set, makes the deliveries (--changes; see burst.go).
	burst *burst
	// crash, when set (--crash), kills the server after the load and
	// starts it again, returning when the restart began.
	crash func(context.Context) (time.Time, error)
	// tally counts the fake GitHub's requests (spawn mode).
	tally *requestTally
}

// job is one request to send.
type job struct {
	number   int
	sha      string
	delivery string
	dup      bool
	due      time.Time // rate mode: when it should start; zero otherwise
	tmpl     *template // burst mode: the event's own template
	review   int64     // burst mode: review ID of a review event
}

// loadResult is what a run measured.
type loadResult struct {
	Sent       int
	DupsSent   int
	Accepted   int            // 202: stored now
	Duplicates int            // 200: already stored
	Errors     map[string]int // any other status, or "transport"
	ErrorTexts map[string]string
	Latencies  []time.Duration // of 200 and 202 answers
	AckedAt    []time.Duration // when each of those arrived, since the start (same order)
	Lags       []time.Duration // rate mode: how late each request started against its schedule
	Elapsed    time.Duration   // first request start to last answer
	StoppedBy  string          // "count", "duration" or "interrupted"
}

func (r *loadResult) add(o *loadResult) {
	r.Sent += o.Sent
	r.DupsSent += o.DupsSent
	r.Accepted += o.Accepted
	r.Duplicates += o.Duplicates
	for k, v := range o.Errors {
		r.Errors[k] += v
	}
	for k, v := range o.ErrorTexts {
		if _, ok := r.ErrorTexts[k]; !ok {
			r.ErrorTexts[k] = v
		}
	}
	r.Latencies = append(r.Latencies, o.Latencies...)
	r.AckedAt = append(r.AckedAt, o.AckedAt...)
	r.Lags = append(r.Lags, o.Lags...)
}

func newResult() *loadResult {
	return &loadResult{Errors: map[string]int{}, ErrorTexts: map[string]string{}}
}

// checkLoopback refuses any target that is not on this machine: the tool
// sends thousands of requests and must never be pointed at a real service.
func checkLoopback(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return "", fmt.Errorf("--url must be http://HOST:PORT on loopback, got %q", raw)
	}
	host := u.Hostname()
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return "", fmt.Errorf("--url host %q is not a loopback address (127.0.0.0/8, ::1 or localhost)", host)
		}
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

func sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// runLoad sends the deliveries and measures the answers. It returns when
// cfg.n requests were answered, cfg.duration passed (in-flight requests are
// still awaited) or ctx was cancelled.
func runLoad(ctx context.Context, cfg loadConfig) *loadResult {
	transport := &http.Transport{
		Proxy:               nil, // loopback only: never through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        cfg.concurrency,
		MaxIdleConnsPerHost: cfg.concurrency,
		IdleConnTimeout:     30 * time.Second,
		DisableKeepAlives:   !cfg.keepAlive,
		DisableCompression:  true,
		// A delivery (about 21 KB) leaves in one write, not in the
		// default 4 KB buffer's six: fewer system calls for the load tool
		// and fewer wake-ups for the server it shares the CPUs with.
		WriteBufferSize: 64 << 10,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: cfg.timeout}
	target := cfg.baseURL + "/webhooks/github"

	jobs := make(chan job, cfg.concurrency)
	stoppedBy := make(chan string, 1)
	start := time.Now()
	go produce(ctx, cfg, start, jobs, stoppedBy)

	results := make([]*loadResult, cfg.concurrency)
	var wg sync.WaitGroup
	for w := range cfg.concurrency {
		res := newResult()
		results[w] = res
		wg.Go(func() {
			for j := range jobs {
				send(ctx, client, target, cfg, start, j, res)
			}
		})
	}
	wg.Wait()
	total := newResult()
	total.Elapsed = time.Since(start)
	total.StoppedBy = <-stoppedBy
	for _, r := range results {
		total.add(r)
	}
	return total
}

// produce feeds jobs until n, the duration or ctx ends the run.
func produce(ctx context.Context, cfg loadConfig, start time.Time, jobs chan<- job, stoppedBy chan<- string) {
	defer close(jobs)
	rng := rand.New(rand.NewPCG(cfg.seed, 0x6f75726579657321))
	deadline := start.Add(cfg.duration)
	timer := time.NewTimer(0)
	defer timer.Stop()
	originals := 0
	for i := range cfg.n {
		var j job
		if cfg.rate > 0 {
			j.due = start.Add(time.Duration(float64(i) / cfg.rate * float64(time.Second)))
			if d := time.Until(j.due); d > 0 {
				timer.Reset(d)
				select {
				case <-ctx.Done():
					stoppedBy <- "interrupted"
					return
				case <-timer.C:
				}
			}
		}
		if ctx.Err() != nil {
			stoppedBy <- "interrupted"
			return
		}
		if !time.Now().Before(deadline) {
			stoppedBy <- "duration"
			return
		}
		if cfg.burst != nil {
			bj := cfg.burst.next(i)
			bj.due = j.due
			j = bj
		} else if originals > 0 && cfg.dupFraction > 0 && rng.Float64() < cfg.dupFraction {
			j.number = 1 + rng.IntN(originals)
			j.dup = true
		} else {
			originals++
			j.number = originals
		}
		if cfg.burst == nil {
			j.delivery = cfg.runID + "-" + strconv.Itoa(j.number)
			j.sha = headSHA(cfg.runID, j.number)
			if !j.dup && cfg.newChange != nil {
				cfg.newChange(j.number, j.sha)
			}
		}
		select {
		case jobs <- j:
		case <-ctx.Done():
			stoppedBy <- "interrupted"
			return
		}
	}
	stoppedBy <- "count"
}

// headSHA is a distinct, deterministic 40-hex head commit per change.
func headSHA(runID string, number int) string {
	h := sha256.Sum256([]byte(runID + "/" + strconv.Itoa(number)))
	return hex.EncodeToString(h[:20])
}

func send(ctx context.Context, client *http.Client, target string, cfg loadConfig, start time.Time, j job, res *loadResult) {
	body, event := cfg.tmpl.render(j.number, j.sha), cfg.tmpl.event
	if j.tmpl != nil {
		body, event = j.render(), j.tmpl.event
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		res.Errors["transport"]++
		res.ErrorTexts["transport"] = err.Error()
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/foureyes-load")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", j.delivery)
	req.Header.Set("X-GitHub-Hook-ID", "1")
	req.Header.Set("X-GitHub-Hook-Installation-Target-Type", "integration")
	req.Header.Set("X-Hub-Signature-256", sign(cfg.secret, body))

	res.Sent++
	if j.dup {
		res.DupsSent++
	}
	began := time.Now()
	if !j.due.IsZero() {
		// Open loop: a request that had to wait for a free slot was late
		// because the server was slow; that wait is part of its latency
		// (no coordinated omission). The lag is reported too: when it is
		// large while the server's answers are fast, the tool itself (or
		// the CPU it shares with the server) is the bottleneck.
		res.Lags = append(res.Lags, began.Sub(j.due))
		began = j.due
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			res.Sent-- // interrupted by the user, not a server failure
			return
		}
		res.Errors["transport"]++
		res.ErrorTexts["transport"] = err.Error()
		return
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	now := time.Now()
	lat := now.Sub(began)
	switch resp.StatusCode {
	case http.StatusAccepted:
		res.Accepted++
		res.Latencies = append(res.Latencies, lat)
		res.AckedAt = append(res.AckedAt, now.Sub(start))
	case http.StatusOK:
		res.Duplicates++
		res.Latencies = append(res.Latencies, lat)
		res.AckedAt = append(res.AckedAt, now.Sub(start))
	default:
		k := strconv.Itoa(resp.StatusCode)
		res.Errors[k]++
		if _, ok := res.ErrorTexts[k]; !ok {
			res.ErrorTexts[k] = strings.TrimSpace(string(msg))
		}
	}
}
