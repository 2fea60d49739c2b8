package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The setup page writes STATE_DIR/foureyes.env; the server reads it at
// start, below the environment.
func TestConfigReadsTheStateDirectorysCredentials(t *testing.T) {
	state := t.TempDir()
	key := filepath.Join(state, "foureyes-github-app-9.pem")
	os.WriteFile(key, []byte("-----BEGIN RSA PRIVATE KEY-----\n"), 0o600)
	os.WriteFile(filepath.Join(state, "foureyes.env"), []byte("# written by the setup page\n"+
		"FOUREYES_GITHUB_APP_ID=9\n"+
		"FOUREYES_GITHUB_WEBHOOK_SECRET='it'\\''s $ecret'\n"+
		"FOUREYES_GITHUB_PRIVATE_KEY_FILE="+key+"\n"+
		"FOUREYES_GITHUB_CLIENT_ID=Iv1.abc\n"+
		"FOUREYES_GITHUB_CLIENT_SECRET=cs\n"+
		"FOUREYES_PUBLIC_URL=https://from-file.example\n"), 0o600)
	env := map[string]string{"FOUREYES_STATE_DIR": state, "FOUREYES_PUBLIC_URL": "https://from-env.example"}
	cfg, err := LoadConfig("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.GitHubOn() || cfg.GitHubAppID != 9 || string(cfg.GitHubSecret) != "it's $ecret" || !strings.HasPrefix(string(cfg.GitHubPrivateKey), "-----BEGIN") ||
		cfg.GitHubClientID != "Iv1.abc" || cfg.GitHubClientSecret != "cs" || !cfg.CredentialsLoaded || cfg.CredentialsFile != filepath.Join(state, "foureyes.env") {
		t.Fatalf("config from the state directory: %+v", cfg)
	}
	if cfg.PublicURL != "https://from-env.example" {
		t.Errorf("PUBLIC_URL = %s: the environment must win over the state file", cfg.PublicURL)
	}
	// The environment's secret, by value, replaces the file's _FILE.
	env["FOUREYES_GITHUB_PRIVATE_KEY"] = "-----BEGIN RSA PRIVATE KEY----- from env"
	if cfg, err := LoadConfig("", func(k string) string { return env[k] }); err != nil || string(cfg.GitHubPrivateKey) != env["FOUREYES_GITHUB_PRIVATE_KEY"] {
		t.Errorf("env key over the file's key file: %v", err)
	}

	// No file: nothing loaded, no error.
	empty := t.TempDir()
	cfg, err = LoadConfig("", func(k string) string { return map[string]string{"FOUREYES_STATE_DIR": empty}[k] })
	if err != nil || cfg.CredentialsLoaded || cfg.GitHubOn() {
		t.Fatalf("empty state directory: %+v %v", cfg, err)
	}
	// A broken file stops the start with its line.
	for content, want := range map[string]string{
		"FOUREYES_GITHUB_APP_ID=1\nFOUREYES_NOPE=2\n": "foureyes.env:2: unknown or misplaced setting FOUREYES_NOPE",
		"FOUREYES_GITHUB_WEBHOOK_SECRET='open\n":      "line 1: FOUREYES_GITHUB_WEBHOOK_SECRET: unterminated single quote",
		"PATH=/tmp\n":                                 "line 1: want FOUREYES_NAME=value",
		"FOUREYES_STATE_DIR=/elsewhere\n":             "misplaced setting FOUREYES_STATE_DIR",
		"FOUREYES_GITHUB_WEBHOOK_SECRET=$(reboot)\n":  "put the value in single quotes",
	} {
		os.WriteFile(filepath.Join(empty, "foureyes.env"), []byte(content), 0o600)
		if _, err := LoadConfig("", func(k string) string { return map[string]string{"FOUREYES_STATE_DIR": empty}[k] }); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", content, err, want)
		}
	}
}

func TestConfigClientsAndDatabaseFile(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "database-url")
	os.WriteFile(db, []byte("postgres://foureyes:s3cret@db:5432/foureyes\n"), 0o600)
	get := func(m map[string]string) func(string) string {
		m["FOUREYES_STATE_DIR"] = dir
		return func(k string) string { return m[k] }
	}
	cfg, err := LoadConfig("", get(map[string]string{"FOUREYES_DATABASE_FILE": db}))
	if err != nil || cfg.Database != "postgres://foureyes:s3cret@db:5432/foureyes" {
		t.Fatalf("FOUREYES_DATABASE_FILE: %q %v", cfg.Database, err)
	}
	for env, want := range map[string]map[string]string{
		"set both FOUREYES_GITHUB_CLIENT_ID and FOUREYES_GITHUB_CLIENT_SECRET": {"FOUREYES_GITHUB_CLIENT_ID": "x"},
		"FOUREYES_GITHUB_CLIENT_ID is set but FOUREYES_GITHUB_APP_ID is not":   {"FOUREYES_GITHUB_CLIENT_ID": "x", "FOUREYES_GITHUB_CLIENT_SECRET": "y"},
		"FOUREYES_GITLAB_CLIENT_ID is set but FOUREYES_GITLAB_TOKEN is not":    {"FOUREYES_GITLAB_CLIENT_ID": "x", "FOUREYES_GITLAB_CLIENT_SECRET": "y"},
	} {
		if _, err := LoadConfig("", get(want)); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%v: %v, want %q", want, err, env)
		}
	}
}

// FuzzParseEnvFile: the parser of the state file never panics, and what
// the setup page's quoting writes reads back exactly.
func FuzzParseEnvFile(f *testing.F) {
	for _, s := range []string{"FOUREYES_A=b\n", "FOUREYES_A='x'\\''y'\n# c\n\n", "FOUREYES_A='\n", "=\n", "FOUREYES_A=\\\n", "FOUREYES_A=\"x\"\r\n"} {
		f.Add([]byte(s), "it's $x")
	}
	f.Fuzz(func(t *testing.T, raw []byte, value string) {
		_, _ = parseEnvFile(raw)
		if strings.ContainsAny(value, "\n\r") {
			return
		}
		quoted := "'" + strings.ReplaceAll(value, "'", `'\''`) + "'"
		kv, err := parseEnvFile([]byte("FOUREYES_X=" + quoted + "\n"))
		if err != nil || len(kv) != 1 || kv[0].value != value {
			t.Fatalf("%q: %v %v", quoted, kv, err)
		}
	})
}
