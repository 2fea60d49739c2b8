package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			var out, errs bytes.Buffer
			if err := runIO(context.Background(), args, strings.NewReader(""), &out, &errs); err != nil {
				t.Errorf("%v: %v (want exit 0)", args, err)
				continue
			}
			if !strings.HasPrefix(out.String(), "usage: foureyes "+c.name) && c.name != "help" {
				t.Errorf("%v: help does not start with its usage line:\n%s", args, out.String())
			}
			if errs.Len() > 0 {
				t.Errorf("%v: wrote to stderr: %q", args, errs.String())
			}
		}
	}
	var out bytes.Buffer
	if err := runIO(context.Background(), []string{"serve", "--help"}, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if !strings.Contains(out.String(), s.env) {
			t.Errorf("serve --help does not list %s", s.env)
		}
	}
	if !strings.Contains(out.String(), "-config") {
		t.Errorf("serve --help does not list its flags:\n%s", out.String())
	}
	out.Reset()
	if err := runIO(context.Background(), []string{"audit", "list", "--help"}, nil, &out, &out); err != nil || !strings.Contains(out.String(), "-repo") {
		t.Errorf("audit list --help: %v\n%s", err, out.String())
	}
}

func TestUnknownCommandSuggestsTheNearest(t *testing.T) {
	for typo, want := range map[string]string{"valdate": "validate", "serv": "serve", "explian": "explain", "rep": "report"} {
		err := runIO(context.Background(), []string{typo}, nil, &bytes.Buffer{}, &bytes.Buffer{})
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), `did you mean "`+want+`"?`) {
			t.Errorf("%s: %v, want a usage error suggesting %s", typo, err, want)
		}
	}
	err := runIO(context.Background(), []string{"zzzzzz"}, nil, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || strings.Contains(err.Error(), "did you mean") {
		t.Errorf("a far-off word gets no suggestion: %v", err)
	}
}

func TestBadFlagSaysSoOnce(t *testing.T) {
	var out, errs bytes.Buffer
	err := runIO(context.Background(), []string{"explain", "--bogus"}, nil, &out, &errs)
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "-bogus") || !strings.Contains(err.Error(), "foureyes explain --help") {
		t.Fatalf("err = %v", err)
	}
	// The flag package prints nothing of its own: the message is said once.
	if out.Len()+errs.Len() > 0 {
		t.Errorf("stray output: stdout %q, stderr %q", out.String(), errs.String())
	}
}

func TestValidateReadsStdinAndWarnsOfShadowedFiles(t *testing.T) {
	var out, errs bytes.Buffer
	bad := "version: 1\ncategories:\n  code:\n    paths: [\"**\"]\n    approvals: 101\n"
	err := runIO(context.Background(), []string{"validate", "-"}, strings.NewReader(bad), &out, &errs)
	if err == nil || !strings.Contains(errs.String(), "<stdin>:5:16: categories.code.approvals: at most 100") {
		t.Errorf("validate - : %v\n%s", err, errs.String())
	}
	out.Reset()
	errs.Reset()
	if err := runIO(context.Background(), []string{"validate", "-"}, strings.NewReader("version: 1\n"), &out, &errs); err != nil || out.String() != "<stdin>: ok\n" {
		t.Errorf("validate - (valid): %v %q %q", err, out.String(), errs.String())
	}

	root := t.TempDir()
	for _, p := range []string{".github/foureyes.yml", ".foureyes.yml"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte("version: 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	errs.Reset()
	shadowed := filepath.Join(root, ".foureyes.yml")
	if err := runIO(context.Background(), []string{"validate", shadowed}, nil, &out, &errs); err != nil {
		t.Fatal(err)
	}
	if want := "warning: GitHub reads " + filepath.Join(root, ".github/foureyes.yml") + " first"; !strings.Contains(errs.String(), want) {
		t.Errorf("no shadow warning; stderr %q", errs.String())
	}
	errs.Reset()
	if err := runIO(context.Background(), []string{"validate", filepath.Join(root, ".github/foureyes.yml")}, nil, &out, &errs); err != nil || strings.Contains(errs.String(), "GitHub reads") {
		t.Errorf("the first file of GitHub's order is shadowed by nothing there: %v %q", err, errs.String())
	}
}
