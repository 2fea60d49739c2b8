package fakegithub

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestManifestWebFlow(t *testing.T) {
	// The GHES layout: API under /api/v3, web pages at the root.
	f := New(77, &testKey().PublicKey, WithPrefix("/api/v3"))
	defer f.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(path string, manifest string) *http.Response {
		t.Helper()
		resp, err := noRedirect.PostForm(f.WebURL()+path, url.Values{"manifest": {manifest}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	manifest := func(edit func(m map[string]any)) string {
		m := map[string]any{
			"name":                "foureyes",
			"url":                 "https://foureyes.example.com",
			"redirect_url":        "https://foureyes.example.com/setup/github/callback?x=1",
			"hook_attributes":     map[string]any{"url": "https://foureyes.example.com/webhooks/github"},
			"default_permissions": map[string]any{"checks": "write"},
			"default_events":      []string{"pull_request"},
		}
		if edit != nil {
			edit(m)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	good := manifest(nil)

	resp := post("/organizations/acme/settings/apps/new?state=S1", good)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Host != "foureyes.example.com" || loc.Path != "/setup/github/callback" ||
		loc.Query().Get("state") != "S1" || loc.Query().Get("x") != "1" || loc.Query().Get("code") == "" {
		t.Fatalf("Location = %q", resp.Header.Get("Location"))
	}
	subs := f.ManifestSubmissions()
	if len(subs) != 1 || subs[0].Org != "acme" || subs[0].State != "S1" || subs[0].Code != loc.Query().Get("code") || subs[0].Manifest["name"] != "foureyes" {
		t.Fatalf("submissions = %+v", subs)
	}

	// The code converts once, through the API.
	code := loc.Query().Get("code")
	conv := func() int {
		r, err := http.Post(f.URL()+"app-manifests/"+code+"/conversions", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if s := conv(); s != http.StatusCreated {
		t.Fatalf("conversion: %d", s)
	}
	if s := conv(); s != http.StatusNotFound {
		t.Fatalf("second conversion: %d", s)
	}

	if resp := post("/settings/apps/new", good); resp.StatusCode != http.StatusFound || strings.Contains(resp.Header.Get("Location"), "state=") {
		t.Fatalf("personal account: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for name, m := range map[string]string{
		"not JSON":         "{",
		"empty":            "",
		"missing url":      manifest(func(m map[string]any) { delete(m, "url") }),
		"missing redirect": manifest(func(m map[string]any) { delete(m, "redirect_url") }),
		"missing hook":     manifest(func(m map[string]any) { delete(m, "hook_attributes") }),
		"missing perms":    manifest(func(m map[string]any) { delete(m, "default_permissions") }),
		"missing events":   manifest(func(m map[string]any) { delete(m, "default_events") }),
		"relative hook":    manifest(func(m map[string]any) { m["hook_attributes"] = map[string]any{"url": "/webhooks/github"} }),
	} {
		if resp := post("/settings/apps/new", m); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d", name, resp.StatusCode)
		}
	}
	if resp := post("/organizations/acme/settings/apps/other", good); resp.StatusCode != http.StatusNotFound {
		t.Errorf("other web path: %d", resp.StatusCode)
	}
}
