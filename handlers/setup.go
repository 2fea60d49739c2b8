package handlers

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"gopkg.in/yaml.v3"
)

// AppCredentials is what GitHub hands back for a converted App manifest.
// Its fields match forge/github.AppCredentials one for one and in order, so
// the server adapts the GitHub converter with a type conversion.
type AppCredentials struct {
	AppID         int64
	Slug          string
	HTMLURL       string
	PEM           string
	WebhookSecret string
	ClientID      string
	ClientSecret  string
}

// ManifestConverter exchanges the one-time code of GitHub's App manifest
// flow for the new App's credentials (POST {apiURL}app-manifests/{code}/
// conversions). forge/github implements it.
type ManifestConverter interface {
	Convert(ctx context.Context, apiURL, code string) (AppCredentials, error)
}

// SetupConfig configures the home page and the GitHub App manifest flow.
type SetupConfig struct {
	// PublicURL is the server's external base URL (FOUREYES_PUBLIC_URL):
	// the App's webhook and the flow's callback are registered under it.
	PublicURL string
	// Manifest is the content of app.yml.
	Manifest []byte
	// GitHubWebURL is GitHub's web root (default https://github.com); the
	// form on the home page can name a GitHub Enterprise Server host instead.
	GitHubWebURL string
	// GitHubAPIURL is the REST root that goes with GitHubWebURL (default
	// https://api.github.com/ for github.com, else GitHubWebURL/api/v3/).
	GitHubAPIURL string
	Converter    ManifestConverter
	// CredentialsFile is where the App's settings are written (default
	// "foureyes.env" in the working directory; the server passes
	// FOUREYES_STATE_DIR/foureyes.env, which it reads at start). The private
	// key goes beside it. An existing file is never overwritten: the next
	// free of FILE.1, FILE.2, ... is used instead.
	CredentialsFile string
	// SetupCode is the one-time code the form requires, so that only
	// someone who can read the server's log can register an App (as
	// Jenkins and Grafana guard their first admin). Empty: one is
	// generated. While setup is open, SetupHandler logs it at start.
	SetupCode string
	// InstallURL returns the page where the configured App is installed
	// (nil or "": the home page shows no such link).
	InstallURL func(ctx context.Context) string
	// ReadsCredentialsFile says the server reads CredentialsFile at start
	// (FOUREYES_STATE_DIR/foureyes.env): a restart is then all it takes.
	ReadsCredentialsFile bool
	// Configured reports which forges have credentials. The setup routes
	// answer 404 once GitHub is configured. nil means neither.
	Configured func() (github, gitlab bool)
	// StateKey signs the flow's state parameter (default: random per
	// process, which is fine for one replica: a flow takes minutes).
	StateKey []byte
	Logger   *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DocsURL is where the pages send people for more.
const DocsURL = "https://github.com/foureyes-dev/foureyes#readme"

// The manifest flow's code is valid for an hour on GitHub; the state lives
// as long so that a slow user does not trip over it first.
const stateTTL = time.Hour

// convertTimeout bounds the call to GitHub from the callback.
const convertTimeout = 30 * time.Second

// stateMACContext separates state MACs from anything else the key signs.
const stateMACContext = "foureyes setup state v1\x00"

const (
	githubWeb = "https://github.com"
	githubAPI = "https://api.github.com/"
)

var setupPages = parsePages("home", "create", "done", "error")

type setup struct {
	cfg      SetupConfig
	manifest map[string]any
	log      *slog.Logger
	now      func() time.Time
	key      []byte
	localURL bool // PublicURL is a loopback address GitHub cannot reach
	code     string

	// mu serializes callbacks: a flow ends at most once per process, and
	// two racing callbacks must not both write credentials.
	mu   sync.Mutex
	used map[string]time.Time // state nonces already spent -> expiry
	done *doneView            // set once an App was registered
}

// SetupHandler returns the function that mounts GET / and the /setup/github
// routes on the server's router (handlers.Config.Extra). GET / explains
// foureyes and, while GitHub is not configured, offers to register the App
// from the manifest; once it is, GET / is a status page and /setup/...
// answers 404. It fails on a PublicURL or manifest it cannot use.
func SetupHandler(cfg SetupConfig) (func(r *mux.Router), error) {
	s, err := newSetup(cfg)
	if err != nil {
		return nil, err
	}
	return func(r *mux.Router) {
		r.HandleFunc("/", s.home).Methods(http.MethodGet, http.MethodHead)
		r.HandleFunc("/setup/github", s.start).Methods(http.MethodPost)
		r.HandleFunc("/setup/github", s.startGet).Methods(http.MethodGet, http.MethodHead)
		r.HandleFunc("/setup/github/callback", s.callback).Methods(http.MethodGet)
	}, nil
}

func newSetup(cfg SetupConfig) (*setup, error) {
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil || (pub.Scheme != "http" && pub.Scheme != "https") || pub.Host == "" || pub.RawQuery != "" || pub.Fragment != "" {
		return nil, fmt.Errorf("setup: public URL %q is not an absolute http(s) URL", cfg.PublicURL)
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	var m map[string]any
	if err := yaml.Unmarshal(cfg.Manifest, &m); err != nil {
		return nil, fmt.Errorf("setup: App manifest: %w", err)
	}
	if m == nil {
		return nil, errors.New("setup: the App manifest is empty")
	}
	if _, ok := m["default_permissions"].(map[string]any); !ok {
		return nil, errors.New("setup: the App manifest has no default_permissions")
	}
	if cfg.GitHubWebURL == "" {
		cfg.GitHubWebURL = githubWeb
	}
	cfg.GitHubWebURL = strings.TrimRight(cfg.GitHubWebURL, "/")
	if u, err := url.Parse(cfg.GitHubWebURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("setup: GitHub web URL %q is not an absolute http(s) URL", cfg.GitHubWebURL)
	}
	if cfg.GitHubAPIURL == "" {
		cfg.GitHubAPIURL = apiURLFor(cfg.GitHubWebURL)
	}
	if cfg.CredentialsFile == "" {
		cfg.CredentialsFile = "foureyes.env"
	}
	if cfg.Converter == nil {
		return nil, errors.New("setup: no ManifestConverter")
	}
	s := &setup{cfg: cfg, manifest: m, log: cfg.Logger, now: cfg.Now, key: bytes.Clone(cfg.StateKey), used: map[string]time.Time{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.code = strings.ToUpper(strings.TrimSpace(cfg.SetupCode))
	if s.code == "" {
		s.code = rand.Text()
	}
	if gh, _ := s.configured(); !gh {
		s.log.Warn("GitHub is not configured: to register the GitHub App, open the home page and enter this one-time setup code",
			"setup_code", s.code, "url", cfg.PublicURL+"/", "credentials_file", cfg.CredentialsFile)
	}
	if len(s.key) == 0 {
		s.key = make([]byte, 32)
		_, _ = rand.Read(s.key) // never fails (crypto/rand panics instead)
	}
	host := pub.Hostname()
	ip := net.ParseIP(host)
	s.localURL = host == "localhost" || strings.HasSuffix(host, ".localhost") || (ip != nil && ip.IsLoopback())
	return s, nil
}

func apiURLFor(web string) string {
	if web == githubWeb {
		return githubAPI
	}
	return web + "/api/v3/"
}

func (s *setup) configured() (github, gitlab bool) {
	if s.cfg.Configured == nil {
		return false, false
	}
	return s.cfg.Configured()
}

// setupOpen reports whether the manifest flow is offered; when it is not
// (GitHub is configured, or this process registered an App already), it
// answers 404 as if the routes did not exist.
func (s *setup) setupOpen(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	done := s.done != nil
	s.mu.Unlock()
	if gh, _ := s.configured(); gh || done {
		http.NotFound(w, r)
		return false
	}
	return true
}

// homeView is the data of the home page.
type homeView struct {
	GitHub, GitLab bool
	PublicURL      string
	LocalURL       bool
	DefaultHost    string
	CredentialsAt  string
	Done           *doneView
	Docs           string
	Error          string // a form error to show above the form
	Host, Org      string // form values to keep after an error
	InstallURL     string // the configured App's install page, or ""
}

func (s *setup) homeView() homeView {
	gh, gl := s.configured()
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	return homeView{
		GitHub: gh, GitLab: gl,
		PublicURL:     s.cfg.PublicURL,
		LocalURL:      s.localURL,
		DefaultHost:   hostOf(s.cfg.GitHubWebURL),
		CredentialsAt: s.cfg.CredentialsFile,
		Done:          done,
		Docs:          DocsURL,
	}
}

func (s *setup) home(w http.ResponseWriter, r *http.Request) {
	v := s.homeView()
	if v.GitHub && s.cfg.InstallURL != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		v.InstallURL = s.cfg.InstallURL(ctx)
		cancel()
	}
	title := "foureyes"
	if !v.GitHub && !v.GitLab {
		title = "foureyes: set up"
	}
	setupPages.render(w, s.log, http.StatusOK, "home", pageData{Title: title, Page: v})
}

// startGet answers a GET of the form's target (a bookmark, a reload):
// the form lives on the home page.
func (s *setup) startGet(w http.ResponseWriter, r *http.Request) {
	if !s.setupOpen(w, r) {
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// createView is the data of the page holding the manifest form.
type createView struct {
	Action      string // GitHub's "new App from manifest" URL with the state
	Manifest    string // the manifest as JSON
	Host        string
	Org         string
	WebhookURL  string
	Permissions []string
	Events      []string
	LocalURL    bool
	PublicURL   string
}

// orgName is GitHub's rule for account names.
var orgName = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)

// hostName accepts host or host:port (no scheme, path or credentials).
var hostName = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})(?::[0-9]{1,5})?$`)

// start answers POST /setup/github: it builds the manifest for this server
// and renders the form that posts it to GitHub. The form needs no
// JavaScript: the user presses the button.
func (s *setup) start(w http.ResponseWriter, r *http.Request) {
	if !s.setupOpen(w, r) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.formError(w, "The form could not be read.", "", "")
		return
	}
	host := strings.TrimSpace(r.PostForm.Get("host"))
	org := strings.TrimSpace(r.PostForm.Get("org"))
	code := strings.ToUpper(strings.TrimSpace(r.PostForm.Get("setup_code")))
	if subtle.ConstantTimeCompare([]byte(code), []byte(s.code)) != 1 {
		s.log.WarnContext(r.Context(), "setup: wrong setup code", "remote", r.RemoteAddr)
		w.Header().Set("X-Setup-Code", "required")
		s.formErrorStatus(w, http.StatusForbidden, "The setup code is missing or wrong. It is printed in foureyes' log at start (the line with setup_code).", host, org)
		return
	}
	web, api := s.cfg.GitHubWebURL, s.cfg.GitHubAPIURL
	if host != "" {
		h, err := parseGHESHost(host)
		if err != nil {
			s.formError(w, err.Error(), host, org)
			return
		}
		if h != hostOf(s.cfg.GitHubWebURL) {
			web = "https://" + h
			api = apiURLFor(web)
		}
	}
	if org != "" && !orgName.MatchString(org) {
		s.formError(w, "The organization must be a GitHub account name (letters, digits and hyphens, at most 39), as in github.com/ORG.", host, org)
		return
	}

	state, err := s.signState(web, api, org)
	if err != nil {
		s.log.ErrorContext(r.Context(), "setup: sign state", "error", err)
		s.errorPage(w, http.StatusInternalServerError, "Something went wrong", "foureyes could not start the registration. Try again.")
		return
	}
	manifest, err := s.manifestJSON()
	if err != nil {
		s.log.ErrorContext(r.Context(), "setup: manifest", "error", err)
		s.errorPage(w, http.StatusInternalServerError, "Something went wrong", "foureyes could not build the App manifest.")
		return
	}
	action := web + "/settings/apps/new"
	if org != "" {
		action = web + "/organizations/" + url.PathEscape(org) + "/settings/apps/new"
	}
	action += "?state=" + url.QueryEscape(state)

	v := createView{
		Action:     action,
		Manifest:   string(manifest),
		Host:       hostOf(web),
		Org:        org,
		WebhookURL: s.cfg.PublicURL + "/webhooks/github",
		LocalURL:   s.localURL,
		PublicURL:  s.cfg.PublicURL,
	}
	if perms, ok := s.manifest["default_permissions"].(map[string]any); ok {
		for k, val := range perms {
			v.Permissions = append(v.Permissions, k+": "+fmt.Sprint(val))
		}
		slices.Sort(v.Permissions)
	}
	if evs, ok := s.manifest["default_events"].([]any); ok {
		for _, e := range evs {
			v.Events = append(v.Events, fmt.Sprint(e))
		}
	}
	setupPages.render(w, s.log, http.StatusOK, "create", pageData{Title: "foureyes: create the GitHub App", Page: v})
}

func (s *setup) formError(w http.ResponseWriter, msg, host, org string) {
	s.formErrorStatus(w, http.StatusBadRequest, msg, host, org)
}

func (s *setup) formErrorStatus(w http.ResponseWriter, status int, msg, host, org string) {
	v := s.homeView()
	v.Error, v.Host, v.Org = msg, host, org
	setupPages.render(w, s.log, status, "home", pageData{Title: "foureyes: set up", Page: v})
}

func (s *setup) errorPage(w http.ResponseWriter, status int, heading, msg string) {
	s.errorPageView(w, status, errorView{Heading: heading, Message: msg, Home: "/"})
}

func (s *setup) errorPageView(w http.ResponseWriter, status int, v errorView) {
	setupPages.render(w, s.log, status, "error", pageData{
		Title: "foureyes: " + strings.ToLower(v.Heading),
		Tone:  "failure",
		Page:  v,
	})
}

// parseGHESHost accepts "HOST", "HOST:PORT" or "https://HOST[:PORT][/]".
// GitHub Enterprise Server always speaks HTTPS.
func parseGHESHost(in string) (string, error) {
	bad := fmt.Errorf("%q is not a host name: enter your GitHub Enterprise Server's host, like github.example.com", in)
	if len(in) > len("https://") && strings.EqualFold(in[:len("https://")], "https://") {
		in = strings.TrimSuffix(in[len("https://"):], "/")
	} else if strings.Contains(in, "://") {
		return "", bad
	}
	if !hostName.MatchString(in) {
		return "", bad
	}
	return strings.ToLower(in), nil
}

func hostOf(web string) string {
	if u, err := url.Parse(web); err == nil && u.Host != "" {
		return u.Host
	}
	return web
}

// manifestJSON is app.yml with this server's URLs filled in.
func (s *setup) manifestJSON() ([]byte, error) {
	m := make(map[string]any, len(s.manifest))
	for k, v := range s.manifest {
		m[k] = v
	}
	hook := map[string]any{"active": true}
	if h, ok := s.manifest["hook_attributes"].(map[string]any); ok {
		for k, v := range h {
			hook[k] = v
		}
	}
	hook["url"] = s.cfg.PublicURL + "/webhooks/github"
	m["hook_attributes"] = hook
	m["redirect_url"] = s.cfg.PublicURL + "/setup/github/callback"
	// The App's OAuth client signs viewers of private repositories in on
	// the details page; GitHub only redirects to a registered callback URL.
	m["callback_urls"] = []string{s.cfg.PublicURL + SignInCallbackPath("github")}
	m["url"] = s.cfg.PublicURL
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return b, nil
}

// flowState is what the state parameter carries through GitHub: which
// GitHub the flow talks to (so the callback converts the code at the right
// API), a nonce that makes it single use, and its expiry.
type flowState struct {
	Nonce   string `json:"n"`
	Expires int64  `json:"e"`
	Web     string `json:"w"`
	API     string `json:"a"`
	Org     string `json:"o,omitempty"` // the owner chosen on the form, for the error pages
}

func (s *setup) stateMAC(payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(stateMACContext))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

func (s *setup) signState(web, api, org string) (string, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("nonce: %w", err)
	}
	b, err := json.Marshal(flowState{
		Nonce:   base64.RawURLEncoding.EncodeToString(nonce),
		Expires: s.now().Add(stateTTL).Unix(),
		Web:     web,
		API:     api,
		Org:     org,
	})
	if err != nil {
		return "", fmt.Errorf("encode state: %w", err)
	}
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + base64.RawURLEncoding.EncodeToString(s.stateMAC(p)), nil
}

var errBadState = errors.New("invalid setup state")

func (s *setup) verifyState(state string) (flowState, error) {
	p, sig, ok := strings.Cut(state, ".")
	if !ok || len(state) > 2048 {
		return flowState{}, fmt.Errorf("%w: malformed", errBadState)
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, s.stateMAC(p)) {
		return flowState{}, fmt.Errorf("%w: bad signature", errBadState)
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return flowState{}, fmt.Errorf("%w: %w", errBadState, err)
	}
	var st flowState
	if err := json.Unmarshal(raw, &st); err != nil {
		return flowState{}, fmt.Errorf("%w: %w", errBadState, err)
	}
	if st.Nonce == "" || st.API == "" || !s.now().Before(time.Unix(st.Expires, 0)) {
		return flowState{}, fmt.Errorf("%w: expired", errBadState)
	}
	return st, nil
}

// spend marks a state nonce used; false if it already was. Called with
// s.mu held.
func (s *setup) spend(st flowState) bool {
	now := s.now()
	for n, exp := range s.used {
		if now.After(exp) {
			delete(s.used, n)
		}
	}
	if _, ok := s.used[st.Nonce]; ok {
		return false
	}
	s.used[st.Nonce] = time.Unix(st.Expires, 0)
	return true
}

// doneView is the data of the "next step" page. It holds no secret.
type doneView struct {
	AppID        int64
	Slug         string
	AppURL       string
	InstallURL   string
	EnvFile      string
	KeyFile      string
	StartCommand string
	GHES         bool
	// Restart: the server reads EnvFile at start, so restarting it is
	// enough (no StartCommand needed).
	Restart bool
}

// manifestCodeShape is what a conversion code may look like before it is
// sent anywhere.
var manifestCodeShape = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,200}$`)

// callback answers GET /setup/github/callback?code=C&state=S, where GitHub
// sends the browser after the App was created.
func (s *setup) callback(w http.ResponseWriter, r *http.Request) {
	if !s.setupOpen(w, r) {
		return
	}
	q := r.URL.Query()
	st, err := s.verifyState(q.Get("state"))
	if err != nil {
		s.log.WarnContext(r.Context(), "setup callback refused", "error", err)
		s.errorPage(w, http.StatusBadRequest, "This setup link is not valid",
			"The link GitHub sent you back with is incomplete, altered or older than an hour, or it was used already. Start again from the home page.")
		return
	}
	code := q.Get("code")
	if !manifestCodeShape.MatchString(code) {
		s.errorPage(w, http.StatusBadRequest, "This setup link is not valid", "The link GitHub sent you back with has no usable code. Start again from the home page.")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		s.errorPage(w, http.StatusConflict, "A GitHub App is already registered",
			"This server already registered the GitHub App "+s.done.Slug+" and wrote its credentials to "+s.done.EnvFile+". Restart foureyes with them; to register another App, restart it without GitHub credentials first.")
		return
	}
	if !s.spend(st) {
		s.errorPage(w, http.StatusBadRequest, "This setup link is not valid", "This link was used already. Start again from the home page.")
		return
	}

	// Claim the file name before spending GitHub's single-use code: a
	// failure to write afterwards would lose the App's private key.
	envFile, envPath, err := createExclusive(func(i int) string {
		if i == 0 {
			return s.cfg.CredentialsFile
		}
		return s.cfg.CredentialsFile + "." + strconv.Itoa(i)
	})
	if err != nil {
		// The code is unspent: let the same link work again once the
		// directory is fixed.
		delete(s.used, st.Nonce)
		s.log.ErrorContext(r.Context(), "setup: credentials file", "error", err)
		dir := filepath.Dir(s.cfg.CredentialsFile)
		s.errorPageView(w, http.StatusInternalServerError, errorView{
			Heading: "GitHub created the App, but foureyes cannot store its credentials",
			Message: "GitHub has created the App. The code it sent back is still unused (it works once, within an hour), but foureyes cannot create its credentials file: " + err.Error() + ".",
			Steps: []string{
				"Make " + dir + " writable by foureyes (it is FOUREYES_STATE_DIR), then reload this page within the hour: foureyes then fetches the App's credentials and writes them.",
				byHand(),
			},
			Links: []link{{URL: appsPage(st, ""), Text: "Your GitHub Apps, where the new App is listed"}},
			Home:  "/",
		})
		return
	}
	keep := false
	defer func() {
		if !keep {
			envFile.Close()
			_ = os.Remove(envPath)
		}
	}()

	ctx, cancel := context.WithTimeout(r.Context(), convertTimeout)
	defer cancel()
	creds, err := s.cfg.Converter.Convert(ctx, st.API, code)
	if err != nil {
		s.log.ErrorContext(r.Context(), "setup: convert App manifest code", "api", st.API, "error", err)
		s.errorPageView(w, http.StatusBadGateway, errorView{
			Heading: "GitHub created the App, but did not hand over its credentials",
			Message: "GitHub has created the App, but foureyes could not exchange the code GitHub sent for the App's credentials (the code works once, within an hour). Nothing was written here.",
			Steps: []string{
				byHand(),
				"Or delete the App on the same page and start again from the home page.",
			},
			Links: []link{{URL: appsPage(st, ""), Text: "Your GitHub Apps, where the new App is listed"}},
			Home:  "/",
		})
		return
	}
	if creds.AppID <= 0 || creds.PEM == "" || creds.WebhookSecret == "" {
		s.log.ErrorContext(r.Context(), "setup: incomplete App credentials", "app_id", creds.AppID)
		s.errorPageView(w, http.StatusBadGateway, errorView{
			Heading: "GitHub created the App, but its answer was incomplete",
			Message: "GitHub created the App " + creds.Slug + " but did not return its ID, private key and webhook secret. Nothing was written here.",
			Steps:   []string{byHand(), "Or delete the App on the same page and start again from the home page."},
			Links:   []link{{URL: appsPage(st, creds.Slug), Text: "The App's settings on GitHub"}},
			Home:    "/",
		})
		return
	}

	dir := filepath.Dir(envPath)
	keyFile, keyPath, err := createExclusive(func(i int) string {
		name := "foureyes-github-app-" + strconv.FormatInt(creds.AppID, 10)
		if i > 0 {
			name += "-" + strconv.Itoa(i)
		}
		return filepath.Join(dir, name+".pem")
	})
	if err == nil {
		err = writeAndClose(keyFile, []byte(strings.TrimRight(creds.PEM, "\n")+"\n"))
		if err != nil {
			_ = os.Remove(keyPath)
		}
	}
	if err != nil {
		s.writeFailed(w, r, st, creds, err)
		return
	}
	absKey, err := filepath.Abs(keyPath)
	if err != nil {
		absKey = keyPath
	}
	env := s.envFile(creds, st, absKey, envPath)
	if err := writeAndClose(envFile, env); err != nil {
		_ = os.Remove(keyPath)
		s.writeFailed(w, r, st, creds, err)
		return
	}
	keep = true

	appURL := ""
	if u, err := url.Parse(creds.HTMLURL); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		appURL = strings.TrimRight(creds.HTMLURL, "/")
	}
	d := &doneView{
		AppID:        creds.AppID,
		Slug:         creds.Slug,
		AppURL:       appURL,
		EnvFile:      envPath,
		KeyFile:      absKey,
		StartCommand: "set -a; . " + shellQuote(sourcePath(envPath)) + "; set +a; foureyes serve",
		GHES:         st.API != githubAPI,
		Restart:      s.cfg.ReadsCredentialsFile && envPath == s.cfg.CredentialsFile,
	}
	if appURL != "" {
		d.InstallURL = appURL + "/installations/new"
	}
	s.done = d
	s.log.InfoContext(r.Context(), "GitHub App registered", "app_id", creds.AppID, "slug", creds.Slug, "credentials_file", envPath, "key_file", absKey)
	setupPages.render(w, s.log, http.StatusOK, "done", pageData{Title: "foureyes: GitHub App registered", Tone: "success", Page: d})
}

// writeFailed reports credentials that were received but could not be
// stored. They are not shown (no secret goes into a page); GitHub lets the
// owner make a new private key and webhook secret for the App.
func (s *setup) writeFailed(w http.ResponseWriter, r *http.Request, st flowState, creds AppCredentials, err error) {
	s.log.ErrorContext(r.Context(), "setup: write credentials", "app_id", creds.AppID, "error", err)
	s.errorPageView(w, http.StatusInternalServerError, errorView{
		Heading: "GitHub created the App, but foureyes could not store its credentials",
		Message: "GitHub created the App " + creds.Slug + " (App ID " + strconv.FormatInt(creds.AppID, 10) + ") and handed over its credentials, but foureyes could not write them (" + err.Error() + "), so they are lost. The App itself exists and keeps its ID.",
		Steps: []string{
			"On the App's settings page, generate a new private key (GitHub downloads it as a .pem file), set a new webhook secret, note the client ID and generate a client secret.",
			"Give them to foureyes: FOUREYES_GITHUB_APP_ID=" + strconv.FormatInt(creds.AppID, 10) + ", FOUREYES_GITHUB_PRIVATE_KEY_FILE (the .pem), FOUREYES_GITHUB_WEBHOOK_SECRET, FOUREYES_GITHUB_CLIENT_ID and FOUREYES_GITHUB_CLIENT_SECRET, then restart it.",
			"Or delete the App on the same page and start again from the home page.",
		},
		Links: []link{{URL: appsPage(st, creds.Slug), Text: "The App's settings on GitHub"}},
		Home:  "/",
	})
}

// byHand is the recipe for finishing a registration on GitHub's pages.
func byHand() string {
	return "Or finish by hand on the App's settings page on GitHub: note its App ID and client ID, generate a client secret, generate a private key (GitHub downloads it as a .pem file) and set a webhook secret; give them to foureyes as FOUREYES_GITHUB_APP_ID, FOUREYES_GITHUB_CLIENT_ID, FOUREYES_GITHUB_CLIENT_SECRET, FOUREYES_GITHUB_PRIVATE_KEY_FILE and FOUREYES_GITHUB_WEBHOOK_SECRET, and restart it."
}

// appsPage is the GitHub page listing the owner's Apps, or one App's
// settings page when its slug is known.
func appsPage(st flowState, slug string) string {
	u := st.Web + "/settings/apps"
	if st.Org != "" {
		u = st.Web + "/organizations/" + url.PathEscape(st.Org) + "/settings/apps"
	}
	if slug != "" {
		u += "/" + url.PathEscape(slug)
	}
	return u
}

// envFile renders the credentials as KEY=value lines that a POSIX shell,
// systemd's EnvironmentFile and docker's --env-file all read the same way
// (values are quoted only when they must be).
func (s *setup) envFile(creds AppCredentials, st flowState, keyPath, envPath string) []byte {
	var b strings.Builder
	b.WriteString("# foureyes: settings of the GitHub App " + strings.NewReplacer("\n", " ", "\r", " ").Replace(creds.Slug) + ", written by the setup page on " + s.now().UTC().Format(time.RFC3339) + ".\n")
	b.WriteString("# Keep this file and the key file secret. Start with:\n")
	b.WriteString("#   set -a; . " + shellQuote(sourcePath(envPath)) + "; set +a; foureyes serve\n")
	line := func(k, v string) { b.WriteString(k + "=" + shellQuote(v) + "\n") }
	line("FOUREYES_GITHUB_APP_ID", strconv.FormatInt(creds.AppID, 10))
	line("FOUREYES_GITHUB_WEBHOOK_SECRET", creds.WebhookSecret)
	line("FOUREYES_GITHUB_PRIVATE_KEY_FILE", keyPath)
	if creds.ClientID != "" && creds.ClientSecret != "" {
		// The App's OAuth client: viewers of private repositories sign in
		// with it on the details page.
		line("FOUREYES_GITHUB_CLIENT_ID", creds.ClientID)
		line("FOUREYES_GITHUB_CLIENT_SECRET", creds.ClientSecret)
	}
	if st.API != githubAPI {
		line("FOUREYES_GITHUB_API_URL", st.API)
	}
	line("FOUREYES_PUBLIC_URL", s.cfg.PublicURL)
	return []byte(b.String())
}

// createExclusive creates the first name(i) that does not exist yet, with
// mode 0600: credentials are never written over an existing file.
func createExclusive(name func(i int) string) (*os.File, string, error) {
	const tries = 100
	for i := range tries {
		p := name(i)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			// The umask can only take bits away; make the mode exact anyway.
			if err := f.Chmod(0o600); err != nil {
				f.Close()
				_ = os.Remove(p)
				return nil, "", fmt.Errorf("chmod %s: %w", p, err)
			}
			return f, p, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, "", fmt.Errorf("create %s: %w", p, err)
		}
	}
	return nil, "", fmt.Errorf("%s and %d numbered variants exist already", name(0), tries-1)
}

func writeAndClose(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		// The next step is a restart: the file must be on disk by then.
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return nil
}

// sourcePath makes a relative path usable with the shell's "." (which
// searches PATH for a bare name).
func sourcePath(p string) string {
	if filepath.IsAbs(p) || strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") {
		return p
	}
	return "./" + p
}

// shellSafe are the characters that need no quoting in sh, systemd and
// docker env files alike.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:@%+=,-]+$`)

func shellQuote(v string) string {
	if shellSafe.MatchString(v) {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
