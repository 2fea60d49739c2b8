// Package fakegithub is an in-memory GitHub speaking the real REST shapes
// (modelled on GitHub's OpenAPI examples) over httptest, for the GitHub
// adapter's tests and the demo command. It verifies App JWTs (RS256 against
// the App's public key, iss/iat/exp), hands out installation tokens and then
// requires one on every other request, paginates with Link headers, answers
// conditional GETs with 304, can inject failures (5xx, rate limits) and logs
// every request so tests can count API cost.
//
// It deliberately does not import go-github: its JSON is written from
// GitHub's documented shapes, so the adapter's client is tested against the
// wire format rather than against its own types.
package fakegithub

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fake is a running fake GitHub. All methods are safe for concurrent use.
type Fake struct {
	mu     sync.Mutex
	srv    *httptest.Server
	mux    *http.ServeMux
	prefix string
	now    func() time.Time

	appID  int64
	apps   map[int64]*App
	keys   map[int64]*rsa.PublicKey
	tokens map[string]*token
	issued map[int64]int

	repos    map[string]*repo
	teams    map[string]map[string]string // "org/slug" -> login -> membership state
	requests []Request
	failures []*Failure
	usedCode map[string]bool
	// rateLimit is the requests per hour each token may make (GitHub's
	// default for an installation is 5,000); SetRateLimit lowers it.
	rateLimit int
	nextID    int64

	manifests []ManifestSubmission // posted to the web UI (web.go)
	oauthSt   *oauthState          // the OAuth web flow and user tokens (oauth.go)
}

type token struct {
	installation int64
	app          *App
	expires      time.Time
	used         int
}

type repo struct {
	id            int64
	fullName      string
	defaultBranch string
	created       time.Time                    // created_at/updated_at/pushed_at of the repository JSON
	files         map[string]map[string]string // ref -> path -> content
	prs           map[int]*pull
	// pullsByHead indexes open and closed pull requests by head SHA, for
	// the pull_requests of check runs: scanning every pull request made
	// the fake's CPU grow with the load tool's run, on the CPU the server
	// under test shares.
	pullsByHead map[string][]int
	perms       map[string]string // login -> role_name
	// Check runs by head SHA, in creation order, and by ID. Scanning all
	// of them for every lookup made the fake's CPU grow with a load run,
	// on the CPUs the server under test shares.
	checkRunsByHead map[string][]*CheckRun
	checkRunByID    map[int64]*CheckRun
	statuses        []*Status
	issues          []*Issue
	comments        []*Comment
	commitPulls     map[string][]int
	compares        map[string][]Commit // "base...head"
	tags            []tag               // in creation order
	histories       map[string][]Commit // sha -> commits reachable from it, newest first
	activities      []Activity          // oldest first
	branches        map[string]string   // branch -> tip SHA (SetBranch)
	installation    int64               // the App installation on it (0: not installed)
	// issuesDisabled: see SetIssuesDisabled.
	issuesDisabled bool
	// hidden: see HideFromInstallation.
	hidden bool
}

type tag struct{ name, sha string }

type pull struct {
	PR
	reviews []Review
}

// Option configures a Fake.
type Option func(*Fake)

// WithPrefix serves the API under a path prefix, as GitHub Enterprise
// Server does ("/api/v3").
func WithPrefix(prefix string) Option {
	return func(f *Fake) { f.prefix = "/" + strings.Trim(prefix, "/") }
}

// WithNow sets the clock used for token expiry, rate-limit resets and
// timestamps. JWTs are always checked against the real clock because the
// App client signs them with it.
func WithNow(now func() time.Time) Option { return func(f *Fake) { f.now = now } }

// WithAppSlug names the App (default "foureyes").
func WithAppSlug(slug string) Option {
	return func(f *Fake) { f.apps[f.appID].Slug, f.apps[f.appID].Name = slug, slug }
}

// New starts a fake GitHub for the App appID whose JWTs must verify with
// pub. Close it when done.
func New(appID int64, pub *rsa.PublicKey, opts ...Option) *Fake {
	f := &Fake{
		now:      time.Now,
		appID:    appID,
		apps:     map[int64]*App{appID: {ID: appID, Slug: "foureyes", Name: "foureyes"}},
		keys:     map[int64]*rsa.PublicKey{appID: pub},
		tokens:   map[string]*token{},
		issued:   map[int64]int{},
		repos:    map[string]*repo{},
		teams:    map[string]map[string]string{},
		usedCode: map[string]bool{},
		nextID:   1000,
	}
	for _, o := range opts {
		o(f)
	}
	f.mux = http.NewServeMux()
	f.routes()
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// URL is the REST base URL to configure a client with, ending in "/"
// (e.g. http://127.0.0.1:PORT/api/v3/ with WithPrefix("/api/v3")).
func (f *Fake) URL() string { return f.srv.URL + f.prefix + "/" }

// Close shuts the server down.
func (f *Fake) Close() { f.srv.Close() }

// Client returns an *http.Client that talks to the fake (plain HTTP).
func (f *Fake) Client() *http.Client { return f.srv.Client() }

// Requests returns the requests answered so far, oldest first.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// SetRateLimit sets the hourly request budget the rate-limit headers
// report for every token (default 5,000, GitHub's for an App installation:
// https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#primary-rate-limit-for-github-app-installations).
// The fake reports the budget; it does not refuse requests beyond it (use
// Fail with RateLimited for that).
func (f *Fake) SetRateLimit(limit int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rateLimit = limit
}

// Used returns how many requests count against the rate limit so far,
// summed over the tokens of installation.
func (f *Fake) Used(installation int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, t := range f.tokens {
		if t.installation == installation {
			n += t.used
		}
	}
	return n
}

// TakeRequests returns the requests answered so far and forgets them, in
// one step (a long-running caller counting every request loses none).
func (f *Fake) TakeRequests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.requests
	f.requests = nil
	return out
}

// ResetRequests forgets the request log.
func (f *Fake) ResetRequests() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = nil
}

// Fail injects a failure for the next matching requests.
func (f *Fake) Fail(fl Failure) {
	if fl.Times <= 0 {
		fl.Times = 1
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, &fl)
}

// TokensIssued reports how many installation tokens were created for
// installation.
func (f *Fake) TokensIssued(installation int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issued[installation]
}

// ExpireTokens makes every issued token invalid (the next request with one
// gets 401), as if it had expired early or been revoked.
func (f *Fake) ExpireTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tokens {
		t.expires = time.Time{}
	}
}

// App returns an App known to the fake (nil if unknown).
func (f *Fake) App(id int64) *App {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.apps[id]; a != nil {
		c := *a
		return &c
	}
	return nil
}

func (f *Fake) id() int64 {
	f.nextID++
	return f.nextID
}

// recorder buffers a handler's answer so the middleware can add ETags and
// turn matching conditional requests into 304.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

type ctxKey int

const (
	tokenKey ctxKey = iota
	appKey
)

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	if f.serveWeb(w, r) {
		return
	}
	path := r.URL.Path
	if f.prefix != "" {
		if !strings.HasPrefix(path, f.prefix+"/") {
			writeError(w, http.StatusNotFound, "Not Found")
			f.log(r.Method, path, r.URL.RawQuery, http.StatusNotFound, 0)
			return
		}
		path = strings.TrimPrefix(path, f.prefix)
	}
	if f.serveUserAPI(w, r, path) {
		return
	}
	rec := &recorder{header: http.Header{}}
	inst := f.handle(rec, r, path)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	if r.Method == http.MethodGet && rec.status == http.StatusOK {
		sum := sha256.Sum256(rec.body.Bytes())
		etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
		w.Header().Set("ETag", etag)
		if inm := r.Header.Get("If-None-Match"); inm != "" && inm == etag {
			rec.status = http.StatusNotModified
			rec.body.Reset()
		}
	}
	f.spend(r, rec.status)
	f.rateHeaders(w.Header(), r)
	// Logged before answering: once a client has its response, the request
	// is in the log (tests count requests right after a call returns).
	f.log(r.Method, path, r.URL.RawQuery, rec.status, inst)
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes())
}

func (f *Fake) log(method, path, query string, status int, inst int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, Request{Method: method, Path: path, Query: query, Status: status, Installation: inst})
}

// handle authenticates, applies injected failures and dispatches; it
// returns the installation of the token used (0 if none).
func (f *Fake) handle(w *recorder, r *http.Request, path string) int64 {
	r2 := r.Clone(r.Context())
	r2.URL.Path = path
	r2.URL.RawPath = ""
	var inst int64
	switch {
	case strings.HasPrefix(path, "/app-manifests/"):
		// The manifest conversion is authenticated by the one-time code.
	case strings.HasPrefix(path, "/app/") || path == "/app" || isInstallationLookup(path):
		scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			writeError(w, http.StatusUnauthorized, "A JSON web token could not be decoded")
			return 0
		}
		app, err := f.verifyAppJWT(cred, time.Now())
		if err != nil {
			writeError(w, http.StatusUnauthorized, err.Error())
			return 0
		}
		r2 = r2.WithContext(context.WithValue(r2.Context(), appKey, app))
	default:
		_, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		f.mu.Lock()
		t := f.tokens[cred]
		ok := t != nil && f.now().Before(t.expires)
		if ok {
			inst = t.installation
		}
		f.mu.Unlock()
		if !ok {
			writeError(w, http.StatusUnauthorized, "Bad credentials")
			return 0
		}
		r2 = r2.WithContext(context.WithValue(r2.Context(), tokenKey, t))
	}
	if fl := f.takeFailure(r.Method, path); fl != nil {
		if fl.AfterHandling {
			f.mux.ServeHTTP(&recorder{header: http.Header{}}, r2)
		}
		f.writeFailure(w, fl)
		return inst
	}
	f.mux.ServeHTTP(w, r2)
	return inst
}

// takeFailure consumes one use of the first injected failure matching the
// request.
func (f *Fake) takeFailure(method, path string) *Failure {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.failures {
		if (c.Method == "" || strings.EqualFold(c.Method, method)) && strings.Contains(path, c.Path) {
			c.Times--
			if c.Times <= 0 {
				f.failures = append(f.failures[:i], f.failures[i+1:]...)
			}
			fl := *c
			return &fl
		}
	}
	return nil
}

func (f *Fake) writeFailure(w *recorder, fl *Failure) {
	f.mu.Lock()
	now := f.now()
	f.mu.Unlock()
	status := fl.Status
	msg := "Server Error"
	switch {
	case fl.RateLimited:
		if status == 0 {
			status = http.StatusForbidden
		}
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(now.Add(fl.ResetAfter).Unix(), 10))
		msg = "API rate limit exceeded for installation."
	case fl.Secondary:
		if status == 0 {
			status = http.StatusForbidden
		}
		msg = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
	case status == 0:
		status = http.StatusBadGateway
	}
	if fl.RetryAfter != "" {
		w.Header().Set("Retry-After", fl.RetryAfter)
	}
	writeError(w, status, msg)
}

// spend charges a request to its token's rate limit; a 304 is free, as on
// GitHub.
func (f *Fake) spend(r *http.Request, status int) {
	if status == http.StatusNotModified || status == http.StatusUnauthorized {
		return
	}
	_, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tokens[cred]; t != nil {
		t.used++
	}
}

// rateHeaders adds GitHub's rate-limit headers.
func (f *Fake) rateHeaders(h http.Header, r *http.Request) {
	if h.Get("X-RateLimit-Remaining") != "" {
		return
	}
	_, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	f.mu.Lock()
	used := 0
	if t := f.tokens[cred]; t != nil {
		used = t.used
	}
	reset := f.now().Add(time.Hour).Unix()
	limit := 5000
	if f.rateLimit > 0 {
		limit = f.rateLimit
	}
	f.mu.Unlock()
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(0, limit-used)))
	h.Set("X-RateLimit-Used", strconv.Itoa(used))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
	h.Set("X-RateLimit-Resource", "core")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{
		"message":           msg,
		"documentation_url": "https://docs.github.com/rest",
	})
}

func (f *Fake) repoOf(full string) *repo {
	r := f.repos[strings.ToLower(full)]
	if r == nil {
		r = &repo{
			id:              f.id(),
			fullName:        full,
			defaultBranch:   "main",
			created:         f.now().UTC().Truncate(time.Second),
			files:           map[string]map[string]string{},
			prs:             map[int]*pull{},
			pullsByHead:     map[string][]int{},
			checkRunsByHead: map[string][]*CheckRun{},
			checkRunByID:    map[int64]*CheckRun{},
			perms:           map[string]string{},
			commitPulls:     map[string][]int{},
			compares:        map[string][]Commit{},
			histories:       map[string][]Commit{},
		}
		f.repos[strings.ToLower(full)] = r
	}
	return r
}

// lookup returns a registered repository or nil (HTTP handlers must not
// create repositories).
func (f *Fake) lookup(owner, name string) *repo {
	return f.repos[strings.ToLower(owner+"/"+name)]
}

func userID(u User) int64 {
	if u.ID != 0 {
		return u.ID
	}
	var n int64
	for _, c := range strings.ToLower(u.Login) {
		n = n*31 + int64(c)
	}
	if n < 0 {
		n = -n
	}
	return n%1_000_000_000 + 1
}

func fmtTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func (r *repo) addCheckRun(c *CheckRun) {
	r.checkRunsByHead[c.HeadSHA] = append(r.checkRunsByHead[c.HeadSHA], c)
	r.checkRunByID[c.ID] = c
}
