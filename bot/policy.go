package bot

import (
	"crypto/sha256"
	"slices"
	"strings"
	"sync"

	"github.com/foureyes-dev/foureyes/policies"
)

// The policy in force on a change is the one on its base branch as the
// branch is now (SPEC §5, issue 10): never the head's, and never the base
// SHA a payload names (GitHub fixes pull_request.base.sha when the pull
// request is opened or last synchronized, so it goes stale as the base
// branch moves). The service asks the forge for the policy on the base
// branch by name; the adapter reads it at the branch's current tip, with
// conditional requests so that an unchanged file costs nothing. A read is
// reused until a push to the branch is recorded (policycache.go).
//
// Where to look, and in which order, is decided here once for every forge.

var (
	githubPolicyPaths = []string{".github/foureyes.yml", ".foureyes.yml", ".gitlab/foureyes.yml"}
	gitlabPolicyPaths = []string{".gitlab/foureyes.yml", ".foureyes.yml", ".github/foureyes.yml"}
)

// PolicyPaths returns the repository policy file locations in the forge's
// lookup order: on GitHub .github/foureyes.yml, .foureyes.yml,
// .gitlab/foureyes.yml; on GitLab .gitlab/ first and .github/ last. (When
// the repository has none, GitHub looks in the org's .github repository;
// then the server default and the built-in default apply: ResolvePolicy.)
func PolicyPaths(forge ForgeName) []string {
	if forge == GitLab {
		return slices.Clone(gitlabPolicyPaths)
	}
	return slices.Clone(githubPolicyPaths)
}

// IsPolicyPath reports whether a repository path is a policy file location
// of any forge (a repository may carry either spelling).
func IsPolicyPath(path string) bool {
	return slices.Contains(githubPolicyPaths, strings.TrimPrefix(path, "/"))
}

// TouchesPolicy reports whether any of paths is a policy file location.
func TouchesPolicy(paths []string) bool { return slices.ContainsFunc(paths, IsPolicyPath) }

// ResolvePolicy is the end of the lookup: the file the forge found, else
// the server-wide default (FOUREYES_DEFAULT_POLICY_FILE), else the built-in
// default. An invalid file is an error, never a reason to fall back.
func ResolvePolicy(pf PolicyFile, serverDefault *PolicyFile) (*policies.Policy, error) {
	switch {
	case pf.Found:
		return policies.Parse(pf.Source, pf.Data)
	case serverDefault != nil:
		return policies.Parse(serverDefault.Source, serverDefault.Data)
	default:
		return policies.Default(), nil
	}
}

// BranchRef is the full name of a branch, refs/heads/NAME: forges that
// resolve a bare name may prefer a tag of the same name (git looks up
// refs/tags/NAME before refs/heads/NAME, gitrevisions(7)), and a tag named
// like the base branch must not supply its policy.
func BranchRef(branch string) string {
	if strings.HasPrefix(branch, "refs/") {
		return branch
	}
	return "refs/heads/" + branch
}

// parsedPolicies keeps the policies parsed from the files evaluations read,
// so that every evaluation of a base branch whose file did not change
// shares one parse: parsing the built-in default's YAML again was a tenth
// of an evaluation's CPU (BenchmarkResolvePolicy: 140 µs, against 50 ns
// from the cache). Keys are the source and the file's SHA-256, so an
// edited file is parsed afresh. A parsed Policy is never modified after
// Parse (Decide, the release guard and the pages only read it), which is
// what makes sharing it safe. The zero value is ready to use.
type parsedPolicies struct {
	mu sync.Mutex
	m  map[parsedKey]*policies.Policy
}

type parsedKey struct {
	source string
	sum    [sha256.Size]byte
}

// maxParsedPolicies bounds the cache: one entry per distinct policy file
// in use (most installations share a handful). When full it starts over.
const maxParsedPolicies = 512

// resolve is ResolvePolicy through the cache. Invalid files are not kept:
// their error is rebuilt each time, as the check shows it until fixed.
func (c *parsedPolicies) resolve(pf PolicyFile, serverDefault *PolicyFile) (*policies.Policy, error) {
	var key parsedKey
	switch {
	case pf.Found:
		key = parsedKey{source: pf.Source, sum: sha256.Sum256(pf.Data)}
	case serverDefault != nil:
		key = parsedKey{source: serverDefault.Source, sum: sha256.Sum256(serverDefault.Data)}
	default:
		key = parsedKey{source: policies.DefaultSource}
	}
	c.mu.Lock()
	p, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := ResolvePolicy(pf, serverDefault)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxParsedPolicies {
		c.m = make(map[parsedKey]*policies.Policy)
	}
	c.m[key] = p
	return p, nil
}
