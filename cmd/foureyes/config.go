package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
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
}

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
	{"FOUREYES_DATABASE", false, "sqlite:foureyes.db"},
	{"FOUREYES_LOG_LEVEL", false, "info"},
	{"FOUREYES_LOG_FORMAT", false, "json"},
	{"FOUREYES_GITHUB_APP_ID", false, ""},
	{"FOUREYES_GITHUB_PRIVATE_KEY", true, ""},
	{"FOUREYES_GITHUB_WEBHOOK_SECRET", true, ""},
	{"FOUREYES_GITHUB_API_URL", false, "https://api.github.com/"},
	{"FOUREYES_GITLAB_URL", false, "https://gitlab.com"},
	{"FOUREYES_GITLAB_TOKEN", true, ""},
	{"FOUREYES_GITLAB_WEBHOOK_SECRET", true, ""},
	{"FOUREYES_DEFAULT_POLICY_FILE", false, ""},
	{"FOUREYES_DETAILS_KEY", true, ""},
	{"FOUREYES_WORKERS", false, "4"},
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
	return buildConfig(vals)
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
