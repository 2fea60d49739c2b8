package bot

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/policies"
)

// bigPolicy has 100 globs over six categories, mixing the shapes the glob
// compiler matches with string operations and generic doublestar patterns.
func bigPolicy() *policies.Policy {
	globs := func(ps ...string) []policies.Glob {
		out := make([]policies.Glob, len(ps))
		for i, p := range ps {
			out[i] = policies.MustCompileGlob(p)
		}
		return out
	}
	var backend []string
	for i := range 35 {
		backend = append(backend, fmt.Sprintf("src/pkg%02d/**", i))
	}
	backend = append(backend, "src/*/internal/**", "**/test_*.go", "cmd/**", "**/*.go")
	var frontend []string
	for i := range 20 {
		frontend = append(frontend, fmt.Sprintf("web/app%02d/**", i))
	}
	frontend = append(frontend, "web/**/*.tsx", "**/*.ts", "**/*.css", "**/package.json")
	infra := []string{
		"deploy/**", "infra/**", ".github/workflows/**", "**/*.tf", "**/*.hcl",
		"**/Dockerfile", "**/Chart.yaml", "charts/**", "ansible/**", "k8s/*/base/**",
		"**/docker-compose.yml", "**/*.nomad",
	}
	data := []string{
		"migrations/**", "**/*.sql", "data/**", "**/fixtures/**", "**/seeds/**",
		"**/*.csv", "**/*.parquet", "services/*/migrations/*.sql",
	}
	security := []string{
		"**/auth/**", "**/crypto/**", "**/CODEOWNERS", "**/*.pem", "security/**",
		"src/*/auth*.go",
	}
	exempt := []string{"**/*.md", "docs/**", "**/LICENSE", "**/*.txt", "**/.gitignore", "**/*.png"}
	p := &policies.Policy{
		Source: "bench/.github/foureyes.yml",
		Digest: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Categories: []policies.Category{
			{Name: "infra", Paths: globs(infra...), Approvals: 2,
				Reviewers: policies.Reviewers{Teams: []string{"acme/sre"}, Users: []string{"alice"}}},
			{Name: "data", Paths: globs(data...), Approvals: 1,
				Reviewers: policies.Reviewers{Teams: []string{"acme/dba"}}},
			{Name: "security", Paths: globs(security...), Approvals: 2,
				Reviewers: policies.Reviewers{Teams: []string{"acme/security"}}},
			{Name: "frontend", Paths: globs(frontend...), Approvals: 1},
			{Name: "backend", Paths: globs(backend...), Ignore: globs("**/*_gen.go", "**/zz_*.go"), Approvals: 1},
			{Name: "code", Paths: globs("**"), Ignore: globs("vendor/**", "third_party/**"), Approvals: 1},
		},
		Exempt: globs(exempt...),
		Review: policies.Review{
			DismissStale: true, IgnoreBaseUpdates: true,
			MinPermission: policies.PermissionWrite, ChangesRequestedBlocks: true,
		},
	}
	n := len(p.Exempt)
	for _, c := range p.Categories {
		n += len(c.Paths) + len(c.Ignore)
	}
	if n != 100 {
		panic(fmt.Sprintf("bigPolicy has %d globs, want 100", n))
	}
	return p
}

// bigChange is a 3,000-file change with 100 reviews: approvals on the head,
// on earlier heads with the same and a different diff, by the author, by
// committers, by bots and by readers, plus a few requests for changes.
func bigChange() *Change {
	shapes := []func(i int) string{
		func(i int) string { return fmt.Sprintf("src/pkg%02d/internal/file%04d.go", i%50, i) },
		func(i int) string { return fmt.Sprintf("src/pkg%02d/test_file%04d.go", i%50, i) },
		func(i int) string { return fmt.Sprintf("src/pkg%02d/auth%04d.go", i%50, i) },
		func(i int) string { return fmt.Sprintf("web/app%02d/components/Widget%04d.tsx", i%30, i) },
		func(i int) string { return fmt.Sprintf("web/app%02d/lib/util%04d.ts", i%30, i) },
		func(i int) string { return fmt.Sprintf("deploy/env%d/service%04d.yaml", i%5, i) },
		func(i int) string { return fmt.Sprintf("infra/modules/m%02d/main%04d.tf", i%20, i) },
		func(i int) string { return fmt.Sprintf("services/svc%02d/migrations/%04d_init.sql", i%10, i) },
		func(i int) string { return fmt.Sprintf("services/svc%02d/Dockerfile%04d", i%10, i) },
		func(i int) string { return fmt.Sprintf("docs/guide/page%04d.md", i) },
		func(i int) string { return fmt.Sprintf("vendor/github.com/x/y%02d/z%04d.go", i%10, i) },
		func(i int) string { return fmt.Sprintf("lib/python/pkg%02d/mod%04d.py", i%10, i) },
		func(i int) string { return fmt.Sprintf("src/pkg%02d/zz_generated%04d.go", i%50, i) },
		func(i int) string { return fmt.Sprintf("tools/scripts/run%04d.sh", i) },
		func(i int) string { return fmt.Sprintf("src/pkg%02d/crypto/cipher%04d.go", i%50, i) },
	}
	c := &Change{
		Ref:     ChangeRef{Forge: GitHub, Repo: Repo{FullName: "acme/app"}, Number: 42, HeadSHA: "headsha0000000000000000000000000000000000"},
		Author:  User{Login: "author"},
		BaseRef: "main",
	}
	for i := range 3000 {
		f := File{Path: shapes[i%len(shapes)](i), Status: "modified", PatchDigest: PatchDigest(fmt.Sprint("patch ", i))}
		if i%97 == 0 {
			f.Status, f.PreviousPath = "renamed", fmt.Sprintf("old/place%04d.go", i)
		}
		c.Files = append(c.Files, f)
	}
	// Forges list a change's files in path order.
	slices.SortFunc(c.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	digest := DiffDigest(c.Files)
	c.DiffDigests = map[string]string{
		"rebased00000000000000000000000000000000": digest,
		"changed00000000000000000000000000000000": "ffff",
	}
	for i := range 30 {
		cm := Commit{SHA: fmt.Sprintf("c%039d", i), Author: User{Login: fmt.Sprintf("dev%d", i%5)}, Committer: User{Login: "web-flow"}}
		if i%4 == 0 {
			cm.CoAuthors = []User{{Login: fmt.Sprintf("pair%d", i%3)}, {Email: "someone@example.com"}}
		}
		c.Commits = append(c.Commits, cm)
	}
	c.Pushes = []Push{
		{HeadSHA: "changed00000000000000000000000000000000", Pusher: User{Login: "dev1"}},
		{HeadSHA: "rebased00000000000000000000000000000000", Pusher: User{Login: "dev2"}},
		{HeadSHA: c.Ref.HeadSHA, Pusher: User{Login: "author"}},
	}
	c.Reviewers = map[string]ReviewerFacts{}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	heads := []string{c.Ref.HeadSHA, c.Ref.HeadSHA, "rebased00000000000000000000000000000000", "changed00000000000000000000000000000000", ""}
	for i := range 100 {
		var login string
		switch {
		case i < 60:
			login = fmt.Sprintf("Reviewer%02d", i%45) // some review twice
		case i < 70:
			login = fmt.Sprintf("dev%d", i%5)
		case i < 75:
			login = fmt.Sprintf("pair%d", i%3)
		case i < 80:
			login = fmt.Sprintf("helper%d[bot]", i)
		case i < 85:
			login = "author"
		default:
			login = fmt.Sprintf("reader%02d", i)
		}
		state := Approved
		switch i % 13 {
		case 5:
			state = ChangesRequested
		case 7:
			state = Commented
		case 11:
			state = Dismissed
		}
		c.Reviews = append(c.Reviews, Review{
			ID: int64(1000 + i), Reviewer: User{Login: login}, State: state,
			CommitSHA: heads[i%len(heads)], At: t0.Add(time.Duration(i) * time.Minute),
		})
		f := ReviewerFacts{Permission: policies.PermissionWrite}
		switch {
		case strings.HasPrefix(login, "reader"):
			f.Permission = policies.PermissionRead
		case i%3 == 0:
			f.Teams = []string{"acme/sre"}
		case i%3 == 1:
			f.Teams = []string{"acme/dba", "acme/security"}
		}
		c.Reviewers[strings.ToLower(login)] = f
	}
	return c
}

func BenchmarkDecide(b *testing.B) {
	in := Input{Policy: bigPolicy(), Change: bigChange()}
	v := Decide(in)
	if len(v.Categories) < 6 || len(v.Exempt) == 0 || len(v.Ignored) == 0 {
		b.Fatalf("unrealistic scenario: %d categories, %d exempt, %d ignored", len(v.Categories), len(v.Exempt), len(v.Ignored))
	}
	b.ReportAllocs()
	for b.Loop() {
		Decide(in)
	}
}

// BenchmarkDecideUnsorted is the worst case of DiffDigest: files not in
// path order, as no forge sends them but a hand-written change file might.
func BenchmarkDecideUnsorted(b *testing.B) {
	c := bigChange()
	rand.New(rand.NewPCG(5, 6)).Shuffle(len(c.Files), func(i, j int) { c.Files[i], c.Files[j] = c.Files[j], c.Files[i] })
	in := Input{Policy: bigPolicy(), Change: c}
	b.ReportAllocs()
	for b.Loop() {
		Decide(in)
	}
}

func BenchmarkMarkdown(b *testing.B) {
	v := Decide(Input{Policy: bigPolicy(), Change: bigChange()})
	b.ReportAllocs()
	for b.Loop() {
		if len(Markdown(v)) > MaxMarkdown {
			b.Fatal("summary over the limit")
		}
	}
}
