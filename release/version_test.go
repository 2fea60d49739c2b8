package release

import (
	"testing"

	"github.com/foureyes-dev/foureyes/policies"
)

func TestCompareVersions(t *testing.T) {
	ordered := []string{"v0.9.0", "v1.0.0-alpha", "v1.0.0-alpha.1", "v1.0.0-alpha.beta", "v1.0.0-beta.2", "v1.0.0-beta.11", "v1.0.0-rc.1", "v1.0.0", "v1.0.1", "v1.2", "v1.9.0", "v1.10.0", "release-2.0.0", "v10.0.0"}
	for i := range ordered {
		for j := range ordered {
			got := compareVersions(ordered[i], ordered[j])
			switch {
			case i < j && got >= 0, i > j && got <= 0, i == j && got != 0:
				t.Errorf("compareVersions(%q, %q) = %d", ordered[i], ordered[j], got)
			}
		}
	}
	if compareVersions("v1.2.0+build.5", "v1.2.0") != 0 || compareVersions("v1.2", "v1.2.0") != 0 {
		t.Error("build metadata and missing zeros must not order")
	}
	if compareVersions("latest", "v1.0.0") >= 0 || compareVersions("beta", "alpha") <= 0 {
		t.Error("names without a version sort before versions, and among themselves by name")
	}
}

func TestPreviousTag(t *testing.T) {
	pol := policies.Default() // release tags: v*
	tags := map[string]string{
		"v1.8.0": "a", "v1.9.0": "b", "v1.10.0": "c", "v1.10.0-rc.1": "c", "v2.0.0": "d", "nightly": "e", "v1.9.1": "",
	}
	if name, sha := previousTag(pol, tags, "v1.10.0", "c"); name != "v1.9.0" || sha != "b" {
		t.Errorf("previous of v1.10.0 = %s %s (the rc on the same commit, a tag without commit and later tags do not count)", name, sha)
	}
	if name, _ := previousTag(pol, tags, "v1.8.0", "a"); name != "" {
		t.Errorf("previous of the first release = %q", name)
	}
}
