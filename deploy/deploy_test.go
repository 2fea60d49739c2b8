package deploy_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The tests run in deploy/; app.yml and the sources live one level up.
const root = ".."

// decodeAll decodes every document of a (multi-document) YAML file into a
// T. Empty documents (a lone "---") are skipped, except in strict mode,
// which decodes them as zero values. With strict set, a key
// that T does not know is an error: a misspelt key would otherwise be
// silently ignored by whatever reads the file.
func decodeAll[T any](t *testing.T, path string, strict bool) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(strict)
	var docs []T
	for {
		var v T
		var err error
		if strict {
			// Node.Decode ignores KnownFields, so strict files are decoded
			// straight from the stream (line numbers then point into it).
			err = dec.Decode(&v)
		} else {
			var n yaml.Node
			if err = dec.Decode(&n); err == nil {
				if len(n.Content) == 0 || n.Content[0].Tag == "!!null" {
					continue // an empty document
				}
				err = n.Decode(&v)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, v)
	}
	if len(docs) == 0 {
		t.Fatalf("%s: no YAML document", path)
	}
	return docs
}

// decodeOne decodes a file that must hold exactly one document.
func decodeOne[T any](t *testing.T, path string, strict bool) T {
	t.Helper()
	docs := decodeAll[T](t, path, strict)
	if len(docs) != 1 {
		t.Fatalf("%s: %d documents, want 1", path, len(docs))
	}
	return docs[0]
}

// yamlFiles lists every YAML file under deploy/ plus the App manifest.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	files := []string{filepath.Join(root, "app.yml")}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// settings reads the configuration keys from the settings table in
// cmd/foureyes/config.go (the only place that reads configuration), so a
// misspelt variable in a manifest is caught. The value says whether the key
// is a secret, which may (and in these manifests must) come from NAME_FILE.
func settings(t *testing.T) map[string]bool {
	t.Helper()
	path := filepath.Join(root, "cmd", "foureyes", "config.go")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`\{"(FOUREYES_[A-Z0-9_]+)",\s*(true|false),`)
	out := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		out[m[1]] = m[2] == "true"
	}
	if len(out) < 10 {
		t.Fatalf("%s: found %d settings in the settings table; has its format changed? (this test reads it)", path, len(out))
	}
	return out
}

// checkSettingName reports an unknown FOUREYES_ variable. secretsAsFiles
// also rejects a secret given by value rather than as NAME_FILE.
func checkSettingName(t *testing.T, where, name string, known map[string]bool, secretsAsFiles bool) {
	t.Helper()
	if !strings.HasPrefix(name, "FOUREYES_") {
		return
	}
	if base, ok := strings.CutSuffix(name, "_FILE"); ok && known[base] {
		return
	}
	secret, ok := known[name]
	switch {
	case !ok:
		t.Errorf("%s: unknown setting %s (see cmd/foureyes/config.go)", where, name)
	case secret && secretsAsFiles:
		t.Errorf("%s: secret %s is given by value; use %s_FILE", where, name, name)
	}
}

func TestEveryManifestParses(t *testing.T) {
	want := []string{
		"../app.yml", "Dockerfile", "compose.yaml", "systemd/foureyes.service",
		"prometheus/rules.yml", "prometheus/rules_test.yml",
		"kubernetes/kustomization.yaml", "kubernetes/deployment.yaml",
		"kubernetes/service.yaml", "kubernetes/secret.example.yaml",
		"kubernetes/prometheusrule.yaml",
	}
	for _, f := range want {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	files := yamlFiles(t)
	if len(files) < 8 {
		t.Fatalf("found only %d YAML files: %v", len(files), files)
	}
	for _, f := range files {
		docs := decodeAll[map[string]any](t, f, false)
		if filepath.Dir(f) != "kubernetes" {
			continue
		}
		for i, d := range docs {
			obj := decodeObject(t, d)
			if obj.APIVersion == "" || obj.Kind == "" {
				t.Errorf("%s: document %d lacks apiVersion or kind", f, i)
			}
			if obj.Kind != "Kustomization" && obj.Metadata.Name == "" {
				t.Errorf("%s: %s without metadata.name", f, obj.Kind)
			}
			if obj.Metadata.Namespace != "" {
				t.Errorf("%s: %s sets a namespace; kustomization.yaml sets it for all", f, obj.Kind)
			}
		}
	}
}

type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
}

func decodeObject(t *testing.T, doc map[string]any) object {
	t.Helper()
	raw, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var o object
	if err := yaml.Unmarshal(raw, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

// --- app.yml ----------------------------------------------------------------

type appManifest struct {
	Name           string `yaml:"name"`
	URL            string `yaml:"url"`
	Description    string `yaml:"description"`
	HookAttributes struct {
		URL    string `yaml:"url"`
		Active *bool  `yaml:"active"`
	} `yaml:"hook_attributes"`
	RedirectURL           string            `yaml:"redirect_url"`
	CallbackURLs          []string          `yaml:"callback_urls"`
	SetupURL              string            `yaml:"setup_url"`
	Public                *bool             `yaml:"public"`
	DefaultPermissions    map[string]string `yaml:"default_permissions"`
	DefaultEvents         []string          `yaml:"default_events"`
	RequestOAuthOnInstall bool              `yaml:"request_oauth_on_install"`
	SetupOnUpdate         bool              `yaml:"setup_on_update"`
}

func TestAppManifest(t *testing.T) {
	path := filepath.Join(root, "app.yml")
	m := decodeOne[appManifest](t, path, true)

	// The least that works. merge_queues: read is not optional: GitHub
	// delivers merge_group events only to Apps holding it.
	wantPerms := map[string]string{
		"checks":        "write",
		"pull_requests": "read",
		"contents":      "read",
		"issues":        "write",
		"members":       "read",
		"metadata":      "read",
		"merge_queues":  "read",
	}
	if !maps.Equal(m.DefaultPermissions, wantPerms) {
		t.Errorf("default_permissions = %v, want exactly %v", m.DefaultPermissions, wantPerms)
	}
	for _, p := range []string{"contents", "administration"} {
		if v := m.DefaultPermissions[p]; v == "write" || v == "admin" {
			t.Errorf("default_permissions.%s = %s: foureyes must never write code or settings", p, v)
		}
	}
	for p, v := range m.DefaultPermissions {
		if v != "read" && v != "write" {
			t.Errorf("default_permissions.%s = %q, want read or write", p, v)
		}
	}

	// Each event GitHub only sends with a permission: the permission it needs.
	wantEvents := map[string]string{
		"pull_request":        "pull_requests",
		"pull_request_review": "pull_requests",
		"push":                "contents",
		"check_run":           "checks",
		"check_suite":         "checks",
		"merge_group":         "merge_queues",
		// GitHub delivers comments on pull requests as issue_comment, to
		// Apps with the Issues permission (webhook events docs).
		"issue_comment": "issues",
	}
	seen := map[string]bool{}
	for _, e := range m.DefaultEvents {
		if seen[e] {
			t.Errorf("default_events lists %s twice", e)
		}
		seen[e] = true
		perm, ok := wantEvents[e]
		if !ok {
			t.Errorf("default_events: unexpected event %s", e)
			continue
		}
		if m.DefaultPermissions[perm] == "" {
			t.Errorf("event %s needs the %s permission", e, perm)
		}
	}
	for e := range wantEvents {
		if !seen[e] {
			t.Errorf("default_events lacks %s", e)
		}
	}

	if !strings.HasPrefix(m.HookAttributes.URL, "https://") || !strings.HasSuffix(m.HookAttributes.URL, "/webhooks/github") {
		t.Errorf("hook_attributes.url = %q, want https://…/webhooks/github", m.HookAttributes.URL)
	}
	if m.HookAttributes.Active == nil || !*m.HookAttributes.Active {
		t.Error("hook_attributes.active must be true")
	}
	if !strings.HasPrefix(m.RedirectURL, "https://") {
		t.Errorf("redirect_url = %q, want an https placeholder", m.RedirectURL)
	}
	if m.Public == nil || *m.Public {
		t.Error("public must be set to false")
	}
	if m.Name == "" || m.Description == "" || !strings.HasPrefix(m.URL, "https://") {
		t.Errorf("name, description and an https url are required: %q, %q, %q", m.Name, m.Description, m.URL)
	}
	if len(m.Name) > 34 {
		t.Errorf("name %q is longer than GitHub's 34 characters", m.Name)
	}
}

// --- Dockerfile ---------------------------------------------------------------

type instruction struct {
	cmd, args string
	line      int
}

// parseDockerfile returns the instructions, with continuation lines joined
// and comments dropped.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, l := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		body, cont := strings.CutSuffix(trimmed, "\\")
		cur.WriteString(body + " ")
		if cont {
			continue
		}
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.Join(strings.Fields(args), " "), start})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("%s: ends inside a continued line", path)
	}
	return out
}

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "Dockerfile")
	args := map[string]string{} // ARG defaults declared before the first FROM
	type stage struct {
		image string
		ins   []instruction
	}
	var stages []stage
	for _, in := range ins {
		switch {
		case in.cmd == "ARG" && len(stages) == 0:
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			img := os.Expand(f[0], func(k string) string { return args[k] })
			stages = append(stages, stage{image: img})
		case len(stages) == 0:
			t.Errorf("Dockerfile:%d: %s before the first FROM", in.line, in.cmd)
		default:
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a multi-stage build", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(build.image, "golang:1.26") {
		t.Errorf("builder image = %q, want golang:1.26", build.image)
	}
	all := func(s stage, cmd string) []string {
		var v []string
		for _, in := range s.ins {
			if in.cmd == cmd {
				v = append(v, in.args)
			}
		}
		return v
	}
	buildText := strings.Join(append(all(build, "ENV"), all(build, "RUN")...), "\n")
	if !regexp.MustCompile(`\bCGO_ENABLED=0\b`).MatchString(buildText) {
		t.Error("builder stage does not set CGO_ENABLED=0")
	}
	var goBuild string
	for _, r := range all(build, "RUN") {
		if strings.Contains(r, "go build") {
			goBuild = r
		}
	}
	for _, want := range []string{"-trimpath", "-s -w", "-X main.version=", "./cmd/foureyes"} {
		if !strings.Contains(goBuild, want) {
			t.Errorf("go build command lacks %q: %q", want, goBuild)
		}
	}
	// -X silently ignores a variable that does not exist: check main has it.
	mainSrc, err := os.ReadFile(filepath.Join(root, "cmd", "foureyes", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`-X main\.(\w+)=`).FindAllStringSubmatch(goBuild, -1) {
		if !regexp.MustCompile(`(?m)^\s*(var\s+)?` + m[1] + `\s*(string\s*)?=`).Match(mainSrc) {
			t.Errorf("-X main.%s: cmd/foureyes/main.go has no such variable", m[1])
		}
	}

	// Non-root: an explicit non-root USER, or distroless's nonroot default.
	users := all(final, "USER")
	switch {
	case len(users) > 0:
		u := users[len(users)-1]
		if name, _, _ := strings.Cut(u, ":"); name == "root" || name == "0" {
			t.Errorf("final stage runs as %q", u)
		}
	case !strings.HasSuffix(final.image, ":nonroot"):
		t.Errorf("final stage %q has no USER and is not a nonroot image", final.image)
	}
	if !strings.HasPrefix(final.image, "gcr.io/distroless/static") && final.image != "scratch" {
		t.Errorf("final image = %q, want distroless static or scratch", final.image)
	}
	if e := all(final, "EXPOSE"); !slices.Contains(e, "8080") {
		t.Errorf("EXPOSE = %v, want 8080", e)
	}
	if v := strings.Join(all(final, "VOLUME"), " "); !strings.Contains(v, `"/data"`) && !strings.Contains(v, " /data") && v != "/data" {
		t.Errorf("VOLUME = %q, want /data", v)
	}
	if env := strings.Join(all(final, "ENV"), " "); !strings.Contains(env, "FOUREYES_DATABASE=sqlite:/data/") {
		t.Errorf("ENV = %q, want FOUREYES_DATABASE=sqlite:/data/…", env)
	}
	execForm := func(cmd string, want []string) {
		v := all(final, cmd)
		if len(v) != 1 {
			t.Errorf("final stage has %d %s, want 1", len(v), cmd)
			return
		}
		var got []string
		if err := json.Unmarshal([]byte(v[0]), &got); err != nil || !slices.Equal(got, want) {
			t.Errorf("%s %s, want the exec form %q", cmd, v[0], want)
		}
	}
	execForm("ENTRYPOINT", []string{"/foureyes"})
	execForm("CMD", []string{"serve"})
}

// --- systemd ------------------------------------------------------------------

// parseUnit reads a systemd unit: section -> key -> values, in order.
func parseUnit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unit := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[' && l[len(l)-1] == ']':
			section = l[1 : len(l)-1]
			unit[section] = map[string][]string{}
		case section == "":
			t.Fatalf("%s:%d: setting outside a section", path, n)
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || strings.HasSuffix(l, "\\") {
				t.Fatalf("%s:%d: not KEY=VALUE on one line: %q", path, n, l)
			}
			k = strings.TrimSpace(k)
			unit[section][k] = append(unit[section][k], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return unit
}

func TestSystemdUnit(t *testing.T) {
	const path = "systemd/foureyes.service"
	u := parseUnit(t, path)
	svc := u["Service"]
	if svc == nil || u["Unit"] == nil || u["Install"] == nil {
		t.Fatalf("%s: needs [Unit], [Service] and [Install]", path)
	}
	one := func(k string) string {
		if len(svc[k]) == 0 {
			return ""
		}
		return svc[k][len(svc[k])-1] // the last assignment wins
	}
	hardening := map[string]string{
		"NoNewPrivileges":       "yes",
		"ProtectSystem":         "strict",
		"ProtectHome":           "yes",
		"PrivateTmp":            "yes",
		"PrivateDevices":        "yes",
		"ProtectKernelTunables": "yes",
		"ProtectKernelModules":  "yes",
		"ProtectKernelLogs":     "yes",
		"ProtectControlGroups":  "yes",
		"RestrictNamespaces":    "yes",
		"RestrictRealtime":      "yes",
		"RestrictSUIDSGID":      "yes",
		"LockPersonality":       "yes",
		"CapabilityBoundingSet": "",
		"StateDirectory":        "foureyes",
		"Restart":               "on-failure",
	}
	for k, want := range hardening {
		if len(svc[k]) == 0 || one(k) != want {
			t.Errorf("[Service] %s=%q, want %q", k, one(k), want)
		}
	}
	for _, k := range []string{"RestrictAddressFamilies", "SystemCallFilter", "SystemCallArchitectures"} {
		if one(k) == "" {
			t.Errorf("[Service] lacks %s", k)
		}
	}
	if one("DynamicUser") != "yes" {
		if user := one("User"); user == "" || user == "root" || user == "0" {
			t.Errorf("[Service] needs DynamicUser=yes or a non-root User=, got User=%q", user)
		}
	}
	if !strings.Contains(one("ExecStart"), "foureyes serve") {
		t.Errorf("ExecStart=%q, want … foureyes serve", one("ExecStart"))
	}
	stop := one("TimeoutStopSec")
	if _, err := strconv.Atoi(stop); err == nil {
		stop += "s"
	}
	if d, err := time.ParseDuration(stop); err != nil || d <= 15*time.Second {
		t.Errorf("TimeoutStopSec=%q, want more than the server's 15 s shutdown", one("TimeoutStopSec"))
	}
	if ef := one("EnvironmentFile"); strings.TrimPrefix(ef, "-") != "/etc/foureyes/env" {
		t.Errorf("EnvironmentFile=%q, want /etc/foureyes/env", ef)
	}

	env := map[string]string{}
	for _, line := range svc["Environment"] {
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	if env["FOUREYES_DATABASE"] != "sqlite:/var/lib/foureyes/foureyes.db" {
		t.Errorf("FOUREYES_DATABASE=%q, want sqlite:/var/lib/foureyes/foureyes.db (the StateDirectory)", env["FOUREYES_DATABASE"])
	}
	known := settings(t)
	// The setup page writes the App's secrets into the state directory,
	// which must be the StateDirectory (mode 0700, this service's only).
	if env["FOUREYES_STATE_DIR"] != "/var/lib/foureyes" {
		t.Errorf("FOUREYES_STATE_DIR=%q, want /var/lib/foureyes (the StateDirectory, where setup writes the credentials)", env["FOUREYES_STATE_DIR"])
	}
	if one("StateDirectoryMode") != "0700" {
		t.Errorf("StateDirectoryMode=%q, want 0700: it holds the App's key", one("StateDirectoryMode"))
	}
	// The LoadCredential=/Environment= pairs for an existing App are
	// commented out by default (a missing file would stop the unit);
	// they are checked as if active: one day someone uncomments them.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lcs := slices.Clone(svc["LoadCredential"])
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "#LoadCredential="); ok {
			lcs = append(lcs, v)
		}
		if v, ok := strings.CutPrefix(line, "#Environment="); ok {
			k, val, _ := strings.Cut(v, "=")
			env[k] = val
		}
	}
	creds := map[string]bool{}
	for _, lc := range lcs {
		id, src, ok := strings.Cut(lc, ":")
		if !ok || !filepath.IsAbs(src) {
			t.Errorf("LoadCredential=%q, want ID:/absolute/path", lc)
		}
		creds[id] = false
	}
	if _, ok := creds["github-private-key"]; !ok {
		t.Error("no LoadCredential= for the GitHub App's key: secrets must not sit in the environment file")
	}
	for k, v := range env {
		if k == "FOUREYES_DATABASE" && strings.HasPrefix(v, "sqlite:") {
			continue // a file path, no password: fine by value
		}
		checkSettingName(t, path, k, known, true)
		if !strings.HasSuffix(k, "_FILE") {
			continue
		}
		id, ok := strings.CutPrefix(v, "%d/")
		if !ok {
			id, ok = strings.CutPrefix(v, "${CREDENTIALS_DIRECTORY}/")
		}
		if _, loaded := creds[id]; !ok || !loaded {
			t.Errorf("%s=%s: want %%d/ID of a LoadCredential=", k, v)
			continue
		}
		creds[id] = true
	}
	for id, used := range creds {
		if !used {
			t.Errorf("LoadCredential %s is loaded but no *_FILE variable reads it", id)
		}
	}
	if !slices.Contains(u["Install"]["WantedBy"], "multi-user.target") {
		t.Error("[Install] WantedBy=multi-user.target missing")
	}
	if !slices.Contains(u["Unit"]["After"], "network-online.target") {
		t.Error("[Unit] After=network-online.target missing")
	}
}

// --- compose ------------------------------------------------------------------

type composeFile struct {
	Name     string `yaml:"name"`
	Services map[string]struct {
		Image string `yaml:"image"`
		Build *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		DependsOn map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		User        string            `yaml:"user"`
		ReadOnly    bool              `yaml:"read_only"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func TestCompose(t *testing.T) {
	c := decodeOne[composeFile](t, "compose.yaml", false)
	pg, ok := c.Services["postgres"]
	if !ok {
		t.Fatal("compose.yaml: no postgres service")
	}
	fe, ok := c.Services["foureyes"]
	if !ok {
		t.Fatal("compose.yaml: no foureyes service")
	}
	if !strings.HasPrefix(pg.Image, "postgres:16") {
		t.Errorf("postgres image = %q, want postgres:16", pg.Image)
	}
	if pg.Healthcheck == nil || len(pg.Healthcheck.Test) == 0 {
		t.Error("postgres has no healthcheck")
	}
	if fe.DependsOn["postgres"].Condition != "service_healthy" {
		t.Error("foureyes must depend on postgres with condition service_healthy")
	}
	if fe.Build == nil || fe.Build.Dockerfile != "deploy/Dockerfile" || filepath.Clean(fe.Build.Context) != ".." {
		t.Error("foureyes must build from the repository root with deploy/Dockerfile")
	}
	if db := fe.Environment["FOUREYES_DATABASE"]; !strings.HasPrefix(db, "postgres://") || !strings.Contains(db, "@postgres:5432/") {
		t.Errorf("FOUREYES_DATABASE = %q, want a postgres:// URL to the postgres service", db)
	}
	known := settings(t)
	for k := range fe.Environment {
		checkSettingName(t, "compose.yaml", k, known, false)
	}
	if u, _, _ := strings.Cut(fe.User, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("foureyes user = %q, want non-root", fe.User)
	}
	if !fe.ReadOnly {
		t.Error("foureyes should run with read_only: true")
	}
	used := 0
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				continue
			}
			used++
			if _, ok := c.Volumes[src]; !ok {
				t.Errorf("service %s uses volume %q, not declared under volumes:", name, src)
			}
		}
	}
	if used == 0 {
		t.Error("no named volume holds the database")
	}
}

// --- Kubernetes -----------------------------------------------------------------

type probe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"`
	} `yaml:"httpGet"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
	SecurityContext *struct {
		AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
		RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
		RunAsUser                *int64 `yaml:"runAsUser"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
}

type deployment struct {
	object `yaml:",inline"`
	Spec   struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				SecurityContext *struct {
					RunAsNonRoot *bool  `yaml:"runAsNonRoot"`
					RunAsUser    *int64 `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []container `yaml:"containers"`
				Volumes    []struct {
					Name   string `yaml:"name"`
					Secret *struct {
						SecretName string `yaml:"secretName"`
						Items      []struct {
							Key  string `yaml:"key"`
							Path string `yaml:"path"`
						} `yaml:"items"`
					} `yaml:"secret"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type service struct {
	object `yaml:",inline"`
	Spec   struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string    `yaml:"name"`
			Port       int       `yaml:"port"`
			TargetPort yaml.Node `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type serviceMonitor struct {
	object `yaml:",inline"`
	Spec   struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Endpoints []struct {
			Port string `yaml:"port"`
			Path string `yaml:"path"`
		} `yaml:"endpoints"`
	} `yaml:"spec"`
}

type secret struct {
	object     `yaml:",inline"`
	Type       string            `yaml:"type"`
	StringData map[string]string `yaml:"stringData"`
	Data       map[string]string `yaml:"data"`
}

type configMap struct {
	object `yaml:",inline"`
	Data   map[string]string `yaml:"data"`
}

type kustomization struct {
	object    `yaml:",inline"`
	Namespace string   `yaml:"namespace"`
	Resources []string `yaml:"resources"`
}

func subset(sub, of map[string]string) bool {
	if len(sub) == 0 {
		return false
	}
	for k, v := range sub {
		if of[k] != v {
			return false
		}
	}
	return true
}

// portMatches reports whether a probe or Service port (a name or a number)
// names one of the container's ports.
func portMatches(n yaml.Node, c container) bool {
	for _, p := range c.Ports {
		if n.Value == p.Name || n.Value == strconv.Itoa(p.ContainerPort) {
			return true
		}
	}
	return false
}

func TestKubernetes(t *testing.T) {
	const dir = "kubernetes"
	k := decodeOne[kustomization](t, filepath.Join(dir, "kustomization.yaml"), false)
	if k.Kind != "Kustomization" || k.Namespace == "" {
		t.Errorf("kustomization.yaml: kind %q namespace %q", k.Kind, k.Namespace)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		listed := slices.Contains(k.Resources, name)
		switch {
		case filepath.Ext(name) != ".yaml" || name == "kustomization.yaml":
		case name == "secret.example.yaml":
			if listed {
				t.Error("kustomization.yaml lists secret.example.yaml: applying it would overwrite the real Secret with placeholders")
			}
		case !listed:
			t.Errorf("kustomization.yaml does not list %s", name)
		}
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(dir, r)); err != nil {
			t.Errorf("kustomization.yaml lists %s: %v", r, err)
		}
	}

	d := decodeOne[deployment](t, filepath.Join(dir, "deployment.yaml"), false)
	svc := decodeOne[service](t, filepath.Join(dir, "service.yaml"), false)
	sm := decodeOne[serviceMonitor](t, filepath.Join(dir, "servicemonitor.yaml"), false)
	sec := decodeOne[secret](t, filepath.Join(dir, "secret.example.yaml"), false)
	cm := decodeOne[configMap](t, filepath.Join(dir, "configmap.yaml"), false)
	for _, o := range []struct{ got, want string }{
		{d.Kind, "Deployment"}, {d.APIVersion, "apps/v1"}, {svc.Kind, "Service"},
		{sm.Kind, "ServiceMonitor"}, {sec.Kind, "Secret"}, {cm.Kind, "ConfigMap"},
	} {
		if o.got != o.want {
			t.Errorf("kind/apiVersion %q, want %q", o.got, o.want)
		}
	}

	// Pod and container hardening.
	pod := d.Spec.Template.Spec
	if !subset(d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
		t.Error("Deployment selector does not match its pod labels")
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || (sc.RunAsUser != nil && *sc.RunAsUser == 0) {
		t.Error("pod securityContext must set runAsNonRoot: true and a non-zero runAsUser")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("Deployment has %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if sc := c.SecurityContext; sc == nil ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		!slices.Contains(sc.Capabilities.Drop, "ALL") ||
		(sc.RunAsUser != nil && *sc.RunAsUser == 0) {
		t.Error("container securityContext must set readOnlyRootFilesystem: true, allowPrivilegeEscalation: false and drop ALL capabilities")
	}
	for _, p := range []struct {
		name string
		pr   *probe
		path string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		switch {
		case p.pr == nil || p.pr.HTTPGet == nil:
			t.Errorf("%s probe: want httpGet %s", p.name, p.path)
		case p.pr.HTTPGet.Path != p.path:
			t.Errorf("%s probe path = %q, want %s", p.name, p.pr.HTTPGet.Path, p.path)
		case !portMatches(p.pr.HTTPGet.Port, c):
			t.Errorf("%s probe port %q is not a container port", p.name, p.pr.HTTPGet.Port.Value)
		}
	}
	for _, res := range []struct {
		name string
		m    map[string]string
	}{{"requests", c.Resources.Requests}, {"limits", c.Resources.Limits}} {
		if res.m["cpu"] == "" || res.m["memory"] == "" {
			t.Errorf("resources.%s must set cpu and memory, got %v", res.name, res.m)
		}
	}
	if !slices.Contains(c.Args, "serve") {
		t.Errorf("container args %v, want serve", c.Args)
	}

	// Configuration: secrets as files from the Secret, the database URL
	// from the Secret, every name a known setting.
	known := settings(t)
	secretKeys := map[string]bool{}
	for k := range sec.StringData {
		secretKeys[k] = true
	}
	for k := range sec.Data {
		secretKeys[k] = true
	}
	mounts := map[string]string{} // volume name -> mount path
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	secretFiles := map[string]string{} // path of each file the Secret volume provides -> its key
	for _, v := range pod.Volumes {
		if v.Secret == nil {
			continue
		}
		if v.Secret.SecretName != sec.Metadata.Name {
			t.Errorf("volume %s mounts Secret %q, the example is %q", v.Name, v.Secret.SecretName, sec.Metadata.Name)
		}
		mp, ok := mounts[v.Name]
		if !ok {
			t.Errorf("secret volume %s is not mounted", v.Name)
		}
		if len(v.Secret.Items) == 0 {
			t.Errorf("secret volume %s: list its items, so a missing key fails loudly", v.Name)
		}
		for _, it := range v.Secret.Items {
			if !secretKeys[it.Key] {
				t.Errorf("secret volume %s: key %s is not in secret.example.yaml", v.Name, it.Key)
			}
			secretFiles[filepath.Join(mp, it.Path)] = it.Key
		}
	}
	env := map[string]bool{}
	dbFromSecret := false
	for _, e := range c.Env {
		env[e.Name] = true
		checkSettingName(t, "deployment.yaml", e.Name, known, true)
		key, isSecretFile := secretFiles[e.Value]
		if strings.HasSuffix(e.Name, "_FILE") && !isSecretFile {
			t.Errorf("%s=%s is not a file of the mounted Secret", e.Name, e.Value)
		}
		// The database URL carries PostgreSQL's password: it is read from
		// the mounted Secret's file, as the manifest says.
		if e.Name == "FOUREYES_DATABASE_FILE" && isSecretFile {
			dbFromSecret = true
			if v := sec.StringData[key]; !strings.HasPrefix(v, "postgres://") {
				t.Errorf("secret.example.yaml %s = %q, want a postgres:// URL", key, v)
			}
		}
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != sec.Metadata.Name || !secretKeys[ref.Key] {
				t.Errorf("%s: secretKeyRef %s/%s is not in secret.example.yaml", e.Name, ref.Name, ref.Key)
			}
		}
		if v := e.Value; e.Name == "FOUREYES_LISTEN" && v != ":"+strconv.Itoa(c.Ports[0].ContainerPort) {
			t.Errorf("FOUREYES_LISTEN=%q does not match containerPort %d", v, c.Ports[0].ContainerPort)
		}
	}
	if !dbFromSecret {
		t.Error("FOUREYES_DATABASE must come from a file of the mounted Secret (FOUREYES_DATABASE_FILE)")
	}
	if d.Spec.Replicas != nil && *d.Spec.Replicas > 1 && !dbFromSecret {
		t.Error("more than one replica needs PostgreSQL")
	}
	for name, secretSetting := range known {
		if secretSetting && !env[name+"_FILE"] {
			t.Errorf("deployment.yaml: %s_FILE is not set; every secret comes from the mounted Secret", name)
		}
	}
	for _, ef := range c.EnvFrom {
		if ef.SecretRef != nil {
			t.Error("envFrom secretRef puts secrets in the environment; mount them as files")
		}
		if ef.ConfigMapRef != nil && ef.ConfigMapRef.Name != cm.Metadata.Name {
			t.Errorf("envFrom configMapRef %q, the ConfigMap is %q", ef.ConfigMapRef.Name, cm.Metadata.Name)
		}
	}
	for k := range cm.Data {
		checkSettingName(t, "configmap.yaml", k, known, true)
	}

	// The example Secret holds placeholders only.
	raw, err := os.ReadFile(filepath.Join(dir, "secret.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "EXAMPLE") {
		t.Error("secret.example.yaml must say plainly that it is an example")
	}
	for k, v := range sec.StringData {
		if v != "" && !strings.Contains(v, "REPLACE_ME") {
			t.Errorf("secret.example.yaml %s holds a value that is not a REPLACE_ME placeholder", k)
		}
	}
	if len(sec.Data) > 0 {
		t.Error("secret.example.yaml: use stringData so the placeholders are readable")
	}

	// Service and ServiceMonitor reach the pods' http port.
	if !subset(svc.Spec.Selector, d.Spec.Template.Metadata.Labels) {
		t.Error("Service selector does not match the pod labels")
	}
	if len(svc.Spec.Ports) == 0 || !portMatches(svc.Spec.Ports[0].TargetPort, c) {
		t.Error("Service targetPort is not a container port")
	}
	if !subset(sm.Spec.Selector.MatchLabels, svc.Metadata.Labels) {
		t.Error("ServiceMonitor selector does not match the Service's labels")
	}
	if len(sm.Spec.Endpoints) == 0 || len(svc.Spec.Ports) == 0 ||
		sm.Spec.Endpoints[0].Port != svc.Spec.Ports[0].Name || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Error("ServiceMonitor must scrape the Service's named port at /metrics")
	}
}

// TestKustomizeBuild renders the kustomization when kubectl is installed.
func TestKustomizeBuild(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	out, err := exec.Command(kubectl, "kustomize", "kubernetes").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, out)
	}
	for _, kind := range []string{"Namespace", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule"} {
		if !strings.Contains(string(out), "\nkind: "+kind+"\n") {
			t.Errorf("kustomize output has no %s", kind)
		}
	}
}
