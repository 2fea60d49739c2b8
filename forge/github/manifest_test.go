package github_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/foureyes-dev/foureyes/forge/github"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
)

func TestManifestConverter(t *testing.T) {
	key, _ := testKey()
	for _, prefix := range []string{"", "/api/v3"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			var opts []fakegithub.Option
			if prefix != "" {
				opts = append(opts, fakegithub.WithPrefix(prefix))
			}
			fake := fakegithub.New(appID, &key.PublicKey, opts...)
			defer fake.Close()
			ctx := context.Background()
			conv := github.ManifestConverter{Transport: fake.Client().Transport}

			// No trailing slash: the converter adds it.
			creds, err := conv.Convert(ctx, strings.TrimSuffix(fake.URL(), "/"), "c0de")
			if err != nil {
				t.Fatal(err)
			}
			app := fake.App(creds.AppID)
			if app == nil || creds.Slug != app.Slug || creds.WebhookSecret != app.WebhookSecret ||
				creds.ClientID != app.ClientID || creds.ClientSecret != app.ClientSecret || creds.PEM != app.PEM {
				t.Fatalf("creds = %+v, app = %+v", creds, app)
			}
			if !strings.HasSuffix(creds.HTMLURL, "/apps/"+app.Slug) {
				t.Errorf("HTMLURL = %q", creds.HTMLURL)
			}
			block, _ := pem.Decode([]byte(creds.PEM))
			if block == nil {
				t.Fatal("PEM does not decode")
			}
			if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
				t.Fatal(err)
			}
			// The new App can run the adapter.
			if _, err := github.New(github.Config{AppID: creds.AppID, PrivateKey: []byte(creds.PEM), APIURL: fake.URL()}); err != nil {
				t.Fatal(err)
			}

			// Codes are single use, as on GitHub.
			if _, err := conv.Convert(ctx, fake.URL(), "c0de"); err == nil {
				t.Fatal("a used code converted again")
			}
		})
	}
}

func TestManifestConverterRejects(t *testing.T) {
	ctx := context.Background()
	conv := github.ManifestConverter{}
	for _, c := range []struct{ api, code string }{
		{"https://api.github.com/", ""},
		{"https://api.github.com/", "../../user"},
		{"https://api.github.com/", "a/b"},
		{"https://api.github.com/", "a?b"},
		{"https://api.github.com/", ".."},
		{"ftp://example.com/", "abc"},
		{"/relative/", "abc"},
	} {
		if _, err := conv.Convert(ctx, c.api, c.code); err == nil {
			t.Errorf("Convert(%q, %q) succeeded", c.api, c.code)
		}
	}
}
