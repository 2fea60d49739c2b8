package gitlab_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/forge/gitlab"
	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
	"github.com/foureyes-dev/foureyes/store"
)

// BenchmarkBranchPolicy: what a reused read costs (one store read, SQLite)
// against asking the fake GitLab over loopback HTTP.
func BenchmarkBranchPolicy(b *testing.B) {
	ctx := context.Background()
	fake := fakegitlab.New()
	b.Cleanup(fake.Close)
	fake.AddUser(fakegitlab.User{ID: idFoureyes, Username: "foureyes", Bot: true})
	fake.AddToken("tok-foureyes", idFoureyes)
	fake.AddProject(fakegitlab.Project{ID: projectID, PathWithNamespace: "acme/app", DefaultBranch: "main"})
	fake.SetFile(projectID, "main", ".gitlab/foureyes.yml", []byte(onePolicy))
	f, err := gitlab.New(gitlab.Config{BaseURL: fake.URL(), Token: "tok-foureyes"})
	if err != nil {
		b.Fatal(err)
	}
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "foureyes.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	ev := bot.Event{Forge: bot.GitLab, Kind: bot.EventBranchPush, Repo: repo,
		Push: &bot.PushEvent{Ref: "refs/heads/main", After: strings.Repeat("e", 40)}}
	if err := bot.RecordBranchPush(ctx, db, ev); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.Run("reused", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := bot.BranchPolicy(ctx, db, f, bot.GitLab, repo, "main", time.Hour, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("forge", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := f.Policy(ctx, repo, "main"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
