package github_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/foureyes-dev/foureyes/internal/testfixtures"
)

// fixtureFiles lists GitHub's own webhook payload examples (octokit/webhooks)
// kept in testdata/fixtures/github; see testdata/fixtures/SOURCES.md.
func fixtureFiles(t *testing.T) []string {
	t.Helper()
	return testfixtures.Glob(t, "github", "*.json")
}

// fixture loads a payload as a generic map so tests can derive variants
// (approved reviews, foureyes check runs, policy pushes) from GitHub's real
// shapes instead of writing payloads by hand.
func fixture(t *testing.T, name string) map[string]any {
	t.Helper()
	b := testfixtures.Read(t, "github", name)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return m
}

// set assigns v at a dotted path ("pull_request.head.sha"); a numeric
// segment indexes a list.
func set(t *testing.T, m map[string]any, path string, v any) {
	t.Helper()
	parts := strings.Split(path, ".")
	var cur any = m
	for i, p := range parts {
		last := i == len(parts)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				c[p] = v
				return
			}
			if _, ok := c[p]; !ok || c[p] == nil {
				c[p] = map[string]any{}
			}
			cur = c[p]
		case []any:
			var idx int
			if err := json.Unmarshal([]byte(p), &idx); err != nil || idx >= len(c) {
				t.Fatalf("set %s: bad index %q", path, p)
			}
			if last {
				c[idx] = v
				return
			}
			cur = c[idx]
		default:
			t.Fatalf("set %s: %q is not an object", path, p)
		}
	}
}

func encode(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// prPayload turns a pull_request* fixture into one about repo's PR 1 at
// head on base.
func prPayload(t *testing.T, name, head, base string, commits, files int) map[string]any {
	m := fixture(t, name)
	set(t, m, "repository.full_name", repo.FullName)
	set(t, m, "repository.id", repo.ID)
	set(t, m, "installation", map[string]any{"id": repo.Installation})
	set(t, m, "pull_request.number", 1)
	set(t, m, "pull_request.user.login", "alice")
	set(t, m, "pull_request.title", "Fix the thing")
	set(t, m, "pull_request.head.sha", head)
	set(t, m, "pull_request.head.ref", "fix")
	set(t, m, "pull_request.head.repo.full_name", repo.FullName)
	set(t, m, "pull_request.base.sha", base)
	set(t, m, "pull_request.base.ref", "main")
	if commits >= 0 {
		set(t, m, "pull_request.commits", commits)
		set(t, m, "pull_request.changed_files", files)
	}
	return m
}
