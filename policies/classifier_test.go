package policies

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func globs(ps ...string) []Glob {
	out := make([]Glob, len(ps))
	for i, p := range ps {
		out[i] = MustCompileGlob(p)
	}
	return out
}

// TestClassifierMatchesPolicy checks the indexed classifier against
// Policy.Classify on many paths and glob shapes: the index may only save
// work, never change an answer.
func TestClassifierMatchesPolicy(t *testing.T) {
	p := &Policy{
		Categories: []Category{
			{Name: "a", Paths: globs("deploy/**", "**/*.tf", "**/Dockerfile", ".github/workflows/**", "**", "x")},
			{Name: "b", Paths: globs("**/*_test.go", "*.go", "src/*/internal/**", "**/fixtures/**", "a/**/b", "**/*.tar.gz", "**/*", "**/x*")},
			{Name: "c", Paths: globs("src/{a,b}/**", "[ab]*/c.go", "**/test_?.go", "**/.*", "docs/**/*.md", "a\\*b"), Ignore: globs("**/gen/**", "**/*.pb.go")},
			{Name: "d", Paths: globs("**/src/**/*.go", "*/*", "src/**", "b/*/c/**/d.go"), Ignore: globs("src/a/**")},
		},
		Exempt: globs("**/*.md", "LICENSE", "vendor/**", "**/zz_*"),
	}
	parts := []string{"src", "a", "b", "c", "deploy", "docs", "fixtures", "gen", "internal", "x", ".github", "workflows", "vendor", "d"}
	names := []string{"main.go", "x_test.go", "c.go", "Dockerfile", "main.tf", "README.md", "LICENSE", "a.tar.gz", "f.pb.go",
		"test_1.go", ".env", "x", "b", "zz_gen.go", "d.go", "a*b", "x.tf.bak", "noext", "a.b.c"}
	rng := rand.New(rand.NewPCG(3, 4))
	paths := []string{"", "/abs/x.go", "dir/", "a//b", "x", "a*b", "deploy", "deploy/", "src/a", ".github/workflows"}
	for range 20000 {
		var sb strings.Builder
		for range rng.IntN(5) {
			sb.WriteString(parts[rng.IntN(len(parts))] + "/")
		}
		sb.WriteString(names[rng.IntN(len(names))])
		paths = append(paths, sb.String())
	}
	cl := NewClassifier(p)
	for _, path := range paths {
		want, wantEx := p.Classify(path, nil)
		got, gotEx := cl.Classify(path, nil)
		if gotEx != wantEx || !slices.Equal(got, want) {
			t.Fatalf("%q: classifier = %v,%v; Policy.Classify = %v,%v", path, got, gotEx, want, wantEx)
		}
	}
}

func TestPrefilter(t *testing.T) {
	for _, tt := range []struct {
		pat, path string
		pass      bool
	}{
		{"src/*/internal/**", "src/x/internal/y.go", true},
		{"src/*/internal/**", "lib/x/internal/y.go", false},
		{"src/*/internal/**", "src/x/y.go", false},
		{"**/test_*.go", "a/test_x.go", true},
		{"**/test_*.go", "a/test_x.py", false},
		{"a/**/b", "a/b", true},  // "**/" matched nothing
		{"a/**/b", "ab", true},   // too weak to reject, Match decides
		{"x*x", "x", false},      // prefix and suffix may not overlap
		{"[ab]/c", "zzz", true},  // no prefilter for classes
		{"{a,b}/c", "zzz", true}, // nor for alternatives
		{"**/a*b*c", "a/cba", false},
	} {
		f := newPrefilter(tt.pat)
		if got := f.pass(tt.path); got != tt.pass {
			t.Errorf("prefilter(%q).pass(%q) = %v, want %v", tt.pat, tt.path, got, tt.pass)
		}
	}
}
