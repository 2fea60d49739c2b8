package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	gh "github.com/google/go-github/v60/github"
)

// AppCredentials is what GitHub hands back when an App manifest code is
// converted. Its fields match handlers.AppCredentials one for one, in the
// same order, so the server converts between them with a plain type
// conversion and neither package imports the other.
type AppCredentials struct {
	AppID         int64
	Slug          string
	HTMLURL       string
	PEM           string
	WebhookSecret string
	ClientID      string
	ClientSecret  string
}

// ManifestConverter completes GitHub's App manifest flow: it exchanges the
// one-time code GitHub passed to the redirect URL for the new App's
// credentials (POST /app-manifests/{code}/conversions). The call is not
// authenticated: the code is the credential.
type ManifestConverter struct {
	// Transport is the RoundTripper to use (nil: http.DefaultTransport).
	// It is used as is, without the adapter's retries: the code is single
	// use, so a retry after a lost answer would only earn a 404 and hide
	// the real error.
	Transport http.RoundTripper
}

// manifestCode is what a conversion code may look like. GitHub's codes are
// hex; anything else could rewrite the request path.
var manifestCode = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,200}$`)

// Convert exchanges code at apiURL (https://api.github.com/ or, for GitHub
// Enterprise Server, https://HOST/api/v3/; "" means github.com).
func (c ManifestConverter) Convert(ctx context.Context, apiURL, code string) (AppCredentials, error) {
	if !manifestCode.MatchString(code) || strings.Trim(code, ".") == "" {
		return AppCredentials{}, errors.New("github: malformed manifest code")
	}
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	base, err := url.Parse(apiURL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return AppCredentials{}, fmt.Errorf("github: API URL %q is not an absolute http(s) URL", apiURL)
	}
	t := c.Transport
	if t == nil {
		t = http.DefaultTransport
	}
	client := gh.NewClient(&http.Client{Transport: t})
	client.BaseURL = base
	cfg, _, err := client.Apps.CompleteAppManifest(ctx, code)
	if err != nil {
		return AppCredentials{}, fmt.Errorf("github: convert App manifest code: %w", err)
	}
	creds := AppCredentials{
		AppID:         cfg.GetID(),
		Slug:          cfg.GetSlug(),
		HTMLURL:       cfg.GetHTMLURL(),
		PEM:           cfg.GetPEM(),
		WebhookSecret: cfg.GetWebhookSecret(),
		ClientID:      cfg.GetClientID(),
		ClientSecret:  cfg.GetClientSecret(),
	}
	// Without these three the server cannot run as the App; failing here
	// says so while the user is still on the setup page.
	switch {
	case creds.AppID <= 0:
		return AppCredentials{}, errors.New("github: the manifest conversion returned no App ID")
	case creds.PEM == "":
		return AppCredentials{}, errors.New("github: the manifest conversion returned no private key")
	case creds.WebhookSecret == "":
		return AppCredentials{}, errors.New("github: the manifest conversion returned no webhook secret")
	}
	return creds, nil
}
