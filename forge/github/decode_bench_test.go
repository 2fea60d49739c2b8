package github_test

import (
	"testing"

	"github.com/foureyes-dev/foureyes/forge/github"
	"github.com/foureyes-dev/foureyes/internal/testfixtures"
)

// BenchmarkDecodePullRequest measures intake's normalization of GitHub's
// documented pull_request.opened example (about 20 KB), which every
// accepted delivery pays before it is stored.
func BenchmarkDecodePullRequest(b *testing.B) {
	body := testfixtures.Read(b, "github", "pull_request.opened.json")
	_, pemBytes := testKey()
	f, err := github.New(github.Config{AppID: appID, PrivateKey: pemBytes})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Decode("pull_request", body); err != nil {
			b.Fatal(err)
		}
	}
}
