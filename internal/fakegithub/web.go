package fakegithub

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// ManifestSubmission is one App manifest posted to the fake's web UI, as a
// browser does when a user presses "Create GitHub App" on an App-manifest
// form.
type ManifestSubmission struct {
	// Org is the organization from /organizations/{org}/settings/apps/new;
	// "" for a personal account.
	Org string
	// State is the query parameter GitHub hands back unchanged.
	State string
	// Code is the one-time code the fake issued for this manifest.
	Code string
	// Manifest is the decoded manifest JSON.
	Manifest map[string]any
}

// WebURL is the fake's web UI root (github.com, or a GHES host), without a
// trailing slash. It is the same server as the API: with WithPrefix the API
// lives under the prefix and the web pages at the root, as on GHES.
func (f *Fake) WebURL() string { return f.srv.URL }

// ManifestSubmissions returns the manifests posted to the web UI so far,
// oldest first.
func (f *Fake) ManifestSubmissions() []ManifestSubmission {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ManifestSubmission(nil), f.manifests...)
}

// serveWeb plays the parts of GitHub's web UI the manifest flow touches:
// POST /settings/apps/new and /organizations/{org}/settings/apps/new. It
// reports whether it answered. GitHub would show a confirmation page
// (where the user may rename the App) before redirecting; the fake
// redirects at once so a browser test can run the whole flow.
func (f *Fake) serveWeb(w http.ResponseWriter, r *http.Request) bool {
	if f.serveOAuth(w, r) {
		return true
	}
	org, ok := manifestPath(r.URL.Path)
	if !ok {
		return false
	}
	if r.Method != http.MethodPost {
		// GitHub's GET of this page is its form for registering an App by
		// hand; the manifest flow always POSTs.
		http.Error(w, "the manifest flow POSTs here", http.StatusMethodNotAllowed)
		f.log(r.Method, r.URL.Path, r.URL.RawQuery, http.StatusMethodNotAllowed, 0)
		return true
	}
	status := f.acceptManifest(w, r, org)
	f.log(r.Method, r.URL.Path, r.URL.RawQuery, status, 0)
	return true
}

// manifestPath matches the two manifest endpoints and returns the org.
func manifestPath(p string) (org string, ok bool) {
	if p == "/settings/apps/new" {
		return "", true
	}
	rest, found := strings.CutPrefix(p, "/organizations/")
	if !found {
		return "", false
	}
	org, tail, _ := strings.Cut(rest, "/")
	if org == "" || tail != "settings/apps/new" {
		return "", false
	}
	return org, true
}

// requiredManifestKeys are the keys the fake insists on: GitHub requires
// url, and without redirect_url and a webhook URL the flow cannot come back
// to foureyes or deliver events. default_permissions and default_events are
// what make the App useful; a manifest without them is a bug worth failing on.
var requiredManifestKeys = []string{"name", "url", "redirect_url", "hook_attributes", "default_permissions", "default_events"}

func (f *Fake) acceptManifest(w http.ResponseWriter, r *http.Request, org string) int {
	fail := func(msg string) int {
		http.Error(w, msg, http.StatusUnprocessableEntity)
		return http.StatusUnprocessableEntity
	}
	if err := r.ParseForm(); err != nil {
		return fail("bad form: " + err.Error())
	}
	raw := r.PostForm.Get("manifest")
	if raw == "" {
		return fail("the manifest form field is missing")
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return fail("the manifest is not valid JSON: " + err.Error())
	}
	for _, k := range requiredManifestKeys {
		if _, ok := m[k]; !ok {
			return fail("the manifest lacks " + k)
		}
	}
	hook, _ := m["hook_attributes"].(map[string]any)
	if s, _ := hook["url"].(string); !absoluteURL(s) {
		return fail("hook_attributes.url must be an absolute URL")
	}
	redirect, _ := m["redirect_url"].(string)
	if !absoluteURL(redirect) {
		return fail("redirect_url must be an absolute URL")
	}
	if s, _ := m["url"].(string); !absoluteURL(s) {
		return fail("url must be an absolute URL")
	}
	code := randomHex(10)
	state := r.URL.Query().Get("state")
	f.mu.Lock()
	f.manifests = append(f.manifests, ManifestSubmission{Org: org, State: state, Code: code, Manifest: m})
	f.mu.Unlock()

	u, _ := url.Parse(redirect) // checked by absoluteURL
	q := u.Query()
	q.Set("code", code)
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
	return http.StatusFound
}

func absoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
