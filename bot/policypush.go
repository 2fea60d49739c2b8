package bot

import (
	"bytes"
	"context"
	"strings"
)

// policyUnchanged asks the forge whether a push whose file list was cut
// changed the policy: the policy file read at the push's before and after
// commits is the same file with the same content. A created branch has
// no before to compare with and counts as changed.
func policyUnchanged(ctx context.Context, f Forge, repo Repo, p *PushEvent) (bool, error) {
	if p.Created || p.Before == "" || strings.Trim(p.Before, "0") == "" {
		return false, nil
	}
	before, err := f.Policy(ctx, repo, p.Before)
	if err != nil {
		return false, err
	}
	after, err := f.Policy(ctx, repo, p.After)
	if err != nil {
		return false, err
	}
	return before.Found == after.Found && policyPath(before.Source) == policyPath(after.Source) &&
		bytes.Equal(before.Data, after.Data), nil
}

// policyPath is the path part of a PolicyFile.Source ("repo@ref:path"),
// which names the ref the file was read at.
func policyPath(source string) string {
	if i := strings.LastIndexByte(source, ':'); i >= 0 {
		return source[i+1:]
	}
	return source
}
