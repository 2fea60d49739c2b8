// Package github is foureyes' GitHub adapter: it implements bot.Forge with
// go-github over REST (no GraphQL), authenticates as a GitHub App through
// ghinstallation, and decodes webhook deliveries into bot.Events. It is the
// only package of foureyes that imports a GitHub SDK.
//
// API cost is a design goal (issue 3): what a head SHA fixes (files,
// commits) and what a base SHA fixes (the policy file) is cached by SHA and
// never fetched twice; reviewer permissions and team memberships are cached
// per installation for Config.PermissionTTL; the pull request's own facts
// (author, base, title) are taken from the webhook payloads Decode has seen
// when they name the same head; and everything else is fetched with
// conditional requests (a 304 is free against GitHub's rate limit).
package github

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v60/github"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/policies"
)

// DefaultAPIURL is github.com's REST root.
const DefaultAPIURL = "https://api.github.com/"

// Config configures the adapter.
type Config struct {
	AppID      int64
	PrivateKey []byte // the App's PEM private key (PKCS#1 or PKCS#8)
	// APIURL is the REST root: https://api.github.com/ (default) or, for
	// GitHub Enterprise Server, https://HOST/api/v3/. Installation tokens
	// are requested from the same root.
	APIURL string
	// Transport is the base RoundTripper (nil: http.DefaultTransport). The
	// server wraps it to count requests by status; every attempt of every
	// request, token requests included, goes through it.
	Transport http.RoundTripper
	Logger    *slog.Logger
	Now       func() time.Time
	// PermissionTTL is how long reviewer permissions, team memberships and
	// the org-level policy file are cached per installation (default 60s).
	PermissionTTL time.Duration
	// MaxAttempts bounds the attempts of one request on 5xx and rate
	// limits (default 4).
	MaxAttempts int
	// MaxRetryWait bounds the total time one request waits between attempts
	// (default 2m). A Retry-After or rate-limit reset further away fails
	// the request at once: the service's queue retries later.
	MaxRetryWait time.Duration
	// Sleep waits between attempts (default: a timer that honours ctx);
	// tests inject one that records the waits.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnRateLimit, when set, is called with an installation's request
	// budget each time an answer reports it (for a per-installation gauge).
	OnRateLimit func(installation int64, b bot.RateBudget)
}

// Forge is the GitHub adapter. It is safe for concurrent use.
type Forge struct {
	appID     int64
	key       *rsa.PrivateKey
	apiURL    *url.URL
	tokenBase string
	log       *slog.Logger
	now       func() time.Time
	ttl       time.Duration
	api       http.RoundTripper // retry -> count -> Config.Transport, shared by all installations
	sleep     func(context.Context, time.Duration) error

	mu      sync.Mutex
	clients map[int64]*gh.Client

	etags       *etagCache
	heads       *lru[headKey, *headFacts]
	policies    *lru[policyKey, policyEntry]
	orgPolicies *lru[string, expiring[policyEntry]]
	perms       *lru[permKey, expiring[policies.Permission]]
	teams       *lru[permKey, expiring[bool]]
	hints       *lru[prKey, prMeta]
	budgets     *budgets

	// branchPolicies marks the branches whose first policy location is
	// missing: their lookup runs at the resolved tip SHA (policy.go).
	branchPolicies *lru[string, bool]
}

// Cache sizes: bounded so a busy installation cannot grow memory without
// limit; an evicted entry only costs a request.
const (
	maxHeads    = 512
	maxPolicies = 2048
	maxPerms    = 8192
	maxHints    = 4096
	maxETags    = 4096
)

// New builds the adapter. It parses the key and the URL but makes no
// request: tokens are fetched on first use per installation.
func New(cfg Config) (*Forge, error) {
	if cfg.AppID <= 0 {
		return nil, errors.New("github: AppID is required")
	}
	key, err := parseKey(cfg.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("github: App private key: %w", err)
	}
	raw := cfg.APIURL
	if raw == "" {
		raw = DefaultAPIURL
	}
	if !strings.HasSuffix(raw, "/") {
		raw += "/"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("github: API URL %q is not an absolute URL", cfg.APIURL)
	}
	f := &Forge{
		appID:       cfg.AppID,
		key:         key,
		apiURL:      u,
		tokenBase:   strings.TrimSuffix(u.String(), "/"),
		log:         cfg.Logger,
		now:         cfg.Now,
		ttl:         cfg.PermissionTTL,
		clients:     map[int64]*gh.Client{},
		etags:       newETagCache(maxETags),
		heads:       newLRU[headKey, *headFacts](maxHeads),
		policies:    newLRU[policyKey, policyEntry](maxPolicies),
		orgPolicies: newLRU[string, expiring[policyEntry]](maxPolicies),
		perms:       newLRU[permKey, expiring[policies.Permission]](maxPerms),
		teams:       newLRU[permKey, expiring[bool]](maxPerms),
		hints:       newLRU[prKey, prMeta](maxHints),
		budgets:     &budgets{report: cfg.OnRateLimit},

		branchPolicies: newLRU[string, bool](maxPolicies),
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.ttl <= 0 {
		f.ttl = 60 * time.Second
	}
	base := cfg.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	rt := &retryTransport{
		next:        &countTransport{next: base},
		maxAttempts: cfg.MaxAttempts,
		maxWait:     cfg.MaxRetryWait,
		sleep:       cfg.Sleep,
		now:         f.now,
		log:         f.log,
	}
	if rt.maxAttempts <= 0 {
		rt.maxAttempts = 4
	}
	if rt.maxWait <= 0 {
		rt.maxWait = 2 * time.Minute
	}
	if rt.sleep == nil {
		rt.sleep = sleepCtx
	}
	f.api = rt
	f.sleep = rt.sleep
	return f, nil
}

// AppID returns the App's ID.
func (f *Forge) AppID() int64 { return f.appID }

func parseKey(p []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(p)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("neither PKCS#1 nor PKCS#8: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, GitHub Apps use RSA", k)
	}
	return rk, nil
}

// client returns the go-github client of an installation, creating it on
// first use. Each installation gets its own ghinstallation AppsTransport:
// ghinstallation (v2.19) writes BaseURL and Client into the AppsTransport
// on every token refresh, so one shared by several installations would be
// a data race when two refresh at once. They share the parsed key and the
// base transport, which is what sharing was for.
func (f *Forge) client(inst int64) (*gh.Client, error) {
	if inst <= 0 {
		return nil, errors.New("github: the repository has no App installation (the delivery carried none)")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.clients[inst]; c != nil {
		return c, nil
	}
	atr := ghinstallation.NewAppsTransportFromPrivateKey(f.api, f.appID, f.key)
	atr.BaseURL = f.tokenBase
	itr := ghinstallation.NewFromAppsTransport(atr, inst)
	hc := &http.Client{Transport: &etagTransport{next: &budgetTransport{next: itr, inst: inst, budgets: f.budgets}, cache: f.etags, inst: inst}}
	c := gh.NewClient(hc)
	c.BaseURL = f.apiURL
	upload := *f.apiURL
	if upload.Host == "api.github.com" {
		upload.Host = "uploads.github.com"
	} else {
		upload.Path = strings.TrimSuffix(upload.Path, "api/v3/") + "api/uploads/"
	}
	c.UploadURL = &upload
	c.UserAgent = "foureyes"
	f.clients[inst] = c
	return c, nil
}

// statusOf returns the HTTP status of a go-github error (0 if none).
func statusOf(err error) int {
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	var rl *gh.RateLimitError
	if errors.As(err, &rl) && rl.Response != nil {
		return rl.Response.StatusCode
	}
	var ab *gh.AbuseRateLimitError
	if errors.As(err, &ab) && ab.Response != nil {
		return ab.Response.StatusCode
	}
	return 0
}

func isNotFound(err error) bool { return statusOf(err) == http.StatusNotFound }

// Interface check.
var _ bot.Forge = (*Forge)(nil)
