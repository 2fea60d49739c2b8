package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/bot"
	ghforge "github.com/foureyes-dev/foureyes/forge/github"
	glforge "github.com/foureyes-dev/foureyes/forge/gitlab"
	"github.com/foureyes-dev/foureyes/handlers"
	"github.com/foureyes-dev/foureyes/metrics"
	"github.com/foureyes-dev/foureyes/policies"
	"github.com/foureyes-dev/foureyes/queue"
	"github.com/foureyes-dev/foureyes/reconcile"
	"github.com/foureyes-dev/foureyes/release"
	"github.com/foureyes-dev/foureyes/store"
)

// shutdownGrace bounds a graceful stop: SIGTERM must exit within 15 s.
const shutdownGrace = 12 * time.Second

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("serve")
	configFile := fs.String("config", "", "YAML file with the same keys as the environment (the environment wins)")
	if err := fs.Parse(args); err != nil {
		return flagErr(fs, err)
	}
	cfg, err := LoadConfig(*configFile, os.Getenv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, os.Stderr)
	srv, err := newServer(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer srv.close()
	return srv.run(ctx)
}

// server is the wired application: store, forges, service, queue, HTTP.
type server struct {
	cfg     *Config
	logger  *slog.Logger
	db      *store.DB
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	service *bot.Service
	pool    *queue.Pool
	intake  *intake
	http    *http.Server
	forges  map[bot.ForgeName]bot.Forge
	keyOnce sync.Once
	key     []byte

	// checkpoints signs the audit trail's head at start and hourly.
	checkpoints *checkpointer
	// reconciler finds the pushes the forges never delivered (reconcile.go).
	reconciler *reconcile.Reconciler
}

func newServer(ctx context.Context, cfg *Config, logger *slog.Logger) (*server, error) {
	chain, err := auditChain(cfg, true, logger)
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, cfg.Database, logger, store.WithAuditChain(chain))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := keyAuditTrail(ctx, db, chain, logger); err != nil {
		db.Close()
		return nil, err
	}
	s := &server{cfg: cfg, logger: logger, db: db, reg: prometheus.NewRegistry(), forges: map[bot.ForgeName]bot.Forge{}}
	s.intake = &intake{db: db, notify: func() { s.pool.Notify() }}
	s.checkpoints = newCheckpointer(db, chain, cfg.AuditCheckpointDir, logger)
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = metrics.New(s.reg)
	s.metrics.SetBuildInfo(version, buildCommit())

	hcfg := handlers.Config{
		Intake:   s.intake,
		Ready:    s.ready,
		Metrics:  s.metrics,
		Gatherer: s.reg,
		Logger:   logger,
		// Bodies are held until they are stored; the budget bounds them
		// all together, whoever sends them.
		BodyBudget: cfg.WebhookMemory,
	}
	// One transport for both forges' clients: they reach different hosts.
	forgeHTTP := forgeTransport(forgeBusy(cfg.Workers))
	if cfg.GitHubOn() {
		gh, err := ghforge.New(ghforge.Config{
			AppID:      cfg.GitHubAppID,
			PrivateKey: cfg.GitHubPrivateKey,
			APIURL:     cfg.GitHubAPIURL,
			Transport:  s.metrics.Transport(string(bot.GitHub), forgeHTTP),
			Logger:     logger.With("forge", "github"),
			OnRateLimit: func(inst int64, b bot.RateBudget) {
				s.metrics.InstallationRateLimitRemaining.WithLabelValues(string(bot.GitHub), strconv.FormatInt(inst, 10)).Set(float64(b.Remaining))
			},
		})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("github: %w", err)
		}
		s.forges[bot.GitHub] = gh
		hcfg.GitHub = &handlers.GitHubConfig{Secret: cfg.GitHubSecret, Decoder: gh}
	}
	if cfg.GitLabOn() {
		gl, err := glforge.New(glforge.Config{
			BaseURL:   cfg.GitLabURL,
			Token:     cfg.GitLabToken,
			Transport: s.metrics.Transport(string(bot.GitLab), forgeHTTP),
			Logger:    logger.With("forge", "gitlab"),
			Memory:    db,
		})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("gitlab: %w", err)
		}
		s.forges[bot.GitLab] = gl
		hcfg.GitLab = &handlers.GitLabConfig{Secret: cfg.GitLabSecret, Decoder: gl}
	}
	var defPolicy *bot.PolicyFile
	if cfg.DefaultPolicyFile != "" {
		data, err := os.ReadFile(cfg.DefaultPolicyFile)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("FOUREYES_DEFAULT_POLICY_FILE: %w", err)
		}
		// An invalid server default would fail every check of every
		// repository without a file: refuse to start instead.
		if _, err := policies.Parse(cfg.DefaultPolicyFile, data); err != nil {
			db.Close()
			return nil, fmt.Errorf("FOUREYES_DEFAULT_POLICY_FILE is invalid:\n%w", err)
		}
		defPolicy = &bot.PolicyFile{Source: cfg.DefaultPolicyFile, Data: data, Found: true}
	}
	s.service = &bot.Service{
		Forges:        s.forges,
		Store:         db,
		DefaultPolicy: defPolicy,
		DetailsURL:    s.detailsURL,
		Observer:      observer{m: s.metrics},
		Logger:        logger,
	}
	guard := &release.Guard{
		Forges:        map[bot.ForgeName]release.Forge{},
		Store:         db,
		DefaultPolicy: defPolicy,
		Logger:        logger,
		Observer:      func(forge, reason string) { s.metrics.UnreviewedCommits.WithLabelValues(forge, reason).Inc() },
		PolicyError:   func(forge string) { s.metrics.PolicyErrors.WithLabelValues(forge).Inc() },
	}
	for name, f := range s.forges {
		rf, ok := f.(release.Forge)
		if !ok {
			db.Close()
			return nil, fmt.Errorf("forge %s cannot guard release branches", name)
		}
		guard.Forges[name] = rf
	}
	s.service.Release = reconcile.Tracker{Next: guard, Store: db}
	if err := s.wireReconcile(hcfg.Intake, defPolicy); err != nil {
		db.Close()
		return nil, err
	}
	s.pool = &queue.Pool{
		Store:   db,
		Handler: s.handleDelivery,
		Workers: cfg.Workers,
		// A short lease (renewed while a handler runs) bounds how long the
		// work of a killed process waits before another worker takes it.
		LeaseTTL: 15 * time.Second,
		Logger:   logger,
		OnOutcome: func(_ queue.Delivery, o queue.Outcome, _ time.Duration) {
			s.metrics.DeliveriesProcessed.WithLabelValues(outcomeLabel(o)).Inc()
		},
		OnDeadLetter: s.deadLettered,
		// Change events of one change waiting behind each other are judged
		// once, at the newest head (bot.Service.HandleFolded); pushes to
		// release branches have keys of their own and are never folded.
		FoldKinds: []string{string(bot.EventChange)},
		Busy:      s.intake.busy,
	}
	var pagesErr error
	hcfg.Extra = func(r *mux.Router) { pagesErr = s.mountPages(r) }
	s.http = &http.Server{
		Addr:    cfg.Listen,
		Handler: handlers.New(hcfg),
		// Slow senders are cut off: headers within 5 s and at most 64 KiB
		// of them; webhook bodies at a minimum rate after a grace period
		// (handlers.readBody moves the read deadline per chunk); any
		// request read within 60 s. See docs/operations.md.
		ReadHeaderTimeout: 5 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	if pagesErr != nil {
		db.Close()
		return nil, pagesErr
	}
	return s, nil
}

func (s *server) close() { s.db.Close() }

// run serves until ctx is cancelled (SIGTERM/SIGINT), then stops taking
// deliveries, lets the workers finish or release their leases, and returns.
func (s *server) run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	forges := make([]string, 0, len(s.forges))
	for f := range s.forges {
		forges = append(forges, string(f))
	}
	s.logger.Info("foureyes serving", "addr", ln.Addr().String(), "public_url", s.cfg.PublicURL, "forges", forges, "version", version)
	if len(s.forges) == 0 {
		s.logger.Warn("no forge is configured: open the home page to register the GitHub App", "url", s.cfg.PublicURL+"/")
	}

	// One process owns a SQLite file: leases left in it are a dead
	// process's, taken back now rather than after the lease TTL.
	if n, err := s.db.ReclaimLeases(ctx, time.Now()); err != nil {
		return err
	} else if n > 0 {
		s.logger.Info("took back deliveries leased by a process that died", "count", n)
	}
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	poolDone := make(chan error, 1)
	go func() { poolDone <- s.pool.Run(workCtx) }()
	go s.watchQueue(workCtx)
	go s.checkpoints.run(workCtx)
	go s.reconciler.Loop(workCtx, s.cfg.ReconcileInterval)

	httpDone := make(chan error, 1)
	go func() { httpDone <- s.http.Serve(ln) }()

	select {
	case err := <-httpDone:
		stopWork()
		<-poolDone
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	s.logger.Info("stopping: no new deliveries; finishing in-flight work")
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	herr := s.http.Shutdown(shutCtx)
	stopWork()
	select {
	case <-poolDone:
	case <-shutCtx.Done():
		s.logger.Warn("workers did not stop in time; their leases expire and another worker takes the work")
	}
	if herr != nil && !errors.Is(herr, http.ErrServerClosed) {
		return fmt.Errorf("http shutdown: %w", herr)
	}
	s.logger.Info("stopped")
	return nil
}

// keepDone is how long processed deliveries are kept: a redelivery within
// this window is recognised as a duplicate. GitHub and GitLab redeliver
// within hours or days, not months.
const keepDone = 30 * 24 * time.Hour

// watchQueue publishes the queue gauges (readiness reads the same numbers)
// and trims processed deliveries older than keepDone.
func (s *server) watchQueue(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	lastPurge := time.Time{}
	for {
		if time.Since(lastPurge) > time.Hour {
			lastPurge = time.Now()
			if n, err := s.db.PurgeDone(ctx, time.Now().Add(-keepDone)); err != nil {
				s.logger.Warn("purge processed deliveries", "error", err)
			} else if n > 0 {
				s.logger.Info("purged processed deliveries", "count", n, "older_than", keepDone.String())
			}
		}
		if st, err := s.db.QueueStats(ctx, time.Now()); err == nil {
			s.metrics.QueueDepth.Set(float64(st.Pending + st.Leased))
			s.metrics.QueueOldestAge.Set(st.OldestPendingAge.Seconds())
			s.metrics.QueueDeadLetters.Set(float64(st.Dead))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// queueStuckAfter is how old the oldest pending delivery may get before the
// instance reports itself not ready.
const queueStuckAfter = 10 * time.Minute

func (s *server) ready(ctx context.Context) error {
	if err := s.db.Ping(ctx); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	st, err := s.db.QueueStats(ctx, time.Now())
	if err != nil {
		return fmt.Errorf("queue stats: %w", err)
	}
	if st.OldestPendingAge > queueStuckAfter {
		return fmt.Errorf("queue stuck: oldest pending delivery is %s old", st.OldestPendingAge.Round(time.Second))
	}
	return nil
}

func (s *server) handleDelivery(ctx context.Context, d queue.Delivery) error {
	evs := make([]bot.Event, 0, len(d.Folded)+1)
	for _, x := range append(d.Folded, d) {
		var ev bot.Event
		if err := json.Unmarshal(x.Payload, &ev); err != nil {
			return queue.Permanent(fmt.Errorf("decode stored event %s: %w", x.ID, err))
		}
		evs = append(evs, ev)
	}
	err := s.service.HandleFolded(ctx, evs)
	var deferred *bot.DeferredError
	if errors.As(err, &deferred) {
		return queue.Defer(err, deferred.Until)
	}
	return err
}

// detailsKey signs details-page tokens (and the setup flow's state).
// Without an explicit key it is derived from the webhook secrets, which
// are secret and stable, so links survive restarts; with no secret at all
// it is random for this process rather than a constant anyone could know.
func (s *server) detailsKey() []byte {
	s.keyOnce.Do(func() {
		switch {
		case len(s.cfg.DetailsKey) > 0:
			s.key = s.cfg.DetailsKey
		case len(s.cfg.GitHubSecret) > 0 || len(s.cfg.GitLabSecret) > 0:
			h := sha256.New()
			h.Write([]byte("foureyes details v1\x00"))
			h.Write(s.cfg.GitHubSecret)
			h.Write([]byte{0})
			h.Write(s.cfg.GitLabSecret)
			s.key = h.Sum(nil)
		default:
			s.key = make([]byte, 32)
			if _, err := rand.Read(s.key); err != nil {
				panic(fmt.Sprintf("no randomness for the signing key: %v", err))
			}
		}
	})
	return s.key
}

func (s *server) detailsURL(ref bot.ChangeRef) string {
	return s.cfg.PublicURL + "/details/" + handlers.SignDetails(s.detailsKey(), ref, time.Now().Add(s.cfg.DetailsTTL))
}

// intake stores accepted events durably, then wakes a worker.
type intake struct {
	db     *store.DB
	notify func()
	// arrivals tells the queue's workers when to yield (intakegate.go).
	arrivals arrivals
	now      func() time.Time // time.Now if nil
}

// busy reports that deliveries arrive fast enough that the queue's
// workers, all but one, yield to intake (queue.Pool.Busy).
func (in *intake) busy() bool { return in.arrivals.busy(in.clock()) }

func (in *intake) clock() time.Time {
	if in.now != nil {
		return in.now()
	}
	return time.Now()
}

func (in *intake) Accept(ctx context.Context, ev bot.Event) (bool, error) {
	in.arrivals.arrive(in.clock())
	if ev.Push != nil {
		// A branch's stored policy read stops being reused the moment its
		// push is accepted, not when a worker reaches it: pushes queue
		// under their branch's key, and evaluations under other keys may
		// run first (bot/policycache.go).
		if err := bot.RecordBranchPush(ctx, in.db, ev); err != nil {
			return false, err
		}
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return false, fmt.Errorf("encode event: %w", err)
	}
	rec := audit.Record{Kind: audit.KindDelivery, Forge: string(ev.Forge), Repo: ev.Repo.FullName, DeliveryID: ev.DeliveryID}
	if ev.Change != nil {
		rec.Change, rec.HeadSHA = ev.Change.Number, ev.Change.HeadSHA
	}
	rec.Data, _ = json.Marshal(deliveryData{Action: ev.Action, Event: ev.Name, Kind: string(ev.Kind), Sender: ev.Sender.Display()})
	inserted, err := in.db.EnqueueAudited(ctx, store.Delivery{
		ID: ev.DeliveryID, Forge: string(ev.Forge), Key: eventKey(ev), Kind: string(ev.Kind),
		Payload: payload, ReceivedAt: ev.Received,
	}, &rec)
	if err != nil {
		return false, err
	}
	if inserted {
		in.notify()
	}
	return !inserted, nil
}

// deliveryData is a delivery's audit data. A struct rather than a map,
// which encoding/json marshals through reflection with an allocation per
// key and value, on every accepted delivery; the fields are in key order,
// so the bytes are the ones the map gave.
type deliveryData struct {
	Action string `json:"action"`
	Event  string `json:"event"`
	Kind   string `json:"kind"`
	Sender string `json:"sender"`
}

// eventKey orders the work: events of one change, or pushes to one ref,
// never run concurrently or out of order.
func eventKey(ev bot.Event) string {
	base := string(ev.Forge) + "/" + ev.Repo.FullName
	switch {
	case ev.Change != nil:
		return fmt.Sprintf("%s#%d", base, ev.Change.Number)
	case ev.Push != nil:
		return base + "@" + ev.Push.Ref
	case ev.MergeGroup != nil:
		return base + "@" + ev.MergeGroup.HeadRef
	}
	return base
}

// observer adapts bot.Observer to the Prometheus metrics.
type observer struct{ m *metrics.Metrics }

func (o observer) StartEvaluation(ctx context.Context, forge bot.ForgeName) (context.Context, func(bot.State)) {
	ctx, counter := metrics.WithRequestCounter(ctx)
	start := time.Now()
	return ctx, func(state bot.State) {
		o.m.Evaluations.WithLabelValues(string(forge), string(state)).Inc()
		o.m.EvaluationDuration.WithLabelValues(string(forge)).Observe(time.Since(start).Seconds())
		o.m.ForgeAPIRequestsPerEvaluation.WithLabelValues(string(forge)).Observe(float64(counter.Count()))
	}
}

func (o observer) PolicyError(forge bot.ForgeName) {
	o.m.PolicyErrors.WithLabelValues(string(forge)).Inc()
}

func (o observer) Tampered(forge bot.ForgeName) {
	o.m.TamperedChecks.WithLabelValues(string(forge)).Inc()
}

func outcomeLabel(o queue.Outcome) string {
	switch o {
	case queue.OutcomeDone:
		return metrics.ProcessedOK
	case queue.OutcomeDead:
		return metrics.ProcessedDeadLetter
	}
	return metrics.ProcessedRetry
}

// deadLettered makes a parked delivery visible: a loud log line and an
// audit record (the gauge follows from the queue stats).
func (s *server) deadLettered(d queue.Delivery, cause error) {
	s.logger.Error("delivery dead-lettered; retry it with `foureyes audit retry`",
		"delivery", d.ID, "seq", d.Seq, "forge", d.Forge, "key", d.Key, "attempts", d.Attempt, "error", cause)
	data, _ := json.Marshal(map[string]any{"seq": d.Seq, "key": d.Key, "attempts": d.Attempt, "error": cause.Error()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.db.AppendAudit(ctx, audit.Record{Kind: audit.KindDeadLetter, Forge: d.Forge, DeliveryID: d.ID, Data: data}); err != nil {
		s.logger.Error("audit dead letter", "delivery", d.ID, "error", err)
	}
}
