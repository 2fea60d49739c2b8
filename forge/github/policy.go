package github

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"github.com/foureyes-dev/foureyes/bot"
)

// PolicyPaths are the repository policy file locations in GitHub's lookup
// order (SPEC section 5), as the domain decides them (bot.PolicyPaths).
var PolicyPaths = bot.PolicyPaths(bot.GitHub)

// OrgPolicyRepo and OrgPolicyPath locate the org-level policy: the
// foureyes.yml of the org's .github repository, on its default branch.
const (
	OrgPolicyRepo = ".github"
	OrgPolicyPath = "foureyes.yml"
)

var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

type policyKey struct{ repo, sha, path string }

type policyEntry struct {
	data  []byte
	found bool
	// unreadable: the org's .github repository answered 404 itself, so
	// the installation cannot read it (or it does not exist).
	unreadable bool
}

// Policy returns the policy file on ref: the change's base branch (or,
// for the release guard, a SHA), never its head: a change must not be able
// to weaken the rules it is judged by. A branch is read at its current tip
// (issue 10): first the first location by branch name, a conditional
// request that costs nothing (304) while the file is unchanged; when that
// location is missing, the tip is resolved (conditional as well) and the
// lookup runs at the tip's SHA, whose answers are immutable and cached,
// missing files included. So a push that adds or changes a policy file is
// seen by the next evaluation, with or without its delivery. Then the
// org's .github repository (default branch, cached for PermissionTTL). A
// 404 moves on to the next location; any other error is returned (fail
// closed).
func (f *Forge) Policy(ctx context.Context, repo bot.Repo, ref string) (bot.PolicyFile, error) {
	c, err := f.client(repo.Installation)
	if err != nil {
		return bot.PolicyFile{}, err
	}
	owner, name := repo.Owner(), repo.Name()
	at := ref
	if at == "" {
		at = repo.DefaultBranch
	}
	lookupRef := ref
	if at != "" && !fullSHA.MatchString(at) {
		bk := strings.ToLower(repo.FullName) + "|" + at
		if _, firstMissing := f.branchPolicies.get(bk); !firstMissing {
			e, err := f.fetchPolicy(ctx, c, owner, name, at, PolicyPaths[0])
			if err != nil {
				return bot.PolicyFile{}, fmt.Errorf("github: reading policy %s@%s:%s: %w", repo.FullName, at, PolicyPaths[0], err)
			}
			if e.found {
				return bot.PolicyFile{Source: fmt.Sprintf("%s@%s:%s", repo.FullName, at, PolicyPaths[0]), Data: e.data, Found: true}, nil
			}
			f.branchPolicies.put(bk, true)
		}
		// "heads/NAME" names the branch even where a tag has its name
		// ("Get a commit": the ref may be a SHA, heads/BRANCH or tags/TAG).
		tip, _, err := c.Repositories.GetCommitSHA1(ctx, owner, name, "heads/"+at, "")
		if err != nil {
			return bot.PolicyFile{}, fmt.Errorf("github: resolving the tip of %s in %s: %w", at, repo.FullName, err)
		}
		if !fullSHA.MatchString(tip) {
			return bot.PolicyFile{}, fmt.Errorf("github: the tip of %s in %s is %q, not a commit SHA", at, repo.FullName, tip)
		}
		lookupRef = tip
	}
	for _, p := range PolicyPaths {
		e, err := f.policyAt(ctx, c, owner, name, lookupRef, p)
		if err != nil {
			return bot.PolicyFile{}, fmt.Errorf("github: reading policy %s@%s:%s: %w", repo.FullName, at, p, err)
		}
		if e.found {
			return bot.PolicyFile{Source: fmt.Sprintf("%s@%s:%s", repo.FullName, at, p), Data: e.data, Found: true}, nil
		}
	}
	key := fmt.Sprintf("%d|%s", repo.Installation, strings.ToLower(owner))
	e, ok := getFresh(f.orgPolicies, key, f.now())
	if !ok {
		e, err = f.fetchPolicy(ctx, c, owner, OrgPolicyRepo, "", OrgPolicyPath)
		if err != nil {
			return bot.PolicyFile{}, fmt.Errorf("github: reading org policy %s/%s:%s: %w", owner, OrgPolicyRepo, OrgPolicyPath, err)
		}
		if !e.found {
			if e.unreadable, err = f.orgRepoHidden(ctx, c, owner); err != nil {
				return bot.PolicyFile{}, err
			}
		}
		f.orgPolicies.put(key, expiring[policyEntry]{val: e, exp: f.now().Add(f.ttl)})
	}
	if !e.found {
		return bot.PolicyFile{Note: orgPolicyNote(repo, at, e.unreadable)}, nil
	}
	return bot.PolicyFile{Source: fmt.Sprintf("%s/%s@default:%s", owner, OrgPolicyRepo, OrgPolicyPath), Data: e.data, Found: true}, nil
}

// policyAt reads one location, through the SHA cache when ref is a SHA.
func (f *Forge) policyAt(ctx context.Context, c *gh.Client, owner, name, ref, path string) (policyEntry, error) {
	if !fullSHA.MatchString(ref) {
		return f.fetchPolicy(ctx, c, owner, name, ref, path)
	}
	key := policyKey{strings.ToLower(owner + "/" + name), ref, path}
	if e, ok := f.policies.get(key); ok {
		return e, nil
	}
	e, err := f.fetchPolicy(ctx, c, owner, name, ref, path)
	if err != nil {
		return e, err
	}
	f.policies.put(key, e)
	return e, nil
}

func (f *Forge) fetchPolicy(ctx context.Context, c *gh.Client, owner, name, ref, path string) (policyEntry, error) {
	var opts *gh.RepositoryContentGetOptions
	if ref != "" {
		opts = &gh.RepositoryContentGetOptions{Ref: ref}
	}
	file, dir, _, err := c.Repositories.GetContents(ctx, owner, name, path, opts)
	switch {
	case isNotFound(err):
		return policyEntry{}, nil
	case err != nil:
		return policyEntry{}, err
	case dir != nil || file == nil || file.GetType() != "file":
		// A directory or submodule at a policy path is not a policy; say so
		// in the log and look further, as for a missing file.
		f.log.WarnContext(ctx, "policy path is not a file", "repo", owner+"/"+name, "path", path, "ref", ref)
		return policyEntry{}, nil
	case file.GetEncoding() == "none":
		return policyEntry{}, errors.New("the file is too large for the contents API (over 1 MB)")
	}
	s, err := file.GetContent()
	if err != nil {
		return policyEntry{}, fmt.Errorf("decoding content: %w", err)
	}
	return policyEntry{data: []byte(s), found: true}, nil
}
