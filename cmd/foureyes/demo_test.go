package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDemoShowsVerdictsWithReasons(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"demo"}, &out, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"SUCCESS: code approved",                              // the clean approval
		"did not count: @alice — author of the change",        // the self-approval
		"stale: approved an earlier head",                     // the stale approval
		"did not count: @renovate[bot] — bot account",         // the bot approval
		"PENDING: infra needs 1 more approval from @acme/sre", // the missing team
		"counted: @carol",                                     // the team member
		"SUCCESS: break-glass: @dave and @carol overrode review — payments are failing, INC-42", // break glass
		"reply: @alice, your break-glass comment did not count: author of the change",           // the author's key
		`"Break-glass override of acme/shop#106 by @dave and @carol"`,                           // post-incident issue
		"failure — unreviewed push to main: direct-push",                                        // the release guard
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

func TestValidateAndExplainCommands(t *testing.T) {
	var out, errs bytes.Buffer
	if err := run(context.Background(), []string{"validate", "../../examples/foureyes.yml"}, &out, &errs); err != nil {
		t.Fatalf("validate the SPEC example: %v\n%s", err, errs.String())
	}
	out.Reset()
	errs.Reset()
	err := run(context.Background(), []string{"validate", "testdata/bad-policy.yml"}, &out, &errs)
	if code, ok := err.(exitError); !ok || code != 1 {
		t.Fatalf("validate a bad policy: %v, want exit status 1", err)
	}
	for _, want := range []string{
		`testdata/bad-policy.yml:5:5: unknown key "aprovals" in categories.infra; did you mean "approvals"?`,
		`testdata/bad-policy.yml:9:16: categories.code.approvals: must be 0 or more, got -1`,
	} {
		if !strings.Contains(errs.String(), want) {
			t.Errorf("validate output lacks %q:\n%s", want, errs.String())
		}
	}
	for format, want := range map[string]string{
		"text":     "PENDING: infra needs 1 more approval from @acme/sre\n", // alice wrote it: never offered
		"markdown": "| infra | 1 | 2 | @bob | 1 |",
		"json":     `"state": "pending"`,
	} {
		out.Reset()
		// A pending verdict exits 1 (issue 14: 0 success, 1 pending or failure, 2 error).
		if err := run(context.Background(), []string{"explain", "--policy", "../../examples/foureyes.yml", "--change", "../../examples/change.json", "--format", format}, &out, &errs); err != exitError(1) {
			t.Fatalf("explain --format %s: %v, want exit status 1", format, err)
		}
		if !strings.Contains(out.String(), want) {
			t.Errorf("explain --format %s lacks %q:\n%s", format, want, out.String())
		}
	}
}
