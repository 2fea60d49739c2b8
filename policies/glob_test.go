package policies

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/bmatcuk/doublestar/v4"
)

// The fast paths in Glob.Match promise doublestar's semantics; this checks
// that promise on every shape against paths chosen to hit the edges: hidden
// files, names equal to the suffix, empty segments, leading and trailing
// slashes.
func TestGlobMatchesDoublestar(t *testing.T) {
	patterns := []string{
		// globAll
		"**",
		// globLiteral
		"a", "a/b", ".gitlab-ci.yml", "a/b.go", ".a", "a/", "/a", "a//b",
		// globDirTree
		"a/**", "a/b/**", ".github/workflows/**", "/**", "a//**", ".a/**", "a/**/**",
		// globAnyExt
		"**/*.go", "**/*.a", "**/*", "**/*a", "**/*.", "**/*.a.b", "**/*/",
		// globAnyName
		"**/a", "**/Dockerfile", "**/.a", "**/a.go", "**/",
		// globRootExt
		"*.go", "*.a", "*", "*a", "*.",
		// generic, for contrast
		"a/*", "**/a/**", "a/**/b", "*/a", "a?", "[ab]/**", "{a,b}/**", "**/*.{a,b}", "**/.*",
	}
	seen := map[string]bool{}
	var paths []string
	addPath := func(s string) {
		if !seen[s] {
			seen[s] = true
			paths = append(paths, s)
		}
	}
	for _, s := range []string{
		"", "a", "b", ".a", "a.go", "x/a.go", "x/y/a.go", ".go", "x/.go", "a/", "/a", "a/b",
		"a/b/c", "a//b", "b/a", "Dockerfile", "x/Dockerfile", "x/Dockerfile/y", "x/Dockerfile.dev",
		".github/workflows/ci.yml", ".github/workflows", ".github", ".gitlab-ci.yml", "x/.gitlab-ci.yml",
		"a.", "x/a.", "a.a.b", "x/.a", ".a/b", "/", "//", "a/b/", "x/a",
	} {
		addPath(s)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", ".", "/", "go", ".go", "x", "Dockerfile", ".a"}
	for len(paths) < 3000 {
		var b strings.Builder
		for n := rng.IntN(6); n >= 0; n-- {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		addPath(b.String())
	}

	// Random patterns of each fast-path shape, built from the same pieces
	// as the paths so that they match some of them.
	lit := func(slash bool) string {
		var b strings.Builder
		for n := rng.IntN(3); n >= 0; n-- {
			piece := alphabet[rng.IntN(len(alphabet))]
			if !slash && piece == "/" {
				continue
			}
			b.WriteString(piece)
		}
		return b.String()
	}
	for range 60 {
		patterns = append(patterns,
			lit(true),
			lit(true)+"/**",
			"**/*"+lit(false),
			"**/"+lit(false),
			"*"+lit(false),
		)
	}

	kinds := map[globKind]int{}
	for _, pat := range patterns {
		g, err := CompileGlob(pat)
		if err != nil {
			t.Fatalf("CompileGlob(%q): %v", pat, err)
		}
		kinds[g.kind]++
		for _, path := range paths {
			want, err := doublestar.Match(pat, path)
			if err != nil {
				t.Fatalf("doublestar.Match(%q, %q): %v", pat, path, err)
			}
			if got := g.Match(path); got != want {
				t.Errorf("Glob(%q).Match(%q) = %v, doublestar says %v (kind %d)", pat, path, got, want, g.kind)
			}
		}
	}
	for k := globGeneric; k <= globRootExt; k++ {
		if kinds[k] == 0 {
			t.Errorf("no pattern exercised glob kind %d", k)
		}
	}
}

func TestCompileGlobKinds(t *testing.T) {
	for pat, want := range map[string]globKind{
		"**":                   globAll,
		"deploy/x.yml":         globLiteral,
		"deploy/**":            globDirTree,
		".github/workflows/**": globDirTree,
		"**/*.tf":              globAnyExt,
		"**/Dockerfile":        globAnyName,
		"*.md":                 globRootExt,
		"**/migrations/**":     globGeneric,
		"docs/*.md":            globGeneric,
	} {
		g, err := CompileGlob(pat)
		if err != nil {
			t.Fatalf("CompileGlob(%q): %v", pat, err)
		}
		if g.kind != want {
			t.Errorf("CompileGlob(%q).kind = %d, want %d", pat, g.kind, want)
		}
	}
	for _, bad := range []string{"", "[", "a/[b", "{a,b"} {
		if _, err := CompileGlob(bad); err == nil {
			t.Errorf("CompileGlob(%q) succeeded, want error", bad)
		}
	}
}
