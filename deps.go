//go:build tools

package tools

import (
	_ "github.com/bmatcuk/doublestar/v4"
	_ "github.com/bradleyfalzon/ghinstallation/v2"
	_ "github.com/chromedp/chromedp"
	_ "github.com/google/go-github/v60/github"
	_ "github.com/gorilla/mux"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "github.com/xanzy/go-gitlab"
	_ "gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"
)
