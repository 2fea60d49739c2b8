package main

import "runtime/debug"

// buildCommit is the commit the binary was built from: the -ldflags value
// when set, else the vcs.revision that `go build` records from the git
// checkout ("" when neither is known, e.g. `go build -buildvcs=false`).
func buildCommit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}
