package gitlab

import (
	"fmt"
	"strconv"
	"strings"
)

// diffIncomplete says why the diffs GitLab listed are not the whole merge
// request ("" when they are). GitLab applies the instance's diff limits
// (default 1,000 files, at most 3,000) to the API too and then "returns
// limited results" from /merge_requests/:iid/diffs without saying so in
// the listing; the merge request's changes_count, a string, is then "N+"
// (https://docs.gitlab.com/administration/diff_limits/,
// https://docs.gitlab.com/api/merge_requests/#get-single-mr). A count
// above what was listed means the same.
func diffIncomplete(changesCount string, listed int) string {
	cc := strings.TrimSpace(changesCount)
	if n, ok := strings.CutSuffix(cc, "+"); ok {
		return fmt.Sprintf("more than %s changed files (changes_count %q): GitLab's diff limits list only the first %s files of a merge request; foureyes cannot classify the rest, so it fails closed (split the change)",
			n, cc, n)
	}
	if n, err := strconv.Atoi(cc); err == nil && n > listed {
		return fmt.Sprintf("GitLab counts %d changed files but listed %d; foureyes cannot classify the rest, so it fails closed (split the change)", n, listed)
	}
	return ""
}
