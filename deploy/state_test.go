package deploy_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// Setup writes foureyes.env and the App's key into FOUREYES_STATE_DIR and
// the server reads them at start (cmd/foureyes/config.go). Every shipped
// deployment must point it at a writable place that outlives a restart
// (compose, the image) or say what to do instead (Kubernetes).

func TestDockerfileStateDirIsTheVolume(t *testing.T) {
	var env, volume, chown string
	for _, in := range parseDockerfile(t, "Dockerfile") {
		switch in.cmd {
		case "ENV":
			env += " " + in.args
		case "VOLUME":
			volume = in.args
		case "COPY":
			if strings.Contains(in.args, "--chown=65532") && strings.HasSuffix(in.args, " /data") {
				chown = in.args
			}
		}
	}
	if !strings.Contains(env, "FOUREYES_STATE_DIR=/data") || !strings.Contains(volume, "/data") || chown == "" {
		t.Errorf("ENV %q, VOLUME %q, COPY --chown %q: want FOUREYES_STATE_DIR=/data on the volume owned by the nonroot user", env, volume, chown)
	}
}

func TestComposeStateDirIsAVolume(t *testing.T) {
	c := decodeOne[composeFile](t, "compose.yaml", false)
	fe := c.Services["foureyes"]
	dir := fe.Environment["FOUREYES_STATE_DIR"]
	if dir == "" {
		t.Fatal("compose.yaml: FOUREYES_STATE_DIR is not set (the root file system is read-only)")
	}
	mounted := false
	for _, v := range fe.Volumes {
		src, dst, _ := strings.Cut(v, ":")
		dst, _, _ = strings.Cut(dst, ":")
		if dst == dir {
			_, named := c.Volumes[src]
			mounted = named
		}
	}
	if !mounted {
		t.Errorf("compose.yaml: FOUREYES_STATE_DIR=%s is not a named volume of the foureyes service: setup could not write, or a restart would lose it", dir)
	}
}

func TestKubernetesStateDirIsWritable(t *testing.T) {
	type k8s struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Env []struct {
							Name, Value string
						} `yaml:"env"`
						VolumeMounts []struct {
							Name      string `yaml:"name"`
							MountPath string `yaml:"mountPath"`
							ReadOnly  bool   `yaml:"readOnly"`
						} `yaml:"volumeMounts"`
					} `yaml:"containers"`
					Volumes []struct {
						Name     string         `yaml:"name"`
						EmptyDir map[string]any `yaml:"emptyDir"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	d := decodeOne[k8s](t, filepath.Join("kubernetes", "deployment.yaml"), false)
	c := d.Spec.Template.Spec.Containers[0]
	dir := ""
	for _, e := range c.Env {
		if e.Name == "FOUREYES_STATE_DIR" {
			dir = e.Value
		}
	}
	vol := ""
	for _, m := range c.VolumeMounts {
		if m.MountPath == dir && !m.ReadOnly {
			vol = m.Name
		}
	}
	writable := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		writable = writable || (v.Name == vol && v.EmptyDir != nil)
	}
	if dir == "" || !writable {
		t.Errorf("deployment.yaml: FOUREYES_STATE_DIR=%q is not a writable volume mount", dir)
	}
}
