// Package testfixtures locates the genuine webhook and REST examples kept in
// the repository's testdata/fixtures (see testdata/fixtures/SOURCES.md for
// where each came from and under which licence). Tests in every package find
// them through here rather than through a relative path of their own, so no
// test depends on its working directory or on anything outside the clone.
package testfixtures

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir is the absolute path of testdata/fixtures. It is derived from this
// source file's own location, which the Go toolchain records at build time;
// that holds for `go test` in any package of the module.
func Dir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("testfixtures: cannot locate the source file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "fixtures")
}

// Path joins parts below Dir: Path("github", "push.json").
func Path(parts ...string) string {
	return filepath.Join(append([]string{Dir()}, parts...)...)
}

// Read returns a fixture's bytes and fails the test when it is missing: a
// missing fixture is a broken checkout, never a reason to skip.
func Read(t testing.TB, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(Path(parts...))
	if err != nil {
		t.Fatalf("fixture %s: %v", filepath.Join(parts...), err)
	}
	return b
}

// Glob lists the fixtures matching pattern below Dir/sub and fails the test
// when there are none.
func Glob(t testing.TB, sub, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(Dir(), sub, pattern))
	if err != nil || len(m) == 0 {
		t.Fatalf("no fixtures %s in %s (%v)", pattern, filepath.Join(Dir(), sub), err)
	}
	return m
}
