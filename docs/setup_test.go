package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/handlers"
)

// The README's set-up words, checked against the code that they describe:
// the pages' buttons, app.yml's permissions, where setup writes, the
// settings and their defaults, how to get the binary and the image.

func readRoot(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readme(t *testing.T) string {
	t.Helper()
	d := readDoc(t, filepath.Join(root, "README.md"))
	return strings.Join(d.proseLines(), "\n")
}

// buttonLabels are the labels of the buttons on the setup pages, with a
// template action standing for any text.
func buttonLabels(t *testing.T) []*regexp.Regexp {
	t.Helper()
	var out []*regexp.Regexp
	for _, page := range []string{"home.html", "create.html"} {
		src := readRoot(t, filepath.Join("handlers", "pages", page))
		for _, m := range regexp.MustCompile(`<button[^>]*>([^<]+)</button>`).FindAllStringSubmatch(src, -1) {
			parts := regexp.MustCompile(`\{\{[^}]*\}\}`).Split(m[1], -1)
			for i := range parts {
				parts[i] = regexp.QuoteMeta(parts[i])
			}
			out = append(out, regexp.MustCompile(`^`+strings.Join(parts, `.+`)+`$`))
		}
	}
	if len(out) < 2 {
		t.Fatalf("found %d buttons on the setup pages", len(out))
	}
	return out
}

func TestReadmeNamesTheButtons(t *testing.T) {
	text := readme(t)
	labels := buttonLabels(t)
	pressed := regexp.MustCompile(`press\s+\*\*([^*]+)\*\*(?:,?\s+then\s+\*\*([^*]+)\*\*)?`).FindAllStringSubmatch(text, -1)
	if len(pressed) == 0 {
		t.Fatal("README says nowhere which buttons to press")
	}
	seen := map[int]bool{}
	for _, m := range pressed {
		for _, name := range m[1:] {
			if name == "" {
				continue
			}
			name = strings.Join(strings.Fields(name), " ")
			found := false
			for i, re := range labels {
				if re.MatchString(name) {
					found, seen[i] = true, true
				}
			}
			if !found {
				t.Errorf("README says to press **%s**, which is no button of handlers/pages/home.html or create.html", name)
			}
		}
	}
	if len(seen) != len(labels) {
		t.Errorf("README names %d of the %d setup buttons", len(seen), len(labels))
	}
}

func TestReadmeListsAppPermissions(t *testing.T) {
	var m struct {
		Permissions map[string]string `yaml:"default_permissions"`
	}
	if err := yaml.Unmarshal([]byte(readRoot(t, "app.yml")), &m); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(readme(t)), " ")
	for k, v := range m.Permissions {
		if !strings.Contains(text, "`"+k+": "+v+"`") {
			t.Errorf("README does not list the permission `%s: %s` of app.yml", k, v)
		}
	}
}

func TestReadmeSaysWhereSetupWrites(t *testing.T) {
	text := strings.Join(strings.Fields(readme(t)), " ")
	setup := readRoot(t, filepath.Join("handlers", "setup.go"))
	config := readRoot(t, filepath.Join("cmd", "foureyes", "config.go"))
	if !strings.Contains(setup, `"foureyes-github-app-"`) || !strings.Contains(setup, `".pem"`) || !strings.Contains(text, "`foureyes-github-app-ID.pem`") {
		t.Error("README and handlers/setup.go disagree on the key file's name (foureyes-github-app-ID.pem)")
	}
	if !strings.Contains(config, `CredentialsFileName = "foureyes.env"`) || !strings.Contains(text, "`FOUREYES_STATE_DIR/foureyes.env`") || !strings.Contains(text, "beside it") {
		t.Error("README must say setup writes foureyes.env into FOUREYES_STATE_DIR, the key beside it, and that serve reads it (cmd/foureyes/config.go)")
	}
	if !strings.Contains(setup, `"setup_code"`) || !strings.Contains(text, "`setup_code=`") {
		t.Error("README must name the log line with the setup code (handlers/setup.go logs setup_code)")
	}
	home := readRoot(t, filepath.Join("handlers", "pages", "home.html"))
	if !regexp.MustCompile(`(?s)\{\{- if and \.GitHub \.InstallURL\}\}.*href="\{\{\.InstallURL\}\}"`).MatchString(home) || !strings.Contains(text, "the home page once the App is configured") {
		t.Error("README says the home page links the install page once configured; home.html must do so")
	}
	for _, d := range []string{"compose", "systemd", "Kubernetes"} {
		if !strings.Contains(text, "**"+d+"**") {
			t.Errorf("README's setup in the shipped deployments does not cover %s", d)
		}
	}
	if !strings.Contains(text, "register once with one replica") {
		t.Error("README must say Kubernetes registers once with one replica, then stores the credentials as a Secret")
	}
}

func TestReadmeBinaryAndImage(t *testing.T) {
	text := readme(t)
	raw := readRoot(t, "README.md")
	mod := regexp.MustCompile(`(?m)^module (\S+)$`).FindStringSubmatch(readRoot(t, "go.mod"))
	if mod == nil {
		t.Fatal("go.mod has no module line")
	}
	for _, want := range []string{"go build -o foureyes ./cmd/foureyes", "go install " + mod[1] + "/cmd/foureyes@latest", "docker build -f deploy/Dockerfile"} {
		if !strings.Contains(raw, want) {
			t.Errorf("README does not say %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "foureyes", "main.go")); err != nil {
		t.Error(err)
	}
	if !strings.Contains(text, "Nothing publishes a container image") {
		t.Error("README must say that no image is published")
	}
	// Nothing may tell people to pull an image nobody publishes.
	walk := func(dir string) error {
		return filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
				return err
			}
			b, _ := os.ReadFile(p)
			if regexp.MustCompile(`ghcr\.io/foureyes-dev/foureyes`).Match(b) {
				t.Errorf("%s names ghcr.io/foureyes-dev/foureyes, which nothing publishes", p)
			}
			return nil
		})
	}
	err := walk("deploy")
	if err == nil {
		err = walk("docs")
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "`vcs.revision`") || !strings.Contains(readRoot(t, filepath.Join("cmd", "foureyes", "buildinfo.go")), `"vcs.revision"`) {
		t.Error("README and cmd/foureyes/buildinfo.go disagree on where the commit comes from")
	}
}

// The settings this work added or changed are in the README's table, with
// (_FILE) for secrets and the code's default.
func TestReadmeSettingsOfSetupAndDetails(t *testing.T) {
	src := readRoot(t, filepath.Join("cmd", "foureyes", "config.go"))
	type setting struct {
		secret bool
		def    string
	}
	all := map[string]setting{}
	for _, m := range regexp.MustCompile(`\{"(FOUREYES_[A-Z0-9_]+)",\s*(true|false),\s*"([^"]*)"\}`).FindAllStringSubmatch(src, -1) {
		all[m[1]] = setting{m[2] == "true", m[3]}
	}
	rows := map[string]string{}
	for _, l := range strings.Split(readRoot(t, "README.md"), "\n") {
		if strings.HasPrefix(l, "| `FOUREYES_") {
			for _, m := range regexp.MustCompile("`(FOUREYES_[A-Z0-9_]+)`").FindAllStringSubmatch(l, -1) {
				rows[m[1]] = l
			}
		}
	}
	for _, name := range []string{"FOUREYES_STATE_DIR", "FOUREYES_DETAILS_TTL", "FOUREYES_DATABASE", "FOUREYES_GITHUB_CLIENT_ID", "FOUREYES_GITHUB_CLIENT_SECRET", "FOUREYES_GITLAB_CLIENT_ID", "FOUREYES_GITLAB_CLIENT_SECRET"} {
		s, ok := all[name]
		row := rows[name]
		switch {
		case !ok:
			t.Errorf("%s is not a setting of cmd/foureyes/config.go", name)
		case row == "":
			t.Errorf("README's configuration table has no row for %s", name)
		case s.secret && !strings.Contains(row, "(`_FILE`)"):
			t.Errorf("README: %s is a secret; its row must say (`_FILE`)", name)
		case s.def != "" && !strings.Contains(row, "`"+s.def+"`"):
			t.Errorf("README: the row of %s does not give the default `%s`", name, s.def)
		}
	}
}

// The sign-in callback the README tells people to register is the one the
// server serves and the setup page registers (app.yml's callback_urls).
func TestReadmeSignInCallback(t *testing.T) {
	path := handlers.SignInCallbackPath(bot.GitHub)
	text := strings.Join(strings.Fields(readme(t)), " ")
	if !strings.Contains(text, "`FOUREYES_PUBLIC_URL"+path+"`") {
		t.Errorf("README does not give the callback URL FOUREYES_PUBLIC_URL%s", path)
	}
	if !strings.Contains(readRoot(t, "app.yml"), "https://foureyes.example.com"+path) {
		t.Errorf("app.yml's callback_urls lacks %s", path)
	}
	gl := strings.Join(strings.Fields(strings.Join(readDoc(t, "gitlab.md").proseLines(), "\n")), " ")
	if !strings.Contains(gl, "`FOUREYES_PUBLIC_URL"+handlers.SignInCallbackPath(bot.GitLab)+"`") {
		t.Error("gitlab.md does not give the OAuth application's redirect URI")
	}
}
