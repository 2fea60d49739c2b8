package fakegithub

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The web application flow of a GitHub App's OAuth client, as documented
// in "Generating a user access token for a GitHub App" and "Authorizing
// OAuth apps" (docs.github.com):
//
//  1. GET /login/oauth/authorize?client_id&redirect_uri&state
//     [&code_challenge&code_challenge_method=S256]: GitHub signs the user
//     in and asks them to authorize, then redirects to redirect_uri with
//     code and state (or error=access_denied when they cancel). The
//     redirect_uri must be one of the App's callback URLs. The code
//     expires after 10 minutes and works once.
//  2. POST /login/oauth/access_token with client_id, client_secret, code,
//     redirect_uri [, code_verifier]: the answer is form-encoded
//     (access_token, expires_in, refresh_token, scope, token_type=bearer)
//     unless the request accepts application/json; a bad code is a 200
//     with error=bad_verification_code.
//  3. The user access token (ghu_...) calls the API as that user:
//     GET /user, and GET /repos/{owner}/{repo}, which answers 404 for a
//     private repository the user cannot see.
//
// The fake's sign-in page stands in for github.com's login and consent
// pages: a form with the login to sign in as, and Authorize / Cancel.

// oauthState is the fake's OAuth side; guarded by Fake.mu.
type oauthState struct {
	users     map[string]bool    // logins that can sign in (lower case)
	callbacks map[int64][]string // App ID -> callback URLs
	codes     map[string]*oauthCode
	tokens    map[string]userToken
	private   map[string]bool // repo full name (lower case) -> private
}

type oauthCode struct {
	app       *App
	login     string
	redirect  string
	challenge string
	expires   time.Time
}

type userToken struct {
	login   string
	expires time.Time
}

// oauth returns the OAuth state, creating it; call with f.mu held.
func (f *Fake) oauth() *oauthState {
	if f.oauthSt == nil {
		f.oauthSt = &oauthState{
			users:     map[string]bool{},
			callbacks: map[int64][]string{},
			codes:     map[string]*oauthCode{},
			tokens:    map[string]userToken{},
			private:   map[string]bool{},
		}
	}
	return f.oauthSt
}

// AddUser lets login sign in through the OAuth flow.
func (f *Fake) AddUser(login string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.oauth().users[strings.ToLower(login)] = true
}

// SetPrivate makes a repository private (or public again). The API then
// reports "private": true and "visibility": "private", and a user token
// sees the repository only when the user has a permission on it
// (SetPermission).
func (f *Fake) SetPrivate(repo string, private bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repoOf(repo)
	f.oauth().private[strings.ToLower(repo)] = private
}

// SetOAuthClient gives the App appID its OAuth client (client ID and
// secret, as the App's settings page shows them) and callback URLs (the
// manifest's callback_urls). A manifest-created App keeps the client the
// conversion returned when clientID is "".
func (f *Fake) SetOAuthClient(appID int64, clientID, clientSecret string, callbackURLs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	app := f.apps[appID]
	if app == nil {
		return
	}
	if clientID != "" {
		app.ClientID, app.ClientSecret = clientID, clientSecret
	}
	f.oauth().callbacks[appID] = append([]string(nil), callbackURLs...)
}

// UserTokensIssued reports how many user access tokens the fake handed out.
func (f *Fake) UserTokensIssued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.oauth().tokens)
}

// ExpireUserTokens makes every user token invalid (401 Bad credentials),
// as a revoked authorization does.
func (f *Fake) ExpireUserTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, t := range f.oauth().tokens {
		t.expires = time.Time{}
		f.oauth().tokens[k] = t
	}
}

// repoVisibility is what repoJSON reports; call with f.mu held.
func (f *Fake) repoVisibility(rp *repo) (private bool, visibility string) {
	if f.oauthSt != nil && f.oauthSt.private[strings.ToLower(rp.fullName)] {
		return true, "private"
	}
	return false, "public"
}

// appByClient finds the App of an OAuth client ID; call with f.mu held.
func (f *Fake) appByClient(id string) *App {
	for _, a := range f.apps {
		if id != "" && a.ClientID == id {
			return a
		}
	}
	return nil
}

// serveOAuth answers the OAuth web endpoints (at the web root, as on
// github.com and GHES); it reports whether it answered.
func (f *Fake) serveOAuth(w http.ResponseWriter, r *http.Request) bool {
	var status int
	switch r.URL.Path {
	case "/login/oauth/authorize":
		status = f.authorize(w, r)
	case "/login/oauth/access_token":
		status = f.accessToken(w, r)
	default:
		return false
	}
	f.log(r.Method, r.URL.Path, "", status, 0)
	return true
}

var signInPage = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to GitHub · fake</title></head>
<body>
<h1>Authorize {{.App}}</h1>
{{if .Error}}<p id="error">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<label for="login">Username</label>
<input type="text" id="login" name="login" autocomplete="off">
<button type="submit" name="decision" value="authorize" id="authorize">Authorize {{.App}}</button>
<button type="submit" name="decision" value="cancel" id="cancel">Cancel</button>
</form>
</body></html>`))

func (f *Fake) authorize(w http.ResponseWriter, r *http.Request) int {
	q := r.URL.Query()
	f.mu.Lock()
	app := f.appByClient(q.Get("client_id"))
	var callbacks []string
	if app != nil {
		callbacks = f.oauth().callbacks[app.ID]
	}
	f.mu.Unlock()
	fail := func(status int, msg string) int {
		http.Error(w, msg, status)
		return status
	}
	if app == nil {
		return fail(http.StatusNotFound, "unknown client_id")
	}
	redirect := q.Get("redirect_uri")
	if redirect == "" && len(callbacks) > 0 {
		redirect = callbacks[0]
	}
	// GitHub refuses a redirect_uri that is not one of the App's callback
	// URLs ("The redirect_uri is not associated with this application").
	if !registeredCallback(redirect, callbacks) {
		return fail(http.StatusBadRequest, "The redirect_uri is not associated with this application.")
	}
	if m := q.Get("code_challenge_method"); (m != "" || q.Get("code_challenge") != "") && (m != "S256" || len(q.Get("code_challenge")) != 43) {
		return fail(http.StatusBadRequest, "code_challenge must be 43 characters with code_challenge_method=S256")
	}
	if r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = signInPage.Execute(w, map[string]any{"App": app.Name, "Action": template.URL("/login/oauth/authorize?" + r.URL.RawQuery)})
		return http.StatusOK
	}
	if r.Method != http.MethodPost {
		return fail(http.StatusMethodNotAllowed, "GET or POST")
	}
	if err := r.ParseForm(); err != nil {
		return fail(http.StatusBadRequest, err.Error())
	}
	back, _ := url.Parse(redirect)
	bq := back.Query()
	if st := q.Get("state"); st != "" {
		bq.Set("state", st)
	}
	if r.PostForm.Get("decision") == "cancel" {
		bq.Set("error", "access_denied")
		bq.Set("error_description", "The user has denied your application access.")
		back.RawQuery = bq.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
		return http.StatusFound
	}
	login := strings.TrimSpace(r.PostForm.Get("login"))
	f.mu.Lock()
	known := f.oauth().users[strings.ToLower(login)]
	code := randomHex(10)
	if known {
		f.oauth().codes[code] = &oauthCode{app: app, login: login, redirect: redirect, challenge: q.Get("code_challenge"), expires: f.now().Add(10 * time.Minute)}
	}
	f.mu.Unlock()
	if !known {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_ = signInPage.Execute(w, map[string]any{"App": app.Name, "Action": template.URL("/login/oauth/authorize?" + r.URL.RawQuery), "Error": "Incorrect username or password."})
		return http.StatusUnauthorized
	}
	bq.Set("code", code)
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
	return http.StatusFound
}

// registeredCallback: GitHub Apps accept a redirect_uri that is one of
// their callback URLs.
func registeredCallback(redirect string, callbacks []string) bool {
	for _, c := range callbacks {
		if redirect == c {
			return true
		}
	}
	return false
}

func (f *Fake) accessToken(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodPost {
		http.Error(w, "POST", http.StatusMethodNotAllowed)
		return http.StatusMethodNotAllowed
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return http.StatusBadRequest
	}
	p := r.PostForm
	jsonOut := strings.Contains(r.Header.Get("Accept"), "application/json")
	answer := func(v map[string]string) int {
		if jsonOut {
			m := map[string]any{}
			for k, s := range v {
				m[k] = s
			}
			writeJSON(w, http.StatusOK, m)
			return http.StatusOK
		}
		form := url.Values{}
		for k, s := range v {
			form.Set(k, s)
		}
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		_, _ = w.Write([]byte(form.Encode()))
		return http.StatusOK
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.oauth()
	app := f.appByClient(p.Get("client_id"))
	if app == nil || subtle.ConstantTimeCompare([]byte(p.Get("client_secret")), []byte(app.ClientSecret)) != 1 {
		return answer(map[string]string{"error": "incorrect_client_credentials", "error_description": "The client_id and/or client_secret passed are incorrect."})
	}
	c := o.codes[p.Get("code")]
	delete(o.codes, p.Get("code")) // single use, even when it fails below
	bad := map[string]string{"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}
	if c == nil || c.app != app || !f.now().Before(c.expires) {
		return answer(bad)
	}
	if ru := p.Get("redirect_uri"); ru != "" && ru != c.redirect {
		return answer(map[string]string{"error": "redirect_uri_mismatch", "error_description": "The redirect_uri MUST match the registered callback URL for this application."})
	}
	if c.challenge != "" {
		sum := sha256.Sum256([]byte(p.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			return answer(bad)
		}
	}
	tok := "ghu_" + randomHex(18)
	o.tokens[tok] = userToken{login: c.login, expires: f.now().Add(8 * time.Hour)}
	return answer(map[string]string{
		"access_token":             tok,
		"expires_in":               "28800",
		"refresh_token":            "ghr_" + randomHex(30),
		"refresh_token_expires_in": "15897600",
		"scope":                    "",
		"token_type":               "bearer",
	})
}

// serveUserAPI answers API requests made with a user access token; it
// reports whether the request carried one.
func (f *Fake) serveUserAPI(w http.ResponseWriter, r *http.Request, path string) bool {
	_, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.HasPrefix(cred, "ghu_") {
		return false
	}
	f.mu.Lock()
	t, ok := f.oauth().tokens[cred]
	f.mu.Unlock()
	status := http.StatusOK
	defer func() { f.log(r.Method, path, r.URL.RawQuery, status, 0) }()
	if !ok || !f.now().Before(t.expires) {
		status = http.StatusUnauthorized
		writeError(w, status, "Bad credentials")
		return true
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case r.Method == http.MethodGet && path == "/user":
		// users/get-authenticated answers a "public-user" (a token without
		// the user scope): simple-user plus the profile fields it requires.
		u := f.userJSON(User{Login: t.login})
		for k, v := range map[string]any{
			"name": nil, "company": nil, "blog": nil, "location": nil, "email": nil, "hireable": nil, "bio": nil,
			"public_repos": 0, "public_gists": 0, "followers": 0, "following": 0,
			"created_at": appCreated, "updated_at": appCreated,
		} {
			u[k] = v
		}
		writeJSON(w, status, u)
	case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "repos":
		f.mu.Lock()
		rp := f.lookup(parts[1], parts[2])
		var out map[string]any
		if rp != nil {
			priv, _ := f.repoVisibility(rp)
			role := permissionOf(rp, t.login)
			if !priv || role != "" {
				// repos/get answers a "full-repository".
				out = f.repoFullJSON(r, rp)
				out["has_discussions"], out["network_count"], out["subscribers_count"] = false, 0, 0
				out["permissions"] = rolePermissions(role)
			}
		}
		f.mu.Unlock()
		if out == nil {
			status = http.StatusNotFound
			writeError(w, status, "Not Found")
			return true
		}
		writeJSON(w, status, out)
	default:
		status = http.StatusNotFound
		writeError(w, status, "Not Found")
	}
	return true
}

// permissionOf is the user's role on the repository ("" for none); call
// with f.mu held.
func permissionOf(rp *repo, login string) string {
	for l, role := range rp.perms {
		if strings.EqualFold(l, login) {
			return role
		}
	}
	return ""
}

// rolePermissions is the repository's permissions object for a role, as
// "Get a repository" returns it to an authenticated user.
func rolePermissions(role string) map[string]bool {
	rank := map[string]int{"read": 1, "triage": 2, "write": 3, "maintain": 4, "admin": 5}[role]
	return map[string]bool{"pull": rank >= 1, "triage": rank >= 2, "push": rank >= 3, "maintain": rank >= 4, "admin": rank >= 5}
}
