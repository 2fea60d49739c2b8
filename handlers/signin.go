package handlers

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"golang.org/x/oauth2"

	"github.com/foureyes-dev/foureyes/bot"
)

// Who may see a details page:
//   - the forge confirms the repository is public: whoever holds a valid,
//     unexpired link (the check run shows the link to everyone anyway);
//   - otherwise (private, internal, or the forge's answer is unknown) the
//     viewer signs in with the forge through OAuth (GitHub: the App's own
//     OAuth client, "Authorizing GitHub Apps"; GitLab: an OAuth application,
//     "GitLab as an OAuth 2.0 provider") and the forge, asked with the
//     viewer's token, must confirm they can read the change;
//   - a forge without sign-in shows non-public verdicts only when its
//     DetailsAccess says LinkOnly (GitLab without an OAuth application, as
//     documented), else answers 403.
//
// The OAuth state is random, single-purpose, and bound to the browser by a
// sealed cookie (so a sign-in cannot be completed in somebody else's
// browser, RFC 6749 section 10.12), with PKCE (RFC 7636) on top. The
// session is a sealed cookie holding the viewer's login and token:
// HttpOnly, SameSite=Lax (the callback is a top-level navigation from the
// forge), Secure when the public URL is https.

// DetailsAccess is how the details page decides for one forge.
type DetailsAccess struct {
	// Viewers answers whether a repository is public and what a signed-in
	// viewer may read. nil: every repository counts as private.
	Viewers bot.Viewers
	// OAuth is the forge's OAuth client (nil: no sign-in). Its RedirectURL
	// must be PUBLIC_URL + SignInCallbackPath(forge).
	OAuth *oauth2.Config
	// HTTPClient makes the token request (nil: http.DefaultClient).
	HTTPClient *http.Client
	// LinkOnly lets the holder of a valid link see a non-public verdict
	// when OAuth is nil. Ignored when OAuth is set.
	LinkOnly bool
}

// DetailsConfig configures the details page and its sign-in.
type DetailsConfig struct {
	// Key signs the links (SignDetails) and seals the cookies.
	Key      []byte
	Verdicts VerdictSource
	// PublicURL is FOUREYES_PUBLIC_URL; cookies are Secure when it is https.
	PublicURL string
	// TTL is how long links are valid (only used in words: the link carries
	// its own expiry).
	TTL time.Duration
	// Forges holds the access rules per forge; a forge not listed is
	// treated as private without sign-in (403).
	Forges map[bot.ForgeName]DetailsAccess
	Logger *slog.Logger
	Now    func() time.Time
}

// SignInCallbackPath is the OAuth redirect path of a forge's sign-in.
func SignInCallbackPath(forge bot.ForgeName) string { return "/auth/" + string(forge) + "/callback" }

func signInLoginPath(forge bot.ForgeName) string { return "/auth/" + string(forge) + "/login" }

// Lifetimes: a sign-in must finish within stateLifetime; a session lasts
// at most sessionLifetime (GitHub's user tokens expire after 8 hours too).
const (
	signInLifetime  = 10 * time.Minute
	sessionLifetime = 8 * time.Hour
	// visibilityTTL bounds how long the forge's "public" answer is reused:
	// a repository made private is protected within a minute.
	visibilityTTL   = time.Minute
	maxVisibilities = 4096
)

type details struct {
	cfg    DetailsConfig
	log    *slog.Logger
	now    func() time.Time
	aead   cipher.AEAD
	secure bool

	mu  sync.Mutex
	vis map[string]visibility
}

type visibility struct {
	public bool
	until  time.Time
}

// Details returns the function that mounts GET /details/{token} and the
// sign-in routes /auth/{forge}/login and /auth/{forge}/callback.
func Details(cfg DetailsConfig) (func(r *mux.Router), error) {
	d, err := newDetails(cfg)
	if err != nil {
		return nil, err
	}
	return func(r *mux.Router) {
		r.HandleFunc("/details/{token}", d.serveDetails).Methods(http.MethodGet, http.MethodHead)
		r.HandleFunc("/auth/{forge}/login", d.login).Methods(http.MethodGet)
		r.HandleFunc("/auth/{forge}/callback", d.callback).Methods(http.MethodGet)
	}, nil
}

// DetailsHandler serves GET /details/{token} alone (without sign-in
// routes): for tests and callers that mount the page without gorilla/mux.
func DetailsHandler(cfg DetailsConfig) (http.Handler, error) {
	d, err := newDetails(cfg)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(d.serveDetails), nil
}

func newDetails(cfg DetailsConfig) (*details, error) {
	if len(cfg.Key) == 0 {
		return nil, errors.New("details: no signing key (anybody could sign links)")
	}
	if cfg.Verdicts == nil {
		return nil, errors.New("details: no VerdictSource")
	}
	for f, a := range cfg.Forges {
		if a.OAuth != nil && a.Viewers == nil {
			return nil, fmt.Errorf("details: %s sign-in needs Viewers to check access", f)
		}
	}
	cfg.Key = bytes.Clone(cfg.Key)
	d := &details{cfg: cfg, log: cfg.Logger, now: cfg.Now, vis: map[string]visibility{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.secure = strings.HasPrefix(strings.ToLower(cfg.PublicURL), "https://")
	k, err := hkdf.Key(sha256.New, cfg.Key, nil, "foureyes details cookies v1", 32)
	if err != nil {
		return nil, fmt.Errorf("details: derive cookie key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("details: cookie cipher: %w", err)
	}
	if d.aead, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("details: cookie cipher: %w", err)
	}
	return d, nil
}

// mayView decides whether this request may see the verdict; when not, it
// has answered (sign-in page, 403, or an error page).
func (d *details) mayView(ctx context.Context, w http.ResponseWriter, r *http.Request, token string, ref bot.ChangeRef, v bot.Verdict) bool {
	acc := d.cfg.Forges[ref.Forge]
	// The stored verdict knows the repository's IDs (installation, project
	// ID); the token names it.
	repo := v.Ref.Repo
	if !strings.EqualFold(repo.FullName, ref.Repo.FullName) {
		repo = ref.Repo
	}
	if d.public(ctx, acc, ref.Forge, repo) {
		return true
	}
	forge := forgeTitle(ref.Forge)
	if acc.OAuth == nil {
		if acc.LinkOnly {
			return true
		}
		d.log.WarnContext(ctx, "details: a non-public repository and no sign-in configured", "forge", ref.Forge, "repo", ref.Repo.FullName)
		detailsPages.render(w, d.log, http.StatusForbidden, "error", pageData{
			Title: "foureyes: sign-in required",
			Tone:  "failure",
			Page: errorView{
				Heading: "Sign-in is not set up on this server",
				Message: ref.Repo.FullName + " is not a public repository, so its verdicts are shown only to people who sign in with " + forge + " and can read it, and this foureyes server has no " + forge + " sign-in configured. Its operators can set it up (" + signInSettings(ref.Forge) + "); until then, read the verdict in the foureyes check on the " + changeNoun(ref.Forge) + " itself.",
			},
		})
		return false
	}
	signIn := func(status int, msg string) {
		detailsPages.render(w, d.log, status, "error", pageData{
			Title: "foureyes: sign in",
			Tone:  "pending",
			Page: errorView{
				Heading: "Sign in to see this verdict",
				Message: msg,
				Action:  link{URL: signInLoginPath(ref.Forge) + "?next=" + url.QueryEscape(token), Text: "Sign in with " + forge},
			},
		})
	}
	sess, ok := d.openSession(r, ref.Forge)
	if !ok {
		signIn(http.StatusUnauthorized, ref.Repo.FullName+" is not a public repository: sign in with "+forge+" to show that you can read it. foureyes only asks "+forge+" who you are and whether you can read this "+changeNoun(ref.Forge)+".")
		return false
	}
	cref := ref
	cref.Repo = repo
	can, err := acc.Viewers.CanRead(ctx, sess.Token, cref)
	switch {
	case errors.Is(err, bot.ErrViewerToken):
		d.clearCookie(w, sessionCookie(ref.Forge), "/")
		signIn(http.StatusUnauthorized, "Your "+forge+" sign-in has expired or was revoked. Sign in again to see the verdict of "+ref.Repo.FullName+".")
		return false
	case err != nil:
		d.log.ErrorContext(ctx, "details: check the viewer's access", "forge", ref.Forge, "repo", ref.Repo.FullName, "viewer", sess.Login, "error", err)
		d.errorPage(w, http.StatusBadGateway, "Your access could not be checked",
			"foureyes could not ask "+forge+" whether you can read "+ref.Repo.FullName+". Try again in a minute.")
		return false
	case !can:
		d.log.InfoContext(ctx, "details: viewer without access refused", "forge", ref.Forge, "repo", ref.Repo.FullName, "viewer", sess.Login)
		detailsPages.render(w, d.log, http.StatusForbidden, "error", pageData{
			Title: "foureyes: no access",
			Tone:  "failure",
			Page: errorView{
				Heading: "You cannot see this verdict",
				Message: "You are signed in with " + forge + " as @" + sess.Login + ", who cannot read " + ref.Repo.FullName + ". Verdicts of a private repository are shown only to people who can read it. If you have another account with access, sign out of " + forge + ", then sign in again with it.",
				Action:  link{URL: signInLoginPath(ref.Forge) + "?next=" + url.QueryEscape(token), Text: "Sign in again"},
			},
		})
		return false
	}
	return true
}

// public asks the forge (through a short cache) whether repo is public.
// Anything but a clear yes is no.
func (d *details) public(ctx context.Context, acc DetailsAccess, forge bot.ForgeName, repo bot.Repo) bool {
	if acc.Viewers == nil {
		return false
	}
	key := string(forge) + "\x00" + strings.ToLower(repo.FullName)
	now := d.now()
	d.mu.Lock()
	e, ok := d.vis[key]
	d.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.public
	}
	pub, err := acc.Viewers.RepoPublic(ctx, repo)
	if err != nil {
		d.log.WarnContext(ctx, "details: visibility unknown, treated as private", "forge", forge, "repo", repo.FullName, "error", err)
		return false
	}
	d.mu.Lock()
	if len(d.vis) >= maxVisibilities {
		clear(d.vis)
	}
	d.vis[key] = visibility{public: pub, until: now.Add(visibilityTTL)}
	d.mu.Unlock()
	return pub
}

func forgeTitle(f bot.ForgeName) string {
	if f == bot.GitLab {
		return "GitLab"
	}
	return "GitHub"
}

func signInSettings(f bot.ForgeName) string {
	if f == bot.GitLab {
		return "FOUREYES_GITLAB_CLIENT_ID and FOUREYES_GITLAB_CLIENT_SECRET, from a GitLab OAuth application"
	}
	return "FOUREYES_GITHUB_CLIENT_ID and FOUREYES_GITHUB_CLIENT_SECRET, from the GitHub App's settings page"
}

// --- the OAuth flow ------------------------------------------------------

func stateCookie(f bot.ForgeName) string   { return "foureyes_signin_" + string(f) }
func sessionCookie(f bot.ForgeName) string { return "foureyes_session_" + string(f) }

// signInState is what the state cookie carries through the forge.
type signInState struct {
	State    string `json:"s"`
	Verifier string `json:"v"`
	Next     string `json:"n"` // the details token to return to
	Expires  int64  `json:"e"`
}

// session is what the session cookie carries.
type session struct {
	Login   string `json:"l"`
	Token   string `json:"t"`
	Expires int64  `json:"e"`
}

// forgeOf returns the forge named in the route and its OAuth client, or
// answers 404.
func (d *details) forgeOf(w http.ResponseWriter, r *http.Request) (bot.ForgeName, DetailsAccess, bool) {
	f := bot.ForgeName(mux.Vars(r)["forge"])
	acc, ok := d.cfg.Forges[f]
	if !ok || acc.OAuth == nil {
		d.notFound(w)
		return "", DetailsAccess{}, false
	}
	return f, acc, true
}

// login answers GET /auth/{forge}/login?next=TOKEN: it remembers the state
// in a cookie and sends the browser to the forge's authorization page. next
// must be a valid details token of that forge, so the sign-in can only
// ever return to a details page (no open redirect).
func (d *details) login(w http.ResponseWriter, r *http.Request) {
	forge, acc, ok := d.forgeOf(w, r)
	if !ok {
		return
	}
	next := r.URL.Query().Get("next")
	ref, err := VerifyDetails(d.cfg.Key, next, d.now())
	if errors.Is(err, ErrDetailsExpired) {
		d.expired(w)
		return
	}
	if err != nil || ref.Forge != forge {
		d.notFound(w)
		return
	}
	st := signInState{
		State:    randomToken(),
		Verifier: oauth2.GenerateVerifier(),
		Next:     next,
		Expires:  d.now().Add(signInLifetime).Unix(),
	}
	d.setCookie(w, stateCookie(forge), "/auth/"+string(forge)+"/", st, signInLifetime)
	http.Redirect(w, r, acc.OAuth.AuthCodeURL(st.State, oauth2.S256ChallengeOption(st.Verifier)), http.StatusFound)
}

// callback answers GET /auth/{forge}/callback?code=C&state=S, where the
// forge sends the browser back.
func (d *details) callback(w http.ResponseWriter, r *http.Request) {
	forge, acc, ok := d.forgeOf(w, r)
	if !ok {
		return
	}
	name := forgeTitle(forge)
	var st signInState
	okState := d.openCookie(r, stateCookie(forge), &st) && d.now().Before(time.Unix(st.Expires, 0))
	d.clearCookie(w, stateCookie(forge), "/auth/"+string(forge)+"/")
	q := r.URL.Query()
	got := q.Get("state")
	if !okState || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(st.State)) != 1 {
		d.log.WarnContext(r.Context(), "sign-in callback refused: state does not match this browser's", "forge", forge)
		d.errorPage(w, http.StatusBadRequest, "This sign-in link is not valid",
			"The sign-in did not start in this browser, took longer than ten minutes, or was finished already. Open the details link again and sign in from there.")
		return
	}
	if e := q.Get("error"); e != "" {
		detailsPages.render(w, d.log, http.StatusForbidden, "error", pageData{
			Title: "foureyes: sign-in cancelled",
			Tone:  "failure",
			Page: errorView{
				Heading: "Sign-in was cancelled",
				Message: name + " did not sign you in (" + e + "). The verdict of a private repository is shown only after signing in.",
				Action:  link{URL: signInLoginPath(forge) + "?next=" + url.QueryEscape(st.Next), Text: "Try again"},
			},
		})
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 512 {
		d.errorPage(w, http.StatusBadRequest, "This sign-in link is not valid", name+" sent no usable code. Open the details link again and sign in from there.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	if acc.HTTPClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, acc.HTTPClient)
	}
	tok, err := acc.OAuth.Exchange(ctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		d.log.ErrorContext(r.Context(), "sign-in: exchange the code", "forge", forge, "error", err)
		d.errorPage(w, http.StatusBadGateway, "Sign-in failed", name+" did not accept the sign-in. Open the details link again and sign in from there.")
		return
	}
	login, err := acc.Viewers.Viewer(ctx, tok.AccessToken)
	if err != nil {
		d.log.ErrorContext(r.Context(), "sign-in: who is the viewer", "forge", forge, "error", err)
		d.errorPage(w, http.StatusBadGateway, "Sign-in failed", "foureyes could not ask "+name+" who you are. Try again in a minute.")
		return
	}
	life := sessionLifetime
	if !tok.Expiry.IsZero() {
		if left := tok.Expiry.Sub(d.now()); left < life {
			life = left
		}
	}
	if life <= 0 {
		d.errorPage(w, http.StatusBadGateway, "Sign-in failed", name+" handed out a token that has expired already. Try again.")
		return
	}
	d.setCookie(w, sessionCookie(forge), "/", session{Login: login, Token: tok.AccessToken, Expires: d.now().Add(life).Unix()}, life)
	d.log.InfoContext(r.Context(), "viewer signed in", "forge", forge, "viewer", login)
	// The token was verified when the sign-in started; it only ever leads
	// back to a details page of this server.
	http.Redirect(w, r, "/details/"+url.PathEscape(st.Next), http.StatusSeeOther)
}

func (d *details) openSession(r *http.Request, forge bot.ForgeName) (session, bool) {
	var s session
	if !d.openCookie(r, sessionCookie(forge), &s) || s.Token == "" || s.Login == "" || !d.now().Before(time.Unix(s.Expires, 0)) {
		return session{}, false
	}
	return s, true
}

// --- sealed cookies ------------------------------------------------------

// seal encrypts and authenticates v (AES-256-GCM under a key derived from
// the details key), bound to the cookie's name so one cookie cannot be
// replayed as another.
func (d *details) seal(name string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode cookie: %w", err)
	}
	nonce := make([]byte, d.aead.NonceSize())
	_, _ = rand.Read(nonce) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(d.aead.Seal(nonce, nonce, plain, []byte(name))), nil
}

// maxCookie bounds the work on a cookie before it is authenticated.
const maxCookie = 4096

func (d *details) openCookie(r *http.Request, name string, v any) bool {
	c, err := r.Cookie(name)
	if err != nil || len(c.Value) > maxCookie {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(raw) < d.aead.NonceSize() {
		return false
	}
	plain, err := d.aead.Open(nil, raw[:d.aead.NonceSize()], raw[d.aead.NonceSize():], []byte(name))
	if err != nil {
		return false
	}
	return json.Unmarshal(plain, v) == nil
}

func (d *details) setCookie(w http.ResponseWriter, name, path string, v any, life time.Duration) {
	val, err := d.seal(name, v)
	if err != nil {
		d.log.Error("seal cookie", "cookie", name, "error", err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: val, Path: path,
		MaxAge:   int(life.Seconds()),
		HttpOnly: true, Secure: d.secure, SameSite: http.SameSiteLaxMode,
	})
}

func (d *details) clearCookie(w http.ResponseWriter, name, path string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1, HttpOnly: true, Secure: d.secure, SameSite: http.SameSiteLaxMode})
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
