package bot

import (
	"errors"
	"sync"
	"testing"

	"github.com/foureyes-dev/foureyes/policies"
)

const (
	twoApprovals = "version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    approvals: 2\n"
	oneApproval  = "version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    approvals: 1\n"
)

// TestParsedPoliciesFollowTheFile: a file read again unchanged is not
// parsed again; an edited file, another source or the server default is
// its own entry; an invalid file fails every time and is never kept.
func TestParsedPoliciesFollowTheFile(t *testing.T) {
	var c parsedPolicies
	file := func(source, data string) PolicyFile {
		return PolicyFile{Found: true, Source: source, Data: []byte(data)}
	}
	resolve := func(pf PolicyFile, def *PolicyFile) *policies.Policy {
		t.Helper()
		p, err := c.resolve(pf, def)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := resolve(file(".github/foureyes.yml", twoApprovals), nil)
	if again := resolve(file(".github/foureyes.yml", twoApprovals), nil); again != a {
		t.Fatal("the same file was parsed again")
	}
	edited := resolve(file(".github/foureyes.yml", oneApproval), nil)
	if edited == a || edited.Categories[0].Approvals != 1 || a.Categories[0].Approvals != 2 {
		t.Fatalf("an edited file kept the old parse: %d, %d approvals", edited.Categories[0].Approvals, a.Categories[0].Approvals)
	}
	if other := resolve(file(".foureyes.yml", twoApprovals), nil); other == a || other.Source != ".foureyes.yml" {
		t.Fatalf("another source shares a parse: %q", other.Source)
	}
	def := resolve(PolicyFile{}, nil)
	if def.Source != policies.DefaultSource || resolve(PolicyFile{}, nil) != def {
		t.Fatalf("built-in default: %q, or parsed twice", def.Source)
	}
	server := &PolicyFile{Found: true, Source: "/etc/foureyes/default.yml", Data: []byte(oneApproval)}
	if sp := resolve(PolicyFile{}, server); sp == def || sp.Source != server.Source {
		t.Fatalf("the server default resolved to %q", sp.Source)
	}

	bad := file(".github/foureyes.yml", "version: 1\ncategories: [\n")
	for range 2 {
		_, err := c.resolve(bad, nil)
		if _, ok := errors.AsType[*policies.ParseError](err); !ok {
			t.Fatalf("invalid file: %v, want a *policies.ParseError", err)
		}
	}
	if len(c.m) != 5 {
		t.Fatalf("%d entries, want the 5 valid policies", len(c.m))
	}
}

// TestParsedPoliciesAreBounded: a stream of distinct files (each push may
// change one) never keeps more than maxParsedPolicies parses.
func TestParsedPoliciesAreBounded(t *testing.T) {
	var c parsedPolicies
	for i := range maxParsedPolicies + 10 {
		data := twoApprovals + "# " + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676)) + "\n"
		if _, err := c.resolve(PolicyFile{Found: true, Source: ".foureyes.yml", Data: []byte(data)}, nil); err != nil {
			t.Fatal(err)
		}
		if len(c.m) > maxParsedPolicies {
			t.Fatalf("%d entries after %d files", len(c.m), i+1)
		}
	}
}

// TestParsedPolicySharedByConcurrentDecisions: evaluations on several
// workers decide with one shared Policy; under -race this fails if
// deciding writes to it.
func TestParsedPolicySharedByConcurrentDecisions(t *testing.T) {
	var c parsedPolicies
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			p, err := c.resolve(PolicyFile{}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			for range 20 {
				v := Decide(Input{Policy: p, Change: &Change{Author: User{Login: "alice"}, Files: []File{{Path: "main.go"}, {Path: "db/schema.sql"}, {Path: "deploy/k8s.yml"}}}})
				if v.State == Success {
					t.Error("success without approvals")
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkResolvePolicy: what each evaluation pays for its policy, parsed
// from the built-in default's YAML or taken from the cache.
func BenchmarkResolvePolicy(b *testing.B) {
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			if _, err := ResolvePolicy(PolicyFile{}, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		var c parsedPolicies
		for b.Loop() {
			if _, err := c.resolve(PolicyFile{}, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
