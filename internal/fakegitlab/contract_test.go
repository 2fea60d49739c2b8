package fakegitlab_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
	"github.com/foureyes-dev/foureyes/internal/testfixtures"
)

// GitLab publishes no machine-readable schema for these endpoints, only
// the response examples in its API docs (testdata/fixtures/gitlab-api and
// testdata/docs, see their SOURCES.md). The contract is therefore weaker
// than GitHub's but still mechanical: every key of the documented example
// must be in the fake's answer, recursively, with the same JSON type, and a
// list the example fills must not be empty. A null in the example says
// nothing about the type; where the fake may be null, lack a conditional
// key or leave a list empty is listed in docGaps, with why.

// jsonType names a decoded JSON value's type.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// shapeDiff lists where got lacks a key of doc, has another type, or an
// empty list where doc shows items. gaps holds "<prefix> <path>" (array
// indexes as "[]") where the fake may be missing, null or empty; the keys it
// used are recorded in used (may be nil).
func shapeDiff(doc, got any, at string, gaps map[string]string, prefix string, used map[string]bool) []string {
	excused := func(path string) bool {
		_, ok := gaps[prefix+" "+path]
		if ok && used != nil {
			used[prefix+" "+path] = true
		}
		return ok
	}
	switch {
	case doc == nil:
		return nil
	case got == nil && excused(at):
		return nil
	case got == nil:
		return []string{fmt.Sprintf("%s: null, the docs show %s", at, jsonType(doc))}
	case jsonType(doc) != jsonType(got):
		return []string{fmt.Sprintf("%s: %s, the docs show %s", at, jsonType(got), jsonType(doc))}
	}
	var out []string
	switch d := doc.(type) {
	case map[string]any:
		g := got.(map[string]any)
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, ok := g[k]
			switch {
			case !ok && excused(at+"/"+k):
			case !ok:
				out = append(out, fmt.Sprintf("%s/%s: missing", at, k))
			default:
				out = append(out, shapeDiff(d[k], gv, at+"/"+k, gaps, prefix, used)...)
			}
		}
	case []any:
		g := got.([]any)
		switch {
		case len(d) == 0:
		case len(g) == 0 && excused(at):
		case len(g) == 0:
			out = append(out, fmt.Sprintf("%s: empty, the docs show items (give the state some)", at))
		default:
			for _, gv := range g {
				out = append(out, shapeDiff(d[0], gv, at+"/[]", gaps, prefix, used)...)
			}
		}
	}
	return out
}

// docGaps: "<doc file> <path>" where the fake's answer may lack,
// null or leave empty what the docs' example shows, each with why: the
// state differs from the example's, the field is conditional, or the fake
// does not model it (and foureyes does not read it).
var docGaps = map[string]string{
	"merge_requests.get.json /approvals_before_merge": "the doc example has the key twice (null, then an object by mistake); " +
		"GitLab sends null or an integer and go-gitlab decodes an integer",
	"merge_requests.get.json /pipeline":                "the fake models no pipelines; GitLab sends null for an MR without one",
	"merge_requests.get.json /head_pipeline":           "the fake models no pipelines; GitLab sends null for an MR without one",
	"merge_requests.get.json /merge_after":             "null unless a merge is scheduled",
	"merge_requests.get.json /latest_build_started_at": "no pipeline, no build",
	"commits.statuses.post.json /coverage":             "null when the status reports no coverage (foureyes sends none)",
	"commits.statuses.post.json /finished_at":          "the status posted is pending: not finished",
	"docs/notes.get.json /author/email": "a note's author is GitLab's UserBasic entity, which has no e-mail; the example " +
		"predates that (a private e-mail is never shown to a bot)",
	"docs/notes.get.json /[]/author/email":           "as for the single note",
	"docs/notes.get.json /author/created_at":         "UserBasic has no created_at; the example predates that",
	"docs/notes.get.json /[]/author/created_at":      "as for the single note",
	"docs/members.all.get.json /created_by":          "only for a membership someone granted by invitation; the fake's are set directly",
	"docs/members.all.get.json /email":               "only for enterprise users, to group owners (members.md, Limitations)",
	"docs/members.all.get.json /group_saml_identity": "only for SSO-enabled groups, to their owners (members.md, Limitations)",
	"docs/commits.get.json /status":                  "the pipeline status: null without pipelines, which the fake does not model",
	"docs/commits.get.json /last_pipeline":           "null without pipelines, which the fake does not model",
	"docs/users.get.json /pronouns":                  "null until the user sets pronouns",
	"docs/users.get.json /local_time":                "null until the user sets a time zone",
	"docs/repository.compare.json /diffs": "the fake does not model compare diffs; foureyes reads only commits and " +
		"compare_timeout from compare (forge/gitlab/publish.go)",
}

func TestContractAgainstGitLabDocs(t *testing.T) {
	s := fakegitlab.New()
	t.Cleanup(s.Close)
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return t0 })
	s.AddUser(fakegitlab.User{ID: 1, Username: "foureyes-bot", Name: "foureyes", Bot: true})
	s.AddUser(fakegitlab.User{ID: 2, Username: "alice", Name: "Alice", PublicEmail: "alice@example.com"})
	s.AddUser(fakegitlab.User{ID: 3, Username: "bob", Name: "Bob"})
	s.AddToken("bot", 1)
	s.AddProject(fakegitlab.Project{ID: 5, PathWithNamespace: "acme/app"})
	s.SetMember(5, 1, fakegitlab.Developer)
	s.SetMember(5, 2, fakegitlab.Developer)
	s.SetMember(5, 3, fakegitlab.Maintainer)
	c1 := fakegitlab.Commit{ID: strings.Repeat("a", 40), Message: "Add the deploy job\n\nbody", AuthorName: "Alice", AuthorEmail: "alice@example.com", Date: t0, ParentIDs: []string{strings.Repeat("0", 40)}}
	c2 := fakegitlab.Commit{ID: strings.Repeat("b", 40), Message: "Fix it", AuthorName: "Alice", AuthorEmail: "alice@example.com", Date: t0.Add(time.Hour), ParentIDs: []string{c1.ID}}
	s.AddCommits(5, c1, c2)
	s.AddMergeRequest(5, fakegitlab.MergeRequest{
		IID: 1, Title: "Add the deploy job", Description: "Adds it.", AuthorID: 2,
		SourceBranch: "deploy", TargetBranch: "main", SHA: c2.ID, BaseSHA: strings.Repeat("0", 40),
		ReviewerIDs: []int{3},
		Diffs: []fakegitlab.Diff{
			{OldPath: "deploy/prod.tf", NewPath: "deploy/prod.tf", Diff: "@@ -1 +1 @@\n-a\n+b\n"},
			{OldPath: "a.go", NewPath: "b.go", RenamedFile: true},
		},
		Commits: []fakegitlab.Commit{c2, c1},
	})
	s.Approve(5, 1, 3)

	usedGaps := map[string]bool{}
	s.AddGroup(9, "acme")
	s.SetGroupMember("acme", 3, fakegitlab.Maintainer)
	note := s.AddNote(5, 1, 1, "foureyes: 1 approval missing")
	for _, c := range []struct {
		method, path, body string
		status             int
		doc                string // in testdata/fixtures/gitlab-api, or "docs/…" in testdata/docs
		each               bool   // doc shows one element of the answer's list
	}{
		{"GET", "/projects/5/merge_requests/1", "", 200, "merge_requests.get.json", false},
		{"GET", "/projects/5/merge_requests/1/diffs", "", 200, "merge_requests.diffs.json", false},
		{"GET", "/projects/5/merge_requests/1/commits", "", 200, "merge_requests.commits.json", false},
		{"GET", "/projects/5/merge_requests/1/approvals", "", 200, "merge_requests.approvals.json", false},
		{"GET", "/projects/5/repository/commits/" + c2.ID + "/merge_requests", "", 200, "repository.commits.merge_requests.json", false},
		// The list of a project's merge requests answers the same entity.
		{"GET", "/projects/5/merge_requests?state=opened", "", 200, "repository.commits.merge_requests.json", false},
		{"POST", "/projects/5/statuses/" + c2.ID, `{"state":"pending","name":"foureyes","ref":"deploy","description":"waiting","target_url":"https://foureyes.example/d/1"}`, 201, "commits.statuses.post.json", false},
		{"GET", "/projects/5/repository/commits/" + c2.ID + "/statuses", "", 200, "docs/commits.statuses.list.json", false},
		{"GET", "/projects/5/merge_requests/1/notes", "", 200, "docs/notes.get.json", true},
		{"POST", "/projects/5/merge_requests/1/notes", `{"body":"foureyes: approved"}`, 201, "docs/notes.get.json", false},
		{"PUT", fmt.Sprintf("/projects/5/merge_requests/1/notes/%d", note.ID), `{"body":"foureyes: 2 approvals missing"}`, 200, "docs/notes.get.json", false},
		{"GET", "/projects/5/members/all/3", "", 200, "docs/members.all.get.json", false},
		{"GET", "/groups/acme/members/all/3", "", 200, "docs/members.all.get.json", false},
		{"GET", "/projects/5/repository/commits?ref_name=" + c2.ID, "", 200, "docs/commits.list.json", false},
		{"GET", "/projects/5/repository/commits/" + c2.ID, "", 200, "docs/commits.get.json", false},
		{"GET", "/users/2", "", 200, "docs/users.get.json", false},
		{"GET", "/projects/5/repository/compare?from=" + c1.ID + "&to=" + c2.ID, "", 200, "docs/repository.compare.json", false},
	} {
		resp, body := do(t, s, "bot", c.method, c.path, c.body)
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: %d %s", c.method, c.path, resp.StatusCode, body)
			continue
		}
		var doc, got any
		raw, err := docExample(t, c.doc)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", c.doc, err)
		}
		if c.each {
			doc = []any{doc}
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Errorf("%s %s: not JSON: %v", c.method, c.path, err)
			continue
		}
		if d := shapeDiff(doc, got, "", docGaps, c.doc, usedGaps); len(d) > 0 {
			t.Errorf("%s %s differs from GitLab's documented example %s:\n%s", c.method, c.path, c.doc, strings.Join(d, "\n"))
		}
	}
	for k, why := range docGaps {
		if !usedGaps[k] {
			t.Errorf("%s: the fake now matches the docs there, remove the exception (%s)", k, why)
		}
	}
}

// docExample reads a documented example: the shared fixtures, or
// testdata/docs (see its SOURCES.md) for "docs/…".
func docExample(t *testing.T, name string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(name, "docs/"); ok {
		return os.ReadFile(filepath.Join("testdata", "docs", rest))
	}
	return testfixtures.Read(t, "gitlab-api", name), nil
}

// TestContractShapeDiffFails proves the GitLab check can fail.
func TestContractShapeDiffFails(t *testing.T) {
	doc := map[string]any{"iid": 1.0, "author": map[string]any{"id": 1.0, "username": "x"}, "labels": []any{"a"}, "merged_at": nil}
	for name, c := range map[string]struct {
		got  any
		want string
	}{
		"missing key":       {map[string]any{"author": map[string]any{"id": 1.0, "username": "x"}, "labels": []any{}}, "/iid: missing"},
		"nested missing":    {map[string]any{"iid": 1.0, "author": map[string]any{"id": 1.0}, "labels": []any{}}, "/author/username: missing"},
		"wrong type":        {map[string]any{"iid": "1", "author": map[string]any{"id": 1.0, "username": "x"}, "labels": []any{}}, "/iid: string, the docs show number"},
		"null not allowed":  {map[string]any{"iid": 1.0, "author": nil, "labels": []any{}}, "/author: null, the docs show object"},
		"array item type":   {map[string]any{"iid": 1.0, "author": map[string]any{"id": 1.0, "username": "x"}, "labels": []any{2.0}}, "/labels/[]: number, the docs show string"},
		"matches":           {map[string]any{"iid": 2.0, "author": map[string]any{"id": 3.0, "username": "y", "extra": true}, "labels": []any{"b"}, "merged_at": "2026-01-01T00:00:00Z"}, ""},
		"null in docs, any": {map[string]any{"iid": 2.0, "author": map[string]any{"id": 3.0, "username": "y"}, "labels": []any{"c"}, "merged_at": 5.0}, ""},
	} {
		d := strings.Join(shapeDiff(doc, c.got, "", nil, "", nil), "\n")
		if (c.want == "") != (d == "") || !strings.Contains(d, c.want) {
			t.Errorf("%s: diff %q, want %q", name, d, c.want)
		}
	}
}
