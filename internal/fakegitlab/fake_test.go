package fakegitlab_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
)

func get(t *testing.T, s *fakegitlab.Server, token, path string) (*http.Response, []byte) {
	t.Helper()
	return do(t, s, token, http.MethodGet, path, "")
}

func do(t *testing.T, s *fakegitlab.Server, token, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+"/api/v4"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("PRIVATE-TOKEN", token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func setup(t *testing.T) *fakegitlab.Server {
	s := fakegitlab.New()
	t.Cleanup(s.Close)
	s.AddUser(fakegitlab.User{ID: 1, Username: "bot"})
	s.AddUser(fakegitlab.User{ID: 2, Username: "reader"})
	s.AddToken("t1", 1)
	s.AddToken("t2", 2)
	s.AddProject(fakegitlab.Project{ID: 5, PathWithNamespace: "acme/sub/app"})
	s.SetMember(5, 1, fakegitlab.Developer)
	s.SetMember(5, 2, fakegitlab.Reporter)
	return s
}

func TestTokenAndProjectPath(t *testing.T) {
	s := setup(t)
	if resp, _ := get(t, s, "", "/projects/5"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d", resp.StatusCode)
	}
	resp, body := get(t, s, "t1", "/projects/"+url.PathEscape("acme/sub/app"))
	var p struct {
		ID   int    `json:"id"`
		Path string `json:"path_with_namespace"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &p) != nil || p.ID != 5 {
		t.Errorf("project by path: %d %s", resp.StatusCode, body)
	}
	if n := s.RequestCount(); n != 2 {
		t.Errorf("request count %d", n)
	}
}

func TestPagination(t *testing.T) {
	s := setup(t)
	var diffs []fakegitlab.Diff
	for range 45 {
		diffs = append(diffs, fakegitlab.Diff{OldPath: "a", NewPath: "a"})
	}
	s.AddMergeRequest(5, fakegitlab.MergeRequest{IID: 1, AuthorID: 1, Diffs: diffs})
	resp, body := get(t, s, "t1", "/projects/5/merge_requests/1/diffs?page=2")
	var items []map[string]any
	if err := json.Unmarshal(body, &items); err != nil || len(items) != 20 {
		t.Fatalf("page 2: %v %d", err, len(items))
	}
	h := resp.Header
	if h.Get("X-Total") != "45" || h.Get("X-Total-Pages") != "3" || h.Get("X-Next-Page") != "3" || h.Get("X-Prev-Page") != "1" || !strings.Contains(h.Get("Link"), `rel="next"`) {
		t.Errorf("headers: %v", h)
	}
	resp, _ = get(t, s, "t1", "/projects/5/merge_requests/1/diffs?page=3")
	if resp.Header.Get("X-Next-Page") != "" {
		t.Errorf("last page has a next page")
	}
}

func TestStatusRules(t *testing.T) {
	s := setup(t)
	post := func(token, state string) int {
		resp, _ := do(t, s, token, http.MethodPost, "/projects/5/statuses/abc", `{"state":"`+state+`","name":"foureyes","ref":"x"}`)
		return resp.StatusCode
	}
	if c := post("t2", "success"); c != http.StatusForbidden {
		t.Errorf("reporter posting a status: %d", c)
	}
	if c := post("t1", "pending"); c != http.StatusCreated {
		t.Errorf("first post: %d", c)
	}
	if c := post("t1", "pending"); c != http.StatusBadRequest {
		t.Errorf("same state again: %d, want 400", c)
	}
	if c := post("t1", "success"); c != http.StatusCreated {
		t.Errorf("transition: %d", c)
	}
	if c := post("t1", "success"); c != http.StatusBadRequest {
		t.Errorf("strict same completed state: %d, want 400", c)
	}
	if st := s.Statuses(5, "abc"); len(st) != 1 || st[0].State != "success" {
		t.Errorf("statuses: %+v", st)
	}
	s.SetFailure("GET", "/statuses", http.StatusBadGateway)
	if resp, _ := get(t, s, "t1", "/projects/5/repository/commits/abc/statuses"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("failure injection: %d", resp.StatusCode)
	}
}
