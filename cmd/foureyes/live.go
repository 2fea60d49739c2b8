package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	ghforge "github.com/foureyes-dev/foureyes/forge/github"
	glforge "github.com/foureyes-dev/foureyes/forge/gitlab"
	"github.com/foureyes-dev/foureyes/policies"
	"github.com/foureyes-dev/foureyes/release"
	"github.com/foureyes-dev/foureyes/store"
)

// What `scan` and a live `explain` share: they read a forge with the
// server's configured credentials and judge with the server's stored
// facts, publishing nothing.

// liveForge is an adapter as the read-only commands use it.
type liveForge interface {
	bot.Forge
	release.ScanForge
	// ResolveRepo reads a repository named on the command line (on
	// GitHub: through the App's installation on it).
	ResolveRepo(ctx context.Context, fullName string) (bot.Repo, error)
}

var (
	_ liveForge = (*ghforge.Forge)(nil)
	_ liveForge = (*glforge.Forge)(nil)
)

// liveEnv is how a read-only command reaches the world; tests replace the
// clock, the sleep and the rate-limit threshold.
type liveEnv struct {
	getenv func(string) string
	// lowBudget: below this many requests left, wait for the reset.
	lowBudget int
	sleep     func(ctx context.Context, d time.Duration) error
	now       func() time.Time
	// isTTY says whether stderr is a terminal (the progress bar).
	isTTY func(w io.Writer) bool
}

func defaultLiveEnv() liveEnv {
	return liveEnv{getenv: os.Getenv, lowBudget: defaultLowBudget, sleep: sleepCtx, now: time.Now, isTTY: isTerminal}
}

// liveSetup is an opened forge, store and default policy.
type liveSetup struct {
	cfg     *Config
	forge   liveForge
	name    bot.ForgeName
	db      *store.DB
	def     *bot.PolicyFile
	budget  *budgetTransport
	counter *countingTransport
}

func (s *liveSetup) close() {
	if s.db != nil {
		s.db.Close()
	}
}

// openLive loads the configuration, opens the store (for the facts the
// server recorded) and the forge named by forgeName ("" = the one that is
// configured; GitHub when both are).
func openLive(ctx context.Context, env liveEnv, configFile, database, forgeName string, stderr io.Writer) (*liveSetup, error) {
	cfg, err := LoadConfig(configFile, env.getenv)
	if err != nil {
		return nil, err
	}
	if forgeName == "" {
		switch {
		case cfg.GitHubOn():
			forgeName = string(bot.GitHub)
		case cfg.GitLabOn():
			forgeName = string(bot.GitLab)
		default:
			return nil, errors.New("no forge is configured: set FOUREYES_GITHUB_APP_ID (and its key) or FOUREYES_GITLAB_TOKEN")
		}
	}
	s := &liveSetup{cfg: cfg, name: bot.ForgeName(forgeName)}
	s.counter = &countingTransport{next: http.DefaultTransport}
	s.budget = &budgetTransport{next: s.counter, low: env.lowBudget, out: stderr, now: env.now, sleep: env.sleep}
	logger := slog.New(slog.DiscardHandler)
	switch s.name {
	case bot.GitHub:
		if !cfg.GitHubOn() {
			return nil, errors.New("--forge github: the GitHub App is not configured (FOUREYES_GITHUB_APP_ID, FOUREYES_GITHUB_PRIVATE_KEY)")
		}
		gh, err := ghforge.New(ghforge.Config{
			AppID: cfg.GitHubAppID, PrivateKey: cfg.GitHubPrivateKey, APIURL: cfg.GitHubAPIURL,
			Transport: s.budget, Logger: logger, Sleep: env.sleep,
			// The budget transport waits for rate-limit resets itself; the
			// adapter's own retries are for 5xx answers.
		})
		if err != nil {
			return nil, fmt.Errorf("github: %w", err)
		}
		s.forge = gh
	case bot.GitLab:
		if !cfg.GitLabOn() {
			return nil, errors.New("--forge gitlab: GitLab is not configured (FOUREYES_GITLAB_TOKEN)")
		}
		gl, err := glforge.New(glforge.Config{BaseURL: cfg.GitLabURL, Token: cfg.GitLabToken, Transport: s.budget, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("gitlab: %w", err)
		}
		s.forge = gl
	default:
		return nil, fmt.Errorf("%w: --forge must be github or gitlab, got %q", errUsage, forgeName)
	}
	if cfg.DefaultPolicyFile != "" {
		data, err := os.ReadFile(cfg.DefaultPolicyFile)
		if err != nil {
			return nil, fmt.Errorf("FOUREYES_DEFAULT_POLICY_FILE: %w", err)
		}
		if _, err := policies.Parse(cfg.DefaultPolicyFile, data); err != nil {
			return nil, fmt.Errorf("FOUREYES_DEFAULT_POLICY_FILE is invalid:\n%w", err)
		}
		s.def = &bot.PolicyFile{Source: cfg.DefaultPolicyFile, Data: data, Found: true}
	}
	dsn := database
	if dsn == "" {
		dsn = cfg.Database
	}
	if s.db, err = store.Open(ctx, dsn, logger); err != nil {
		return nil, fmt.Errorf("open database (the facts the server recorded): %w", err)
	}
	return s, nil
}

// readPolicyFile reads a candidate policy file for --policy; it must parse.
// openLiveRepo is what scan and live explain both start with: the optional
// candidate policy (read first, so a typo costs no forge request), the
// configured forge and store, and the repository resolved on the forge.
// The caller closes the setup.
func openLiveRepo(ctx context.Context, env liveEnv, configFile, database, forgeName, repoName, policyFile string, stderr io.Writer) (*liveSetup, bot.Repo, *bot.PolicyFile, error) {
	var candidate *bot.PolicyFile
	if policyFile != "" {
		var err error
		if candidate, err = readPolicyFile(policyFile); err != nil {
			return nil, bot.Repo{}, nil, err
		}
	}
	ls, err := openLive(ctx, env, configFile, database, forgeName, stderr)
	if err != nil {
		return nil, bot.Repo{}, nil, err
	}
	repo, err := ls.forge.ResolveRepo(ctx, repoName)
	if err != nil {
		ls.close()
		return nil, bot.Repo{}, nil, err
	}
	return ls, repo, candidate, nil
}

func readPolicyFile(path string) (*bot.PolicyFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	if _, err := policies.Parse(path, data); err != nil {
		return nil, fmt.Errorf("policy %s is invalid:\n%w", path, err)
	}
	return &bot.PolicyFile{Source: path, Data: data, Found: true}, nil
}

// asExit2 turns an error of a read-only command into exit status 2 (its
// own statuses 0 and 1 are verdicts): usage errors and explicit statuses
// pass through.
func asExit2(err error, stderr io.Writer) error {
	var (
		ee exitError
		hr *helpRequest
	)
	if err == nil || errors.As(err, &ee) || errors.As(err, &hr) || errors.Is(err, errUsage) {
		return err
	}
	fmt.Fprintln(stderr, "foureyes:", strings.TrimSpace(err.Error()))
	return exitError(2)
}
