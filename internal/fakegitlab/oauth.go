package fakegitlab

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// GitLab as an OAuth 2.0 provider, as documented in "OAuth 2.0 identity
// provider API" (docs.gitlab.com/api/oauth2), authorization code flow with
// PKCE:
//
//  1. GET /oauth/authorize?client_id&redirect_uri&response_type=code&state
//     &scope[&code_challenge&code_challenge_method=S256]: GitLab signs the
//     user in and asks them to authorize the application, then redirects
//     to redirect_uri (which must be one the application registered) with
//     code and state, or error=access_denied.
//  2. POST /oauth/token with client_id, client_secret, code,
//     grant_type=authorization_code, redirect_uri [, code_verifier]:
//     JSON {access_token, token_type: "Bearer", expires_in: 7200,
//     refresh_token, scope, created_at}; a bad grant is 400
//     {"error": "invalid_grant", ...}.
//  3. The access token calls the API as that user ("Authorization: Bearer"):
//     GET /api/v4/user, and GET /api/v4/projects/:id/merge_requests/:iid,
//     which answers 404 when the user may not see the merge request (a
//     private project needs at least Reporter for merge requests,
//     "Project members permissions").
//
// The fake's sign-in page stands in for GitLab's login and consent pages.

type oauthApp struct {
	id, secret string
	redirect   string
}

type oauthGrant struct {
	userID    int
	redirect  string
	challenge string
	expires   time.Time
}

type oauthToken struct {
	userID  int
	expires time.Time
}

// oauthState is guarded by Server.mu.
type oauthState struct {
	apps       map[string]*oauthApp
	grants     map[string]*oauthGrant
	tokens     map[string]oauthToken
	visibility map[int]string // project ID -> "public" | "internal" | "private"
}

func (s *Server) oauth() *oauthState {
	if s.oauthSt == nil {
		s.oauthSt = &oauthState{
			apps:       map[string]*oauthApp{},
			grants:     map[string]*oauthGrant{},
			tokens:     map[string]oauthToken{},
			visibility: map[int]string{},
		}
	}
	return s.oauthSt
}

// SetOAuthApplication registers (or updates) an OAuth application, as
// Admin or User settings > Applications do: its application ID, secret and
// redirect URI.
func (s *Server) SetOAuthApplication(clientID, clientSecret, redirectURI string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth().apps[clientID] = &oauthApp{id: clientID, secret: clientSecret, redirect: redirectURI}
}

// SetVisibility sets a project's visibility: "public", "internal" (the
// fake's default) or "private".
func (s *Server) SetVisibility(projectID int, visibility string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth().visibility[projectID] = visibility
}

// visibilityOf is what projectJSON reports; call with s.mu held.
func (s *Server) visibilityOf(p *projectState) string {
	if s.oauthSt != nil {
		if v := s.oauthSt.visibility[p.ID]; v != "" {
			return v
		}
	}
	return "internal"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var signInPage = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · GitLab · fake</title></head>
<body>
<h1>Authorize application</h1>
{{if .Error}}<p id="error">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<label for="login">Username</label>
<input type="text" id="login" name="login" autocomplete="off">
<button type="submit" name="decision" value="authorize" id="authorize">Authorize</button>
<button type="submit" name="decision" value="cancel" id="cancel">Deny</button>
</form>
</body></html>`))

// serveOAuth answers /oauth/authorize and /oauth/token, and API requests
// made with an OAuth access token; it reports whether it answered.
func (s *Server) serveOAuth(w http.ResponseWriter, r *http.Request) bool {
	var status int
	switch r.URL.Path {
	case "/oauth/authorize":
		status = s.authorize(w, r)
	case "/oauth/token":
		status = s.token(w, r)
	default:
		return s.serveUserAPI(w, r)
	}
	s.record(Request{Method: r.Method, Path: r.URL.Path, Status: status})
	return true
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) int {
	q := r.URL.Query()
	s.mu.Lock()
	app := s.oauth().apps[q.Get("client_id")]
	s.mu.Unlock()
	fail := func(status int, msg string) int {
		http.Error(w, msg, status)
		return status
	}
	if app == nil {
		return fail(http.StatusUnauthorized, "Client authentication failed due to unknown client.")
	}
	if q.Get("redirect_uri") != app.redirect {
		return fail(http.StatusBadRequest, "The redirect uri included is not valid.")
	}
	if q.Get("response_type") != "code" {
		return fail(http.StatusBadRequest, "The authorization server does not support this response type.")
	}
	if m := q.Get("code_challenge_method"); (m != "" || q.Get("code_challenge") != "") && (m != "S256" || len(q.Get("code_challenge")) != 43) {
		return fail(http.StatusBadRequest, "Code challenge is required with method S256.")
	}
	if r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = signInPage.Execute(w, map[string]any{"Action": template.URL("/oauth/authorize?" + r.URL.RawQuery)})
		return http.StatusOK
	}
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		return fail(http.StatusBadRequest, "bad request")
	}
	back, _ := url.Parse(app.redirect)
	bq := back.Query()
	if st := q.Get("state"); st != "" {
		bq.Set("state", st)
	}
	if r.PostForm.Get("decision") == "cancel" {
		bq.Set("error", "access_denied")
		bq.Set("error_description", "The resource owner or authorization server denied the request.")
		back.RawQuery = bq.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
		return http.StatusFound
	}
	login := strings.TrimSpace(r.PostForm.Get("login"))
	s.mu.Lock()
	uid := 0
	for _, u := range s.users {
		if strings.EqualFold(u.Username, login) && u.State != "blocked" {
			uid = u.ID
		}
	}
	code := randomHex(32)
	if uid != 0 {
		s.oauth().grants[code] = &oauthGrant{userID: uid, redirect: app.redirect, challenge: q.Get("code_challenge"), expires: s.now().Add(10 * time.Minute)}
	}
	s.mu.Unlock()
	if uid == 0 {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_ = signInPage.Execute(w, map[string]any{"Action": template.URL("/oauth/authorize?" + r.URL.RawQuery), "Error": "Invalid login or password."})
		return http.StatusUnauthorized
	}
	bq.Set("code", code)
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
	return http.StatusFound
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"})
		return http.StatusBadRequest
	}
	p := r.PostForm
	id, secret := p.Get("client_id"), p.Get("client_secret")
	if u, pw, ok := r.BasicAuth(); ok {
		id, secret = u, pw
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.oauth()
	app := o.apps[id]
	if app == nil || subtle.ConstantTimeCompare([]byte(secret), []byte(app.secret)) != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."})
		return http.StatusUnauthorized
	}
	g := o.grants[p.Get("code")]
	delete(o.grants, p.Get("code"))
	invalid := func() int {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant", "error_description": "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client."})
		return http.StatusBadRequest
	}
	if p.Get("grant_type") != "authorization_code" || g == nil || !s.now().Before(g.expires) || p.Get("redirect_uri") != g.redirect {
		return invalid()
	}
	if g.challenge != "" {
		sum := sha256.Sum256([]byte(p.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			return invalid()
		}
	}
	tok := randomHex(32)
	o.tokens[tok] = oauthToken{userID: g.userID, expires: s.now().Add(2 * time.Hour)}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":  tok,
		"token_type":    "Bearer",
		"expires_in":    7200,
		"refresh_token": randomHex(32),
		"scope":         p.Get("scope"),
		"created_at":    s.now().Unix(),
	})
	return http.StatusOK
}

// serveUserAPI answers the API requests made with an OAuth access token.
func (s *Server) serveUserAPI(w http.ResponseWriter, r *http.Request) bool {
	a := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(a, "Bearer ")
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.oauthSt == nil {
		return false
	}
	t, ok := s.oauthSt.tokens[tok]
	if !ok {
		return false
	}
	rec := Request{Method: r.Method, Path: strings.TrimPrefix(r.URL.Path, apiPrefix), Query: r.URL.RawQuery}
	answer := func(status int, v any) bool {
		rec.Status = status
		s.log = append(s.log, rec)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
		return true
	}
	u := s.users[t.userID]
	if u == nil || !s.now().Before(t.expires) {
		return answer(http.StatusUnauthorized, map[string]any{"message": "401 Unauthorized"})
	}
	seg := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.EscapedPath(), apiPrefix), "/"), "/")
	switch {
	case r.Method == http.MethodGet && len(seg) == 1 && seg[0] == "user":
		return answer(http.StatusOK, s.userJSON(u, true))
	case r.Method == http.MethodGet && len(seg) == 4 && seg[0] == "projects" && seg[2] == "merge_requests":
		pid, _ := url.PathUnescape(seg[1])
		p := s.findProject(pid)
		iid, _ := strconv.Atoi(seg[3])
		if p == nil || p.mrs[iid] == nil {
			return answer(http.StatusNotFound, map[string]any{"message": "404 Project Not Found"})
		}
		level := s.accessLevel(p, u)
		switch s.visibilityOf(p) {
		case "public", "internal":
		default:
			if level < Reporter {
				return answer(http.StatusNotFound, map[string]any{"message": "404 Not found"})
			}
		}
		return answer(http.StatusOK, map[string]any{"id": p.ID*1000 + iid, "iid": iid, "project_id": p.ID, "title": p.mrs[iid].Title, "state": "opened"})
	}
	return answer(http.StatusForbidden, map[string]any{"error": "insufficient_scope", "error_description": "The request requires higher privileges than provided by the access token."})
}
