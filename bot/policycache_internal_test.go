package bot

import "testing"

// TestBranchPolicyScopesDoNotCollide: a nested project whose path spells
// another project's branch must not share that branch's push token and
// cached policy.
func TestBranchPolicyScopesDoNotCollide(t *testing.T) {
	a := branchPolicyScope(GitLab, Repo{FullName: "acme/app"}, "x/refs/heads/y")
	b := branchPolicyScope(GitLab, Repo{FullName: "acme/app/refs/heads/x"}, "y")
	if a == b {
		t.Fatalf("scopes collide: %s", a)
	}
	if branchPolicyScope(GitLab, Repo{FullName: "Acme/App"}, "main") != branchPolicyScope(GitLab, Repo{FullName: "acme/app"}, "refs/heads/main") {
		t.Fatal("the same branch has two scopes")
	}
}
