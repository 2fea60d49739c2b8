package policies

import (
	"errors"
	"testing"
)

// FuzzParse holds Parse to its contract on arbitrary input: no panic, and
// either a usable policy or a *ParseError whose every diagnostic points at
// a real position in the named file.
func FuzzParse(f *testing.F) {
	f.Add([]byte(defaultYAML))
	f.Fuzz(func(t *testing.T, data []byte) {
		pol, err := Parse("fuzz.yml", data)
		if err != nil {
			if pol != nil {
				t.Fatal("policy returned along with an error")
			}
			var pe *ParseError
			if !errors.As(err, &pe) || len(pe.Diagnostics) == 0 {
				t.Fatalf("error %T %v is not a non-empty *ParseError", err, err)
			}
			for _, d := range pe.Diagnostics {
				if d.File != "fuzz.yml" || d.Line < 1 || d.Column < 1 || d.Message == "" {
					t.Fatalf("bad diagnostic %+v", d)
				}
			}
			return
		}
		if pol.Version != 1 || len(pol.Digest) != 64 {
			t.Fatalf("Version %d Digest %q", pol.Version, pol.Digest)
		}
		if pol.Review.MinPermission < PermissionRead {
			t.Fatalf("MinPermission %v", pol.Review.MinPermission)
		}
		if pol.BreakGlass != nil && (pol.BreakGlass.Required < 2 || pol.BreakGlass.Approvers.Empty()) {
			t.Fatalf("break glass %+v", pol.BreakGlass)
		}
		var buf []int
		for _, path := range []string{"", "README.md", "deploy/k8s/app.yaml", ".github/workflows/ci.yml", "a/b/c/d.sql", "x"} {
			cats, _ := pol.Classify(path, buf[:0])
			for _, i := range cats {
				c := pol.Categories[i]
				if c.Name == "" || c.Approvals < 0 || len(c.Paths) == 0 {
					t.Fatalf("category %+v", c)
				}
			}
		}
		pol.IsReleaseBranch("main", "main")
		pol.IsReleaseBranch("release/1", "main")
		pol.IsReleaseTag("v1.0.0")
	})
}
