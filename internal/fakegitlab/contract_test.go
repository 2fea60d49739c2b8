package fakegitlab_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
	"github.com/foureyes-dev/foureyes/internal/testfixtures"
)

// GitLab publishes no machine-readable schema for these endpoints, only
// the response examples in its API docs (testdata/fixtures/gitlab-api, see
// SOURCES.md). The contract is therefore weaker than GitHub's but still
// mechanical: every key of the documented example must be in the fake's
// answer, recursively, with the same JSON type. A null in the example says
// nothing about the type; a null in the fake where the example has a value
// is accepted only where listed in nullableInFake, with why.

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

// shapeDiff lists where got lacks a key of doc or has another type.
// nullable holds "<prefix> <path>" (array indexes as "[]") where got may
// be null; the keys it used are recorded in used (may be nil).
func shapeDiff(doc, got any, at string, nullable map[string]string, prefix string, used map[string]bool) []string {
	if doc == nil {
		return nil
	}
	if got == nil {
		if _, ok := nullable[prefix+" "+at]; ok {
			if used != nil {
				used[prefix+" "+at] = true
			}
			return nil
		}
		return []string{fmt.Sprintf("%s: null, the docs show %s", at, jsonType(doc))}
	}
	if jsonType(doc) != jsonType(got) {
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
			if !ok {
				out = append(out, fmt.Sprintf("%s/%s: missing", at, k))
				continue
			}
			out = append(out, shapeDiff(d[k], gv, at+"/"+k, nullable, prefix, used)...)
		}
	case []any:
		if len(d) == 0 {
			return nil
		}
		g := got.([]any)
		if len(g) == 0 {
			return []string{fmt.Sprintf("%s: empty, the docs show items (give the state some)", at)}
		}
		for _, gv := range g {
			out = append(out, shapeDiff(d[0], gv, at+"/[]", nullable, prefix, used)...)
		}
	}
	return out
}

// nullableInFake: "<doc file> <path>" where the docs' example has a value
// and the fake's answer may be null, because the state differs from the
// example's, not because the fake leaves a field out.
var nullableInFake = map[string]string{
	"merge_requests.get.json /approvals_before_merge": "the doc example has the key twice (null, then an object by mistake); " +
		"GitLab sends null or an integer and go-gitlab decodes an integer",
	"merge_requests.get.json /pipeline":                "the fake models no pipelines; GitLab sends null for an MR without one",
	"merge_requests.get.json /head_pipeline":           "the fake models no pipelines; GitLab sends null for an MR without one",
	"merge_requests.get.json /merge_after":             "null unless a merge is scheduled",
	"merge_requests.get.json /latest_build_started_at": "no pipeline, no build",
	"commits.statuses.post.json /coverage":             "null when the status reports no coverage (foureyes sends none)",
	"commits.statuses.post.json /finished_at":          "the status posted is pending: not finished",
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

	usedNullable := map[string]bool{}
	for _, c := range []struct {
		method, path, body string
		status             int
		doc                string
	}{
		{"GET", "/projects/5/merge_requests/1", "", 200, "merge_requests.get.json"},
		{"GET", "/projects/5/merge_requests/1/diffs", "", 200, "merge_requests.diffs.json"},
		{"GET", "/projects/5/merge_requests/1/commits", "", 200, "merge_requests.commits.json"},
		{"GET", "/projects/5/merge_requests/1/approvals", "", 200, "merge_requests.approvals.json"},
		{"GET", "/projects/5/repository/commits/" + c2.ID + "/merge_requests", "", 200, "repository.commits.merge_requests.json"},
		{"POST", "/projects/5/statuses/" + c2.ID, `{"state":"pending","name":"foureyes","ref":"deploy","description":"waiting","target_url":"https://foureyes.example/d/1"}`, 201, "commits.statuses.post.json"},
	} {
		resp, body := do(t, s, "bot", c.method, c.path, c.body)
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: %d %s", c.method, c.path, resp.StatusCode, body)
			continue
		}
		var doc, got any
		if err := json.Unmarshal(testfixtures.Read(t, "gitlab-api", c.doc), &doc); err != nil {
			t.Fatalf("%s: %v", c.doc, err)
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Errorf("%s %s: not JSON: %v", c.method, c.path, err)
			continue
		}
		if d := shapeDiff(doc, got, "", nullableInFake, c.doc, usedNullable); len(d) > 0 {
			t.Errorf("%s %s differs from GitLab's documented example %s:\n%s", c.method, c.path, c.doc, strings.Join(d, "\n"))
		}
	}
	for k, why := range nullableInFake {
		if !usedNullable[k] {
			t.Errorf("%s is no longer null in the fake: remove its exception (%s)", k, why)
		}
	}
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
