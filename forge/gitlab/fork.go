package gitlab

import (
	"fmt"
	"net/http"

	gl "github.com/xanzy/go-gitlab"

	"github.com/foureyes-dev/foureyes/bot"
)

// Merge requests from forks. GitLab's commits API: "If the commit is
// associated with a merge request, the API call must target the commit in
// the merge request's source branch"
// (https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit),
// so foureyes posts (and reads) its status in the fork, where the source
// branch is. A token that cannot write there makes it fall back to the
// target project on the merge request's head ref, and the note says so.

// forkOf is the source project of a merge request from a fork (0 when the
// merge request comes from its own project).
func forkOf(mr *gl.MergeRequest) int {
	if mr.SourceProjectID != 0 && mr.TargetProjectID != 0 && mr.SourceProjectID != mr.TargetProjectID {
		return mr.SourceProjectID
	}
	return 0
}

// statusProject is the project the merge request's status lives in: the
// fork (its numeric ID) unless the token could not use it, else the
// merge request's own project.
func (f *Forge) statusProject(repo bot.Repo, iid int) any {
	if m, ok := f.mrs.get(mrKey(repo, iid)); ok && m.sourceProject != 0 && !m.statusFallback {
		return m.sourceProject
	}
	return pid(repo)
}

// isNoAccess is GitLab's answer to a token without (write) access to a
// project: 403, or 404 for a private project it cannot see.
func isNoAccess(err error) bool {
	st := httpStatus(err)
	return st == http.StatusForbidden || st == http.StatusNotFound
}

// forkFallbackNotice ends the note when the status could not be posted in
// the fork.
func forkFallbackNotice(iid int) string {
	return fmt.Sprintf("> **Note:** this merge request comes from a fork that foureyes' token cannot write to, so the `%s` status was posted on this project (ref `refs/merge-requests/%d/head`) instead of on the fork's source branch, where GitLab's merge checks look for it. Give foureyes' user Developer access to the fork.", StatusName, iid)
}
