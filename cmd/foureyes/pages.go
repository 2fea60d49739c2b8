package main

import (
	"context"
	"fmt"

	"github.com/gorilla/mux"

	foureyes "github.com/foureyes-dev/foureyes"
	ghforge "github.com/foureyes-dev/foureyes/forge/github"
	"github.com/foureyes-dev/foureyes/handlers"
)

// mountPages adds the pages for people: the details page of a verdict and
// the home page with the GitHub App manifest flow.
func (s *server) mountPages(r *mux.Router) error {
	r.Handle("/details/{token}", handlers.DetailsHandler(s.detailsKey(), s.service, s.logger)).Methods("GET", "HEAD")
	webURL := "https://github.com"
	if s.cfg.GitHubAPIURL != "https://api.github.com/" {
		// GitHub Enterprise Server: the web root is the API host.
		webURL = gheWebURL(s.cfg.GitHubAPIURL)
	}
	mount, err := handlers.SetupHandler(handlers.SetupConfig{
		PublicURL:    s.cfg.PublicURL,
		Manifest:     foureyes.AppManifest,
		GitHubWebURL: webURL,
		GitHubAPIURL: s.cfg.GitHubAPIURL,
		Converter:    manifestConverter{},
		Configured:   func() (bool, bool) { return s.cfg.GitHubOn(), s.cfg.GitLabOn() },
		StateKey:     s.detailsKey(),
		Logger:       s.logger,
	})
	if err != nil {
		return fmt.Errorf("home page: %w", err)
	}
	mount(r)
	return nil
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
