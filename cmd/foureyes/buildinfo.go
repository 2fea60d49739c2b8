package main

import "runtime/debug"

// buildCommit is the commit the binary was built from: the -ldflags value
// when set, else the vcs.revision that `go build` records from the git
// checkout ("unknown" when neither is known, e.g. `go build -buildvcs=false`).
func buildCommit() string {
	bi, ok := debug.ReadBuildInfo()
	return commitOf(commit, bi, ok)
}

func commitOf(ldflag string, bi *debug.BuildInfo, ok bool) string {
	if ldflag != "" {
		return ldflag
	}
	if ok && bi != nil {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	return "unknown"
}
