package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/foureyes-dev/foureyes/audit"
)

// Config is the server configuration (SPEC section 3). This file is the only
// place that reads it; everything else receives values.
type Config struct {
	Listen            string
	PublicURL         string
	Database          string
	LogLevel          string
	LogFormat         string
	GitHubAppID       int64
	GitHubPrivateKey  []byte
	GitHubSecret      []byte
	GitHubAPIURL      string
	GitLabURL         string
	GitLabToken       string
	GitLabSecret      []byte
	DefaultPolicyFile string
	// DetailsKey signs details-page links. Derived from the webhook secrets
	// when not set, so links stay valid across restarts without new config.
	DetailsKey []byte
	Workers    int
	// WebhookMemory bounds the bytes of webhook bodies held at once,
	// across all requests (handlers.Config.BodyBudget).
	WebhookMemory int64
	// StateDir is where setup writes credentials and where the audit key
	// is generated when none is given. Every shipped deployment points it
	// at a writable volume; the default is the working directory.
	StateDir string
	// AuditKey chains the audit records (FOUREYES_AUDIT_KEY or _FILE). When
	// empty, serve uses StateDir/audit.key, generating it on first start.
	AuditKey []byte
	// AuditCheckpointDir receives the signed checkpoints of the audit chain.
	AuditCheckpointDir string
	// ReconcileInterval is how often guarded branch tips and release tags
	// are compared with what foureyes last judged.
	ReconcileInterval time.Duration
	// DetailsTTL is how long a details link stays valid.
	DetailsTTL time.Duration
	// GitHubClientID/Secret are the GitHub App's OAuth client: viewers of
	// private repositories sign in with it on the details page.
	GitHubClientID     string
	GitHubClientSecret string
	// GitLabClientID/Secret are a GitLab OAuth application's, for the same.
	GitLabClientID     string
	GitLabClientSecret string
	// CredentialsFile is STATE_DIR/foureyes.env: setup writes the App's
	// settings there and LoadConfig reads it (CredentialsLoaded) when it
	// exists, below the environment.
	CredentialsFile   string
	CredentialsLoaded bool
}

// CredentialsFileName is the file in FOUREYES_STATE_DIR that the setup
// page writes and the server reads at start.
const CredentialsFileName = "foureyes.env"

// GitHubOn reports whether the GitHub App is configured.
func (c *Config) GitHubOn() bool { return c.GitHubAppID != 0 }

// GitLabOn reports whether the GitLab integration is configured.
func (c *Config) GitLabOn() bool { return c.GitLabToken != "" }

// settings lists every key: its environment name, whether it is a secret
// (then NAME_FILE is accepted too) and its default.
var settings = []struct {
	env    string
	secret bool
	def    string
}{
	{"FOUREYES_LISTEN", false, ":8080"},
	{"FOUREYES_PUBLIC_URL", false, "http://localhost:8080"},
	{"FOUREYES_DATABASE", true, "sqlite:foureyes.db"}, // a PostgreSQL URL carries its password
	{"FOUREYES_LOG_LEVEL", false, "info"},
	{"FOUREYES_LOG_FORMAT", false, "json"},
	{"FOUREYES_GITHUB_APP_ID", false, ""},
	{"FOUREYES_GITHUB_PRIVATE_KEY", true, ""},
	{"FOUREYES_GITHUB_WEBHOOK_SECRET", true, ""},
	{"FOUREYES_GITHUB_API_URL", false, "https://api.github.com/"},
	{"FOUREYES_GITHUB_CLIENT_ID", false, ""},
	{"FOUREYES_GITHUB_CLIENT_SECRET", true, ""},
	{"FOUREYES_GITLAB_URL", false, "https://gitlab.com"},
	{"FOUREYES_GITLAB_TOKEN", true, ""},
	{"FOUREYES_GITLAB_WEBHOOK_SECRET", true, ""},
	{"FOUREYES_GITLAB_CLIENT_ID", false, ""},
	{"FOUREYES_GITLAB_CLIENT_SECRET", true, ""},
	{"FOUREYES_DEFAULT_POLICY_FILE", false, ""},
	{"FOUREYES_DETAILS_KEY", true, ""},
	{"FOUREYES_WORKERS", false, "4"},
	{"FOUREYES_WEBHOOK_MEMORY_MB", false, "128"},
	{"FOUREYES_STATE_DIR", false, "."},
	{"FOUREYES_AUDIT_KEY", true, ""},
	{"FOUREYES_AUDIT_CHECKPOINT_DIR", false, ""},
	{"FOUREYES_RECONCILE_INTERVAL", false, "10m"},
	{"FOUREYES_DETAILS_TTL", false, "2160h"},
}

// yamlKey is the key a --config file uses for an environment name:
// FOUREYES_GITHUB_APP_ID -> github_app_id.
func yamlKey(env string) string { return strings.ToLower(strings.TrimPrefix(env, "FOUREYES_")) }

// LoadConfig reads the optional YAML file, then the environment (which
// wins), then secrets from *_FILE, and validates the result. getenv is
// os.Getenv in production and a map in tests.
func LoadConfig(file string, getenv func(string) string) (*Config, error) {
	vals := map[string]string{}
	for _, s := range settings {
		vals[s.env] = s.def
	}
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read config file: %w", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("config file %s: %w", file, err)
		}
		known := map[string]bool{}
		for _, s := range settings {
			known[yamlKey(s.env)] = true
			if s.secret {
				known[yamlKey(s.env)+"_file"] = true
			}
		}
		for k, v := range m {
			if !known[k] {
				return nil, fmt.Errorf("config file %s: unknown key %q", file, k)
			}
			vals["FOUREYES_"+strings.ToUpper(k)] = fmt.Sprint(v)
		}
	}
	credFile, loaded, err := loadCredentialsFile(vals, getenv)
	if err != nil {
		return nil, err
	}
	for _, s := range settings {
		if v := getenv(s.env); v != "" {
			vals[s.env] = v
		}
		if !s.secret {
			continue
		}
		if f := getenv(s.env + "_FILE"); f != "" {
			vals[s.env+"_FILE"] = f
		}
		if f := vals[s.env+"_FILE"]; f != "" {
			if getenv(s.env) != "" {
				return nil, fmt.Errorf("both %s and %s_FILE are set: set one", s.env, s.env)
			}
			raw, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("%s_FILE: %w", s.env, err)
			}
			vals[s.env] = strings.TrimRight(string(raw), "\r\n")
			if s.env == "FOUREYES_AUDIT_KEY" && strings.TrimSpace(vals[s.env]) == "" {
				// Falling back to a generated key would give each replica
				// its own key and break the shared chain.
				return nil, fmt.Errorf("FOUREYES_AUDIT_KEY_FILE %s is empty: put a key in it (openssl rand -hex 32) or unset it to use STATE_DIR/audit.key", f)
			}
			if s.env == "FOUREYES_GITHUB_PRIVATE_KEY" {
				vals[s.env] = string(raw) // PEM keeps its trailing newline
			}
		}
	}
	c, err := buildConfig(vals)
	if err != nil {
		return nil, err
	}
	c.CredentialsFile, c.CredentialsLoaded = credFile, loaded
	return c, nil
}

// loadCredentialsFile reads STATE_DIR/foureyes.env, the file the setup page
// writes, into vals when it exists: above the defaults and the --config
// file, below the environment. A setting the environment gives (by value
// or as _FILE) is left alone, so an operator can always override it.
func loadCredentialsFile(vals map[string]string, getenv func(string) string) (string, bool, error) {
	dir := getenv("FOUREYES_STATE_DIR")
	if dir == "" {
		dir = vals["FOUREYES_STATE_DIR"]
	}
	if dir == "" {
		dir = "."
	}
	path := filepath.Join(dir, CredentialsFileName)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return path, false, nil
	}
	if err != nil {
		return path, false, fmt.Errorf("read %s: %w", path, err)
	}
	kv, err := parseEnvFile(raw)
	if err != nil {
		return path, false, fmt.Errorf("%s: %w", path, err)
	}
	secret := map[string]bool{}
	known := map[string]bool{}
	for _, s := range settings {
		known[s.env] = true
		secret[s.env] = s.secret
	}
	for _, e := range kv {
		base, isFile := strings.CutSuffix(e.key, "_FILE")
		if !isFile || !secret[base] {
			base, isFile = e.key, false
		}
		if !known[base] || base == "FOUREYES_STATE_DIR" {
			return path, false, fmt.Errorf("%s:%d: unknown or misplaced setting %s", path, e.line, e.key)
		}
		if getenv(base) != "" || (secret[base] && getenv(base+"_FILE") != "") {
			continue
		}
		vals[e.key] = e.value
		// The file's X_FILE replaces a lower layer's X, and the other way.
		if secret[base] {
			if isFile {
				vals[base] = ""
			} else {
				delete(vals, base+"_FILE")
			}
		}
	}
	return path, true, nil
}

type envEntry struct {
	key, value string
	line       int
}

// parseEnvFile reads KEY=VALUE lines as the setup page writes them (and as
// sh, systemd's EnvironmentFile= and docker's --env-file agree on): blank
// lines and # comments are skipped; a value is plain characters or
// single-quoted parts, with \' between them for a quote.
func parseEnvFile(raw []byte) ([]envEntry, error) {
	var out []envEntry
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSuffix(line, "\r")
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok || !envKey.MatchString(k) {
			return nil, fmt.Errorf("line %d: want FOUREYES_NAME=value", i+1)
		}
		val, err := unquoteEnv(v)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", i+1, k, err)
		}
		out = append(out, envEntry{key: k, value: val, line: i + 1})
	}
	return out, nil
}

var envKey = regexp.MustCompile(`^FOUREYES_[A-Z0-9_]+$`)

func unquoteEnv(v string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(v); {
		switch c := v[i]; c {
		case '\'':
			j := strings.IndexByte(v[i+1:], '\'')
			if j < 0 {
				return "", errors.New("unterminated single quote")
			}
			b.WriteString(v[i+1 : i+1+j])
			i += j + 2
		case '\\':
			if i+1 >= len(v) || v[i+1] != '\'' {
				return "", errors.New("a backslash may only escape a single quote")
			}
			b.WriteByte('\'')
			i += 2
		case '"', '$', '`', ' ', '\t':
			return "", fmt.Errorf("unquoted %q: put the value in single quotes", c)
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

func buildConfig(v map[string]string) (*Config, error) {
	c := &Config{
		Listen:             v["FOUREYES_LISTEN"],
		PublicURL:          strings.TrimRight(v["FOUREYES_PUBLIC_URL"], "/"),
		Database:           v["FOUREYES_DATABASE"],
		LogLevel:           v["FOUREYES_LOG_LEVEL"],
		LogFormat:          v["FOUREYES_LOG_FORMAT"],
		GitHubPrivateKey:   []byte(v["FOUREYES_GITHUB_PRIVATE_KEY"]),
		GitHubSecret:       []byte(v["FOUREYES_GITHUB_WEBHOOK_SECRET"]),
		GitHubAPIURL:       v["FOUREYES_GITHUB_API_URL"],
		GitLabURL:          strings.TrimRight(v["FOUREYES_GITLAB_URL"], "/"),
		GitLabToken:        v["FOUREYES_GITLAB_TOKEN"],
		GitLabSecret:       []byte(v["FOUREYES_GITLAB_WEBHOOK_SECRET"]),
		DefaultPolicyFile:  v["FOUREYES_DEFAULT_POLICY_FILE"],
		DetailsKey:         []byte(v["FOUREYES_DETAILS_KEY"]),
		StateDir:           v["FOUREYES_STATE_DIR"],
		GitHubClientID:     v["FOUREYES_GITHUB_CLIENT_ID"],
		GitHubClientSecret: v["FOUREYES_GITHUB_CLIENT_SECRET"],
		GitLabClientID:     v["FOUREYES_GITLAB_CLIENT_ID"],
		GitLabClientSecret: v["FOUREYES_GITLAB_CLIENT_SECRET"],
		AuditKey:           []byte(v["FOUREYES_AUDIT_KEY"]),
		AuditCheckpointDir: v["FOUREYES_AUDIT_CHECKPOINT_DIR"],
	}
	if c.StateDir == "" {
		c.StateDir = "."
	}
	if c.AuditCheckpointDir == "" {
		c.AuditCheckpointDir = filepath.Join(c.StateDir, "checkpoints")
	}
	var errs []error
	if id := v["FOUREYES_GITHUB_APP_ID"]; id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("FOUREYES_GITHUB_APP_ID must be a positive number, got %q", id))
		}
		c.GitHubAppID = n
	}
	w, err := strconv.Atoi(v["FOUREYES_WORKERS"])
	if err != nil || w < 1 || w > 256 {
		errs = append(errs, fmt.Errorf("FOUREYES_WORKERS must be between 1 and 256, got %q", v["FOUREYES_WORKERS"]))
	}
	c.Workers = w
	// The budget must hold the largest delivery (25 MiB) and a chunk more.
	mb, err := strconv.Atoi(v["FOUREYES_WEBHOOK_MEMORY_MB"])
	if err != nil || mb < 26 || mb > 1<<20 {
		errs = append(errs, fmt.Errorf("FOUREYES_WEBHOOK_MEMORY_MB must be between 26 and 1048576, got %q", v["FOUREYES_WEBHOOK_MEMORY_MB"]))
	}
	c.WebhookMemory = int64(mb) << 20
	for _, d := range []struct {
		env string
		min time.Duration
		dst *time.Duration
	}{
		{"FOUREYES_RECONCILE_INTERVAL", time.Minute, &c.ReconcileInterval},
		{"FOUREYES_DETAILS_TTL", time.Hour, &c.DetailsTTL},
	} {
		dur, err := time.ParseDuration(v[d.env])
		if err != nil || dur < d.min {
			errs = append(errs, fmt.Errorf("%s must be a duration of at least %s (e.g. 10m, 2160h), got %q", d.env, d.min, v[d.env]))
		}
		*d.dst = dur
	}
	switch {
	case c.GitHubOn() && len(c.GitHubPrivateKey) == 0:
		errs = append(errs, errors.New("FOUREYES_GITHUB_APP_ID is set but FOUREYES_GITHUB_PRIVATE_KEY (or _FILE) is not"))
	case c.GitHubOn() && len(c.GitHubSecret) == 0:
		errs = append(errs, errors.New("FOUREYES_GITHUB_APP_ID is set but FOUREYES_GITHUB_WEBHOOK_SECRET is not: unsigned webhooks would be accepted"))
	case !c.GitHubOn() && (len(c.GitHubPrivateKey) > 0 || len(c.GitHubSecret) > 0):
		errs = append(errs, errors.New("GitHub private key or webhook secret is set but FOUREYES_GITHUB_APP_ID is not"))
	}
	switch {
	case c.GitLabOn() && len(c.GitLabSecret) == 0:
		errs = append(errs, errors.New("FOUREYES_GITLAB_TOKEN is set but FOUREYES_GITLAB_WEBHOOK_SECRET is not: any caller could post events"))
	case !c.GitLabOn() && len(c.GitLabSecret) > 0:
		errs = append(errs, errors.New("FOUREYES_GITLAB_WEBHOOK_SECRET is set but FOUREYES_GITLAB_TOKEN is not"))
	}
	for _, oc := range []struct{ forge, id, secret string }{
		{"GITHUB", c.GitHubClientID, c.GitHubClientSecret},
		{"GITLAB", c.GitLabClientID, c.GitLabClientSecret},
	} {
		if (oc.id == "") != (oc.secret == "") {
			errs = append(errs, fmt.Errorf("set both FOUREYES_%s_CLIENT_ID and FOUREYES_%s_CLIENT_SECRET (or _FILE), or neither", oc.forge, oc.forge))
		}
	}
	if c.GitHubClientID != "" && !c.GitHubOn() {
		errs = append(errs, errors.New("FOUREYES_GITHUB_CLIENT_ID is set but FOUREYES_GITHUB_APP_ID is not"))
	}
	if c.GitLabClientID != "" && !c.GitLabOn() {
		errs = append(errs, errors.New("FOUREYES_GITLAB_CLIENT_ID is set but FOUREYES_GITLAB_TOKEN is not"))
	}
	for name, raw := range map[string]string{"FOUREYES_PUBLIC_URL": c.PublicURL, "FOUREYES_GITHUB_API_URL": c.GitHubAPIURL, "FOUREYES_GITLAB_URL": c.GitLabURL} {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s must be an http(s) URL, got %q", name, raw))
		}
	}
	if !strings.HasPrefix(c.Database, "sqlite:") && !strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://") {
		errs = append(errs, fmt.Errorf("FOUREYES_DATABASE must be sqlite:PATH or a postgres:// URL, got %q", c.Database))
	}
	switch {
	case len(c.AuditKey) > 0 && len(c.AuditKey) < audit.MinKeyLen:
		errs = append(errs, fmt.Errorf("FOUREYES_AUDIT_KEY must be at least %d bytes (e.g. openssl rand -hex 32), got %d", audit.MinKeyLen, len(c.AuditKey)))
	case strings.Contains(string(c.AuditKey), "REPLACE_ME"):
		// The example Secret's placeholder is public: a trail keyed with
		// it can be rewritten by anyone.
		errs = append(errs, errors.New("FOUREYES_AUDIT_KEY is still the example placeholder: generate one with openssl rand -hex 32"))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("FOUREYES_LOG_FORMAT must be json or text, got %q", c.LogFormat))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("configuration: %w", errors.Join(errs...))
	}
	return c, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("FOUREYES_LOG_LEVEL must be debug, info, warn or error, got %q", s)
	}
	return l, nil
}

func newLogger(c *Config, w *os.File) *slog.Logger {
	lvl, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
