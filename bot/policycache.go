package bot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The policy of a base branch is reused while no push to that branch has
// been recorded since it was read (issue 16, "GitLab at its floor"): GitLab
// answers no conditional request (gitlab-org/gitlab#14357), so without this
// every evaluation re-reads .gitlab/foureyes.yml.
//
// What makes it safe:
//   - every push delivery to a branch (and every push the reconciler finds
//     that the forge never delivered) records a fresh token for that branch
//     in the shared store before anything else handles it: RecordBranchPush.
//     A cached read is reused only while the token it was read under is the
//     stored one, so the first evaluation after a recorded push — on any
//     replica — reads the branch again. The token is random, not the pushed
//     SHA: a late or redelivered push back to an older tip must not revive
//     the policy read under that tip.
//   - the token is read before the forge is asked, and the read is stored
//     under that token: a push recorded while the forge is being read makes
//     the stored entry stale at once.
//   - a branch with no recorded push (foureyes never saw one) is always read.
//   - only a forge whose answer for a branch depends on that branch alone,
//     and costs rate-limit budget, has its reads reused (BranchPolicyReuse:
//     GitLab). GitHub falls back to the organisation's .github repository,
//     which changes without a push to this branch, and answers conditional
//     requests with a 304 that is free: reusing its reads would widen the
//     window of a lost push delivery for nothing, so it is asked every time.
//   - a file is reused only if it was found on that very branch of the
//     repository (its Source says so); no file at all is reused too, since
//     adding one is a push to the branch.
//   - PolicyCacheTTL bounds the reuse: a push whose delivery is lost (GitLab
//     sends no push hook for a push of more than three branches at once,
//     push_event_hooks_limit) is seen after at most that long.

// DefaultPolicyCacheTTL is how long a branch's policy is reused while no
// push to the branch is recorded: the bound on how long a policy pushed
// without a delivery foureyes received can go unseen.
const DefaultPolicyCacheTTL = 5 * time.Minute

// maxCachedPolicy: a larger policy file is read every time rather than kept
// in the store.
const maxCachedPolicy = 64 << 10

// Keys in a branch's policy scope.
const (
	branchTipKey    = "tip"
	branchPolicyKey = "policy"
)

// branchPolicyScope is where a branch's push token and cached policy live.
// ":" separates the project from the branch: neither a git ref name
// (git-check-ref-format) nor a project path can hold one, so project
// "a/b/refs/heads/x" cannot share the scope of a branch "x/..." of "a/b".
func branchPolicyScope(forge ForgeName, repo Repo, branch string) string {
	return "branchpolicy/" + string(forge) + "/" + strings.ToLower(repo.FullName) + ":" + BranchRef(branch)
}

// cachedPolicy is a policy read stored under the branch token it was read
// after.
type cachedPolicy struct {
	Tip    string    `json:"tip"`
	RepoID int64     `json:"repo_id,omitempty"`
	ReadAt time.Time `json:"read_at"`
	Found  bool      `json:"found"`
	Source string    `json:"source"`
	Data   []byte    `json:"data"`
}

// PolicyTipStore is the part of Store the policy cache needs.
type PolicyTipStore interface {
	PutFact(ctx context.Context, scope, key, value string) error
	Facts(ctx context.Context, scope string) (map[string]string, error)
}

// RecordBranchPush records that a push to a branch happened: every policy
// read of that branch made before is no longer reused. Tag pushes and
// events without a branch are ignored.
func RecordBranchPush(ctx context.Context, st PolicyTipStore, ev Event) error {
	p := ev.Push
	if p == nil || ev.Repo.FullName == "" || !strings.HasPrefix(p.Ref, "refs/heads/") {
		return nil
	}
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return fmt.Errorf("record push to %s: %w", p.Ref, err)
	}
	token := hex.EncodeToString(nonce[:]) + "|" + p.After
	if err := st.PutFact(ctx, branchPolicyScope(ev.Forge, ev.Repo, p.Ref), branchTipKey, token); err != nil {
		return fmt.Errorf("record push to %s of %s: %w", p.Ref, ev.Repo.FullName, err)
	}
	return nil
}

// BranchPolicyReuse is an optional Forge capability (checked by type
// assertion): the adapter's Policy answer for a branch depends on that
// branch's content alone and costs rate-limit budget, so BranchPolicy may
// reuse it until a push to the branch is recorded.
type BranchPolicyReuse interface {
	ReusesBranchPolicy()
}

// BranchPolicy returns the policy file of branch: the stored read when no
// push to the branch was recorded since and it is younger than ttl, else
// the forge's answer (stored for the next time when it may be reused). A
// ttl ≤ 0, or a forge without BranchPolicyReuse, always asks the forge.
func BranchPolicy(ctx context.Context, st PolicyTipStore, f Forge, forge ForgeName, repo Repo, branch string, ttl time.Duration, now time.Time) (PolicyFile, error) {
	if _, ok := f.(BranchPolicyReuse); !ok || ttl <= 0 || branch == "" || st == nil {
		return f.Policy(ctx, repo, branch)
	}
	scope := branchPolicyScope(forge, repo, branch)
	facts, err := st.Facts(ctx, scope)
	if err != nil {
		return PolicyFile{}, fmt.Errorf("read the recorded pushes of %s: %w", branch, err)
	}
	tip := facts[branchTipKey]
	if tip != "" {
		var c cachedPolicy
		if raw := facts[branchPolicyKey]; raw != "" && json.Unmarshal([]byte(raw), &c) == nil &&
			c.Tip == tip && (c.RepoID == 0 || repo.ID == 0 || c.RepoID == repo.ID) &&
			!now.Before(c.ReadAt) && now.Sub(c.ReadAt) < ttl {
			return PolicyFile{Source: c.Source, Data: c.Data, Found: c.Found}, nil
		}
	}
	pf, err := f.Policy(ctx, repo, branch)
	if err != nil || tip == "" || !reusable(pf, repo, branch) {
		return pf, err
	}
	raw, err := json.Marshal(cachedPolicy{Tip: tip, RepoID: repo.ID, ReadAt: now, Found: pf.Found, Source: pf.Source, Data: pf.Data})
	if err != nil {
		return pf, nil
	}
	if err := st.PutFact(ctx, scope, branchPolicyKey, string(raw)); err != nil {
		return PolicyFile{}, fmt.Errorf("store the policy of %s: %w", branch, err)
	}
	return pf, nil
}

// reusable: a file found in the repository on that very branch, or none,
// changes with a push to the branch alone.
func reusable(pf PolicyFile, repo Repo, branch string) bool {
	if pf.Note != "" {
		return false
	}
	return !pf.Found || (len(pf.Data) <= maxCachedPolicy && strings.HasPrefix(pf.Source, repo.FullName+"@"+branch+":"))
}
