package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
)

// commentPayload is an issue_comment "created" delivery on pull request n,
// shaped like GitHub's (an issue with a pull_request key).
func commentPayload(repo string, n int, id int64, login, body string) map[string]any {
	return map[string]any{
		"action": "created",
		"issue": map[string]any{
			"number": n, "user": ghUser("alice"), "state": "open",
			"pull_request": map[string]any{"url": fmt.Sprintf("https://api.github.com/repos/%s/pulls/%d", repo, n)},
		},
		"comment": map[string]any{
			"id": id, "body": body, "user": ghUser(login), "created_at": time.Now().UTC().Format(time.RFC3339),
			"html_url": fmt.Sprintf("https://github.com/%s/pull/%d#issuecomment-%d", repo, n, id),
		},
		"repository":   ghRepo(repo),
		"installation": map[string]any{"id": sandboxInstallation},
		"sender":       ghUser(login),
	}
}

// breakGlass tells the break-glass story: an unapproved fix, dave opens an
// override, alice (the author) cannot confirm it, carol does; the check
// passes as an override and an issue for post-incident review is opened.
func (d *demo) breakGlass(ctx context.Context, n int, stdout io.Writer, markdown bool) error {
	pr, err := d.openPR(ctx, n, "internal/payments/retry.go")
	if err != nil {
		return err
	}
	for i, c := range []struct{ who, body string }{
		{"dave", "/foureyes break-glass payments are failing, INC-42"},
		{"alice", "/foureyes break-glass confirm"},
		{"carol", "/foureyes break-glass confirm"},
	} {
		if err := d.expect(d.sb.Send(ctx, "issue_comment", commentPayload(d.repo, n, int64(9000+i), c.who, c.body))); err != nil {
			return err
		}
		// One at a time, so the story reads in order.
		if err := d.sb.Drain(ctx, 30*time.Second); err != nil {
			return err
		}
	}
	v, ok, err := d.sb.srv.service.StoredVerdict(ctx, d.ref(pr))
	if err != nil || !ok {
		return fmt.Errorf("no verdict stored (%v)", err)
	}
	if markdown {
		fmt.Fprintln(stdout, bot.Markdown(v))
	} else {
		fmt.Fprintln(stdout, indent(bot.Text(v)))
	}
	for _, c := range d.sb.Fake.Comments(d.repo, n) {
		fmt.Fprintf(stdout, "    reply: %s\n", strings.SplitN(c.Body, "\n", 2)[0])
	}
	for _, is := range d.sb.Fake.Issues(d.repo) {
		if strings.HasPrefix(is.Title, "Break-glass") {
			fmt.Fprintf(stdout, "    issue #%d %q labels %v\n\n", is.Number, is.Title, is.Labels)
		}
	}
	return nil
}
