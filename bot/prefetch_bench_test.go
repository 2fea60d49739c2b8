package bot_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/store/storetest"
)

// onlyFacts hides the store's FactsIn: every scope is one query, as before
// CompleteFacts read them at once.
type onlyFacts struct{ st bot.FactReader }

func (o onlyFacts) Facts(ctx context.Context, scope string) (map[string]string, error) {
	return o.st.Facts(ctx, scope)
}

// BenchmarkCompleteFacts: the stored facts of a change of 100 commits, each
// with its push record, read at once (FactsIn) or one scope per query.
func BenchmarkCompleteFacts(b *testing.B) {
	for _, backend := range storetest.Backends() {
		b.Run(backend, func(b *testing.B) {
			env := storetest.Open(b, backend)
			ctx := context.Background()
			ref := bot.ChangeRef{Forge: bot.GitHub, Repo: bot.Repo{FullName: "acme/app"}, Number: 7}
			var commits []bot.Commit
			facts := map[string]map[string]string{}
			for i := range 100 {
				sha := fmt.Sprintf("%040d", i)
				commits = append(commits, bot.Commit{SHA: sha})
				facts[bot.PushScope(bot.GitHub, "acme/app", sha)] = map[string]string{"bob": `{"login":"bob","via":"push"}`}
			}
			ref.HeadSHA = commits[99].SHA
			if err := env.DB.PutFacts(ctx, facts); err != nil {
				b.Fatal(err)
			}
			for _, read := range []struct {
				name string
				st   bot.FactReader
			}{{"at-once", env.DB}, {"per-scope", onlyFacts{env.DB}}} {
				b.Run(read.name, func(b *testing.B) {
					for b.Loop() {
						c := &bot.Change{Ref: ref, Commits: commits}
						if err := bot.CompleteFacts(ctx, read.st, c); err != nil {
							b.Fatal(err)
						}
						if len(c.Pushes) != 100 {
							b.Fatalf("%d pushes, want 100", len(c.Pushes))
						}
					}
				})
			}
		})
	}
}
