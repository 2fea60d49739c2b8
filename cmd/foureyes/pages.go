package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"golang.org/x/oauth2"

	foureyes "github.com/foureyes-dev/foureyes"
	"github.com/foureyes-dev/foureyes/bot"
	ghforge "github.com/foureyes-dev/foureyes/forge/github"
	"github.com/foureyes-dev/foureyes/handlers"
)

// mountPages adds the pages for people: the details page of a verdict with
// its forge sign-in, and the home page with the GitHub App manifest flow.
func (s *server) mountPages(r *mux.Router) error {
	if s.cfg.CredentialsLoaded {
		s.logger.Info("read the settings the setup page wrote (the environment wins over them)", "file", s.cfg.CredentialsFile)
	}
	webURL := "https://github.com"
	if s.cfg.GitHubAPIURL != "https://api.github.com/" {
		// GitHub Enterprise Server: the web root is the API host.
		webURL = gheWebURL(s.cfg.GitHubAPIURL)
	}
	mountDetails, err := handlers.Details(handlers.DetailsConfig{
		Key:       s.detailsKey(),
		Verdicts:  s.service,
		PublicURL: s.cfg.PublicURL,
		TTL:       s.cfg.DetailsTTL,
		Forges:    s.detailsAccess(webURL),
		Logger:    s.logger,
	})
	if err != nil {
		return fmt.Errorf("details page: %w", err)
	}
	mountDetails(r)
	mount, err := handlers.SetupHandler(handlers.SetupConfig{
		PublicURL:            s.cfg.PublicURL,
		Manifest:             foureyes.AppManifest,
		GitHubWebURL:         webURL,
		GitHubAPIURL:         s.cfg.GitHubAPIURL,
		Converter:            manifestConverter{},
		CredentialsFile:      s.cfg.CredentialsFile,
		ReadsCredentialsFile: true,
		Configured:           func() (bool, bool) { return s.cfg.GitHubOn(), s.cfg.GitLabOn() },
		InstallURL:           s.installURL(),
		StateKey:             s.detailsKey(),
		Logger:               s.logger,
	})
	if err != nil {
		return fmt.Errorf("home page: %w", err)
	}
	mount(r)
	return nil
}

// detailsAccess is who may see a details page, per configured forge: the
// adapters answer visibility and access; GitHub signs viewers in with the
// App's own OAuth client, GitLab with an OAuth application when one is
// configured and is link-only otherwise (docs/gitlab.md). GitHub without
// its client shows verdicts of public repositories only.
func (s *server) detailsAccess(webURL string) map[bot.ForgeName]handlers.DetailsAccess {
	webURL = strings.TrimRight(webURL, "/")
	out := map[bot.ForgeName]handlers.DetailsAccess{}
	client := &http.Client{Timeout: 20 * time.Second}
	for name, f := range s.forges {
		acc := handlers.DetailsAccess{HTTPClient: client}
		acc.Viewers, _ = f.(bot.Viewers)
		switch name {
		case bot.GitHub:
			if s.cfg.GitHubClientID != "" {
				// "Authorizing GitHub Apps": a GitHub App takes no scopes;
				// its user tokens carry the App's permissions.
				acc.OAuth = &oauth2.Config{
					ClientID:     s.cfg.GitHubClientID,
					ClientSecret: s.cfg.GitHubClientSecret,
					Endpoint: oauth2.Endpoint{
						AuthURL:   webURL + "/login/oauth/authorize",
						TokenURL:  webURL + "/login/oauth/access_token",
						AuthStyle: oauth2.AuthStyleInParams,
					},
					RedirectURL: s.cfg.PublicURL + handlers.SignInCallbackPath(bot.GitHub),
				}
			}
		case bot.GitLab:
			if s.cfg.GitLabClientID != "" {
				// GitLab as an OAuth 2.0 provider; read_api lets foureyes
				// ask, as the viewer, whether they can see the merge request.
				acc.OAuth = &oauth2.Config{
					ClientID:     s.cfg.GitLabClientID,
					ClientSecret: s.cfg.GitLabClientSecret,
					Endpoint: oauth2.Endpoint{
						AuthURL:   s.cfg.GitLabURL + "/oauth/authorize",
						TokenURL:  s.cfg.GitLabURL + "/oauth/token",
						AuthStyle: oauth2.AuthStyleInParams,
					},
					RedirectURL: s.cfg.PublicURL + handlers.SignInCallbackPath(bot.GitLab),
					Scopes:      []string{"read_user", "read_api"},
				}
			} else {
				acc.LinkOnly = true
			}
		}
		out[name] = acc
	}
	return out
}

// installURL asks GitHub once for the App's install page, for the home
// page's link; "" until it answers.
func (s *server) installURL() func(ctx context.Context) string {
	gh, ok := s.forges[bot.GitHub].(*ghforge.Forge)
	if !ok {
		return nil
	}
	var mu sync.Mutex
	var cached string
	return func(ctx context.Context) string {
		mu.Lock()
		defer mu.Unlock()
		if cached == "" {
			u, err := gh.InstallURL(ctx)
			if err != nil {
				s.logger.WarnContext(ctx, "home page: the App's install page is unknown", "error", err)
				return ""
			}
			cached = u
		}
		return cached
	}
}

// gheWebURL turns https://HOST/api/v3/ into https://HOST.
func gheWebURL(api string) string {
	for _, suffix := range []string{"/api/v3/", "/api/v3"} {
		if len(api) > len(suffix) && api[len(api)-len(suffix):] == suffix {
			return api[:len(api)-len(suffix)]
		}
	}
	return api
}

// manifestConverter adapts the GitHub adapter's converter to the handlers'
// interface; the two credential structs have the same fields.
type manifestConverter struct{}

func (manifestConverter) Convert(ctx context.Context, apiURL, code string) (handlers.AppCredentials, error) {
	c, err := ghforge.ManifestConverter{}.Convert(ctx, apiURL, code)
	return handlers.AppCredentials(c), err
}
