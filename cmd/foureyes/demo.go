package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
)

// demoPolicy is the policy of the demo repository: infra needs the SRE team.
const demoPolicy = `version: 1
categories:
  infra:
    paths: ["deploy/**", "**/*.tf"]
    approvals: 1
    reviewers:
      teams: ["acme/sre"]
  code:
    paths: ["**"]
    approvals: 1
exempt: ["**/*.md"]
break_glass:
  approvers: { teams: ["acme/sre"], users: ["dave", "alice"] }
  required: 2
`

// demoScenario is one story the demo tells: it sets up the fake forge and
// sends the webhooks a real GitHub would send.
type demoScenario struct {
	title string
	run   func(ctx context.Context, d *demo, n int) (bot.ChangeRef, error)
}

type demo struct {
	sb   *sandbox
	repo string
}

func cmdDemo(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("demo")
	markdown := fs.Bool("markdown", false, "print each verdict as the check run's Markdown instead of text")
	if err := fs.Parse(args); err != nil {
		return flagErr(fs, err)
	}
	dir, err := os.MkdirTemp("", "foureyes-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	sb, err := newSandbox(ctx, dir, logger, nil)
	if err != nil {
		return fmt.Errorf("start the demo: %w", err)
	}
	defer sb.Close()
	d := &demo{sb: sb, repo: "acme/shop"}
	d.setup()
	fmt.Fprintf(stdout, "foureyes demo: a fake GitHub at %s, foureyes at %s\n", sb.Fake.URL(), sb.URL)
	fmt.Fprintf(stdout, "repository %s: policy .github/foureyes.yml on main (infra needs @acme/sre, code needs 1, break glass needs 2 of @acme/sre, @dave, @alice)\n\n", d.repo)
	for i, sc := range d.scenarios() {
		fmt.Fprintf(stdout, "=== %d. %s\n", i+1, sc.title)
		ref, err := sc.run(ctx, d, 100+i)
		if err != nil {
			return fmt.Errorf("scenario %q: %w", sc.title, err)
		}
		if err := sb.Drain(ctx, 30*time.Second); err != nil {
			return err
		}
		v, ok, err := sb.srv.service.StoredVerdict(ctx, ref)
		if err != nil || !ok {
			return fmt.Errorf("scenario %q: no verdict stored (%v)", sc.title, err)
		}
		if *markdown {
			fmt.Fprintln(stdout, bot.Markdown(v))
		} else {
			fmt.Fprintln(stdout, indent(bot.Text(v)))
		}
	}
	fmt.Fprintf(stdout, "=== %d. break glass: dave opens an override of alice's unreviewed fix, alice cannot confirm her own change, carol (@acme/sre) does\n", len(d.scenarios())+1)
	if err := d.breakGlass(ctx, 100+len(d.scenarios()), stdout, *markdown); err != nil {
		return fmt.Errorf("scenario break glass: %w", err)
	}
	fmt.Fprintf(stdout, "=== %d. a direct push to the release branch: alice pushes a commit straight to main\n", len(d.scenarios())+2)
	if err := d.directPush(ctx, stdout); err != nil {
		return fmt.Errorf("scenario direct push: %w", err)
	}
	fmt.Fprintln(stdout, "every verdict above was published as a `foureyes` check run on the fake GitHub and recorded in the audit trail.")
	return nil
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}

func (d *demo) setup() {
	f := d.sb.Fake
	f.AddRepo(d.repo)
	// The fake has no git graph: the policy is put on the branch and on the
	// base SHA the pull requests name, where foureyes reads it.
	f.PutFile(d.repo, "main", ".github/foureyes.yml", demoPolicy)
	f.PutFile(d.repo, fakegithub.SHA("main"), ".github/foureyes.yml", demoPolicy)
	for user, role := range map[string]string{"alice": "write", "bob": "write", "carol": "maintain", "dave": "write", "renovate[bot]": "write", "erin": "read"} {
		f.SetPermission(d.repo, user, role)
	}
	f.AddTeamMember("acme", "sre", "carol")
}

// openPR creates a pull request by alice touching files and sends the
// "opened" webhook (alice pushed its head).
func (d *demo) openPR(ctx context.Context, n int, files ...string) (fakegithub.PR, error) {
	c := fakegithub.Commit{
		SHA:       fakegithub.SHA(fmt.Sprintf("demo-%d-1", n)),
		Message:   "Change " + strings.Join(files, ", "),
		Author:    fakegithub.Identity{Name: "Alice", Email: "alice@example.com", Login: "alice"},
		Committer: fakegithub.Identity{Name: "Alice", Email: "alice@example.com", Login: "alice"},
	}
	pr := fakegithub.PR{
		Number: n, Title: fmt.Sprintf("Demo change %d", n), Author: fakegithub.User{Login: "alice"},
		BaseSHA: fakegithub.SHA("main"), Commits: []fakegithub.Commit{c}, HeadSHA: c.SHA,
	}
	for _, p := range files {
		pr.Files = append(pr.Files, fakegithub.File{Filename: p, Patch: "@@ -1 +1 @@\n-old\n+new " + p})
	}
	d.sb.Fake.AddPR(d.repo, pr)
	return pr, d.expect(d.sb.Send(ctx, "pull_request", prPayload("opened", d.repo, pr, "alice")))
}

func (d *demo) approve(ctx context.Context, pr fakegithub.PR, reviewer, commit string) error {
	id := d.sb.Fake.AddReview(d.repo, pr.Number, fakegithub.Review{User: fakegithub.User{Login: reviewer}, State: "APPROVED", CommitID: commit})
	return d.expect(d.sb.Send(ctx, "pull_request_review", reviewPayload(d.repo, pr, id, reviewer, "approved", commit)))
}

func (d *demo) expect(status int, id string, err error) error {
	if err != nil {
		return err
	}
	if status != 202 {
		return fmt.Errorf("delivery %s answered %d, want 202", id, status)
	}
	return nil
}

func (d *demo) ref(pr fakegithub.PR) bot.ChangeRef {
	return bot.ChangeRef{Forge: bot.GitHub, Repo: bot.Repo{FullName: d.repo}, Number: pr.Number, HeadSHA: pr.HeadSHA}
}

func (d *demo) scenarios() []demoScenario {
	return []demoScenario{
		{"a clean approval: bob (write access, independent) approves alice's change", func(ctx context.Context, d *demo, n int) (bot.ChangeRef, error) {
			pr, err := d.openPR(ctx, n, "internal/cart/cart.go")
			if err == nil {
				err = d.approve(ctx, pr, "bob", pr.HeadSHA)
			}
			return d.ref(pr), err
		}},
		{"a self-approval: alice approves her own change", func(ctx context.Context, d *demo, n int) (bot.ChangeRef, error) {
			pr, err := d.openPR(ctx, n, "internal/cart/total.go")
			if err == nil {
				err = d.approve(ctx, pr, "alice", pr.HeadSHA)
			}
			return d.ref(pr), err
		}},
		{"a stale approval: bob approves, then alice pushes a different diff", func(ctx context.Context, d *demo, n int) (bot.ChangeRef, error) {
			pr, err := d.openPR(ctx, n, "internal/cart/discount.go")
			if err != nil {
				return d.ref(pr), err
			}
			if err := d.approve(ctx, pr, "bob", pr.HeadSHA); err != nil {
				return d.ref(pr), err
			}
			if err := d.sb.Drain(ctx, 30*time.Second); err != nil {
				return d.ref(pr), err
			}
			c2 := fakegithub.Commit{SHA: fakegithub.SHA(fmt.Sprintf("demo-%d-2", n)), Message: "Last-minute tweak",
				Author:    fakegithub.Identity{Name: "Alice", Email: "alice@example.com", Login: "alice"},
				Committer: fakegithub.Identity{Name: "Alice", Email: "alice@example.com", Login: "alice"}}
			d.sb.Fake.UpdatePR(d.repo, n, func(p *fakegithub.PR) {
				p.Commits = append(p.Commits, c2)
				p.HeadSHA = c2.SHA
				p.Files[0].Patch += "\n+one more line"
			})
			pr, _ = d.sb.Fake.PR(d.repo, n)
			return d.ref(pr), d.expect(d.sb.Send(ctx, "pull_request", prPayload("synchronize", d.repo, pr, "alice")))
		}},
		{"a bot approval: renovate[bot] approves", func(ctx context.Context, d *demo, n int) (bot.ChangeRef, error) {
			pr, err := d.openPR(ctx, n, "go.mod")
			if err == nil {
				err = d.approve(ctx, pr, "renovate[bot]", pr.HeadSHA)
			}
			return d.ref(pr), err
		}},
		{"an infra change missing its team: bob approves a Terraform change, but infra needs @acme/sre", func(ctx context.Context, d *demo, n int) (bot.ChangeRef, error) {
			pr, err := d.openPR(ctx, n, "deploy/main.tf", "internal/cart/cart.go")
			if err == nil {
				err = d.approve(ctx, pr, "bob", pr.HeadSHA)
			}
			return d.ref(pr), err
		}},
		{"the same infra change once carol (@acme/sre) approves too", func(ctx context.Context, d *demo, n int) (bot.ChangeRef, error) {
			pr, ok := d.sb.Fake.PR(d.repo, n-1)
			if !ok {
				return bot.ChangeRef{}, fmt.Errorf("pull request %d missing", n-1)
			}
			return d.ref(pr), d.approve(ctx, pr, "carol", pr.HeadSHA)
		}},
	}
}

// directPush sends the push webhook of a commit that no pull request
// brought to main, and prints what the release guard flagged.
func (d *demo) directPush(ctx context.Context, stdout io.Writer) error {
	sha := fakegithub.SHA("demo-direct-push")
	before := fakegithub.SHA("main")
	d.sb.Fake.PutFile(d.repo, before, ".github/foureyes.yml", demoPolicy)
	author := map[string]any{"name": "Alice", "email": "alice@example.com", "username": "alice"}
	payload := map[string]any{
		"ref": "refs/heads/main", "before": before, "after": sha, "created": false, "deleted": false, "forced": false,
		"commits": []any{map[string]any{
			"id": sha, "message": "Hotfix straight to main", "timestamp": time.Now().UTC().Format(time.RFC3339),
			"author": author, "committer": author, "added": []string{}, "removed": []string{}, "modified": []string{"internal/cart/cart.go"},
		}},
		"pusher":       map[string]any{"name": "alice", "email": "alice@example.com"},
		"repository":   ghRepo(d.repo),
		"installation": map[string]any{"id": sandboxInstallation},
		"sender":       ghUser("alice"),
	}
	if err := d.expect(d.sb.Send(ctx, "push", payload)); err != nil {
		return err
	}
	if err := d.sb.Drain(ctx, 30*time.Second); err != nil {
		return err
	}
	runs := d.sb.Fake.CheckRuns(d.repo, sha)
	if len(runs) == 0 {
		return fmt.Errorf("no check run on the pushed commit")
	}
	r := runs[len(runs)-1]
	fmt.Fprintf(stdout, "    check run on %s: %s — %s\n", sha[:7], r.Conclusion, r.Title)
	for _, is := range d.sb.Fake.Issues(d.repo) {
		if strings.HasPrefix(is.Title, "Break-glass") {
			continue // told in its own story
		}
		fmt.Fprintf(stdout, "    issue #%d %q labels %v\n", is.Number, is.Title, is.Labels)
		fmt.Fprintln(stdout, indent(is.Body))
	}
	return nil
}
