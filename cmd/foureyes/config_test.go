package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigErrorsNameTheSetting(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "k.pem")
	os.WriteFile(key, []byte("-----BEGIN RSA PRIVATE KEY-----\n"), 0o600)
	emptyFile := filepath.Join(dir, "empty")
	os.WriteFile(emptyFile, []byte("\n"), 0o600)
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"FOUREYES_GITHUB_APP_ID": "12"}, "FOUREYES_GITHUB_PRIVATE_KEY"},
		{map[string]string{"FOUREYES_GITHUB_APP_ID": "12", "FOUREYES_GITHUB_PRIVATE_KEY_FILE": key}, "FOUREYES_GITHUB_WEBHOOK_SECRET is not"},
		{map[string]string{"FOUREYES_GITHUB_APP_ID": "x"}, "FOUREYES_GITHUB_APP_ID must be a positive number"},
		{map[string]string{"FOUREYES_GITLAB_TOKEN": "t"}, "FOUREYES_GITLAB_WEBHOOK_SECRET is not"},
		{map[string]string{"FOUREYES_GITHUB_WEBHOOK_SECRET": "s"}, "FOUREYES_GITHUB_APP_ID is not"},
		{map[string]string{"FOUREYES_DATABASE": "mysql://x"}, "FOUREYES_DATABASE must be"},
		{map[string]string{"FOUREYES_PUBLIC_URL": "foureyes.example.com"}, "FOUREYES_PUBLIC_URL must be an http(s) URL"},
		{map[string]string{"FOUREYES_LOG_LEVEL": "loud"}, "FOUREYES_LOG_LEVEL"},
		{map[string]string{"FOUREYES_GITLAB_TOKEN": "a", "FOUREYES_GITLAB_TOKEN_FILE": key, "FOUREYES_GITLAB_WEBHOOK_SECRET": "s"}, "both FOUREYES_GITLAB_TOKEN and FOUREYES_GITLAB_TOKEN_FILE"},
		{map[string]string{"FOUREYES_AUDIT_KEY": "short"}, "FOUREYES_AUDIT_KEY must be at least 32 bytes"},
		{map[string]string{"FOUREYES_AUDIT_KEY": "REPLACE_ME_WITH_THE_OUTPUT_OF_openssl_rand_-hex_32"}, "FOUREYES_AUDIT_KEY is still the example placeholder"},
		{map[string]string{"FOUREYES_AUDIT_KEY_FILE": emptyFile}, "FOUREYES_AUDIT_KEY_FILE " + emptyFile + " is empty"},
		// The budget must hold one 25 MiB delivery.
		{map[string]string{"FOUREYES_WEBHOOK_MEMORY_MB": "16"}, "FOUREYES_WEBHOOK_MEMORY_MB must be between 26 and"},
		{map[string]string{"FOUREYES_WEBHOOK_MEMORY_MB": "lots"}, "FOUREYES_WEBHOOK_MEMORY_MB must be between 26 and"},
	}
	for _, tc := range cases {
		_, err := LoadConfig("", func(k string) string { return tc.env[k] })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("env %v: error %v, want it to name %q", tc.env, err, tc.want)
		}
	}
}

func TestConfigFileAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("from-file\n"), 0o600)
	file := filepath.Join(dir, "foureyes.yml")
	os.WriteFile(file, []byte("listen: \":9999\"\nlog_format: text\ngitlab_token: tok\ngitlab_webhook_secret_file: "+secret+"\n"), 0o600)
	env := map[string]string{"FOUREYES_LISTEN": ":7777"}
	cfg, err := LoadConfig(file, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":7777" || cfg.LogFormat != "text" || cfg.GitLabToken != "tok" || string(cfg.GitLabSecret) != "from-file" || cfg.WebhookMemory != 128<<20 {
		t.Fatalf("config %+v: the environment must win over the file, secrets come from _FILE", cfg)
	}
	os.WriteFile(file, []byte("lisen: \":9999\"\n"), 0o600)
	if _, err := LoadConfig(file, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), `unknown key "lisen"`) {
		t.Fatalf("unknown key in the config file: %v", err)
	}
}

func TestInvalidDefaultPolicyRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "default.yml")
	os.WriteFile(pol, []byte("version: 1\nreveiw: {}\n"), 0o600)
	cfg, err := LoadConfig("", func(k string) string {
		return map[string]string{"FOUREYES_DATABASE": "sqlite:" + filepath.Join(dir, "db"), "FOUREYES_DEFAULT_POLICY_FILE": pol, "FOUREYES_STATE_DIR": dir}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = newServer(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), `default.yml:2:1: unknown key "reveiw"`) {
		t.Fatalf("newServer with an invalid default policy: %v", err)
	}
}
