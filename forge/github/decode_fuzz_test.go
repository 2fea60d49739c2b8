package github_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/forge/github"
	"github.com/foureyes-dev/foureyes/internal/testfixtures"
)

// FuzzDecode feeds webhook bodies (seeded with GitHub's real examples) to
// Decode, which reads untrusted input once the signature is checked: it
// must never panic, and every event it returns must be one the queue can
// store and the service can route.
func FuzzDecode(f *testing.F) {
	for _, path := range testfixtures.Glob(f, "github", "*.json") {
		event, _, _ := strings.Cut(filepath.Base(path), ".")
		f.Add(event, testfixtures.Read(f, "github", filepath.Base(path)))
	}
	_, pemBytes := testKey()
	forge, err := github.New(github.Config{AppID: appID, PrivateKey: pemBytes})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		evs, err := forge.Decode(event, body)
		if err != nil {
			if len(evs) != 0 {
				t.Fatalf("events with an error: %v", err)
			}
			return
		}
		for _, ev := range evs {
			if ev.Forge != bot.GitHub || ev.Kind == "" || ev.Repo.FullName == "" {
				t.Fatalf("incomplete event %+v", ev)
			}
			if ev.Kind == bot.EventInstallation && ev.Repo.Installation == 0 {
				t.Fatalf("installation event without installation: %+v", ev)
			}
			if ev.Kind == bot.EventChange && ev.Change == nil {
				t.Fatalf("change event without change: %+v", ev)
			}
			if _, err := json.Marshal(ev); err != nil {
				t.Fatalf("event does not marshal: %v", err)
			}
		}
	})
}
