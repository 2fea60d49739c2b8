package fakegithub

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Activity is one entry of the repository activity API
// (GET /repos/{owner}/{repo}/activity, operation repos/list-activities in
// GitHub's OpenAPI description, schema "activity":
// https://docs.github.com/rest/repos/repos#list-repository-activities).
// GitHub records one for every push, force push, branch creation and
// deletion and merge into a ref, with the account that did it.
type Activity struct {
	ID     int64
	Before string
	After  string
	// Ref is the full ref, refs/heads/<branch>.
	Ref string
	// Type is push, force_push, branch_creation, branch_deletion, pr_merge
	// or merge_queue_merge.
	Type  string
	Actor User
	At    time.Time
}

// AddActivity records an activity (ID and time default to fresh values;
// a bare branch name is made refs/heads/).
func (f *Fake) AddActivity(repo string, a Activity) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addActivity(f.repoOf(repo), a)
}

func (f *Fake) addActivity(rp *repo, a Activity) {
	if a.ID == 0 {
		a.ID = f.id()
	}
	if a.At.IsZero() {
		a.At = f.now()
	}
	if !strings.HasPrefix(a.Ref, "refs/") {
		a.Ref = "refs/heads/" + a.Ref
	}
	if a.Type == "" {
		a.Type = "push"
	}
	rp.activities = append(rp.activities, a)
}

// Activities returns the activities of a repository, oldest first.
func (f *Fake) Activities(repo string) []Activity {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Activity(nil), f.repoOf(repo).activities...)
}

// notePRPush records the push that moved a pull request's head branch, as
// GitHub does for every push: AddPR and UpdatePR call it when the head
// changes. The actor is PR.PushedBy (default: the author); a PR from a fork
// (HeadRepo set) records it in the fork, when the fork was registered.
func (f *Fake) notePRPush(base *repo, before string, p *PR) {
	if p.HeadSHA == "" || p.HeadSHA == before {
		return
	}
	rp := base
	if p.HeadRepo != "" && !strings.EqualFold(p.HeadRepo, base.fullName) {
		// Only a fork registered with AddRepo is readable; any other
		// answers 404, as a repository the App is not installed on.
		if rp = f.repos[strings.ToLower(p.HeadRepo)]; rp == nil {
			return
		}
	}
	actor := p.PushedBy
	if actor.Login == "" {
		actor = p.Author
	}
	typ := "push"
	if before == "" {
		typ, before = "branch_creation", strings.Repeat("0", 40)
	}
	f.addActivity(rp, Activity{Before: before, After: p.HeadSHA, Ref: p.HeadRef, Type: typ, Actor: actor})
}

// listActivities serves the activity API: newest first (direction=desc,
// the default), filtered by ref (refs/heads/NAME or NAME), activity_type and
// actor, paginated with the before/after cursors GitHub uses for this
// endpoint (a Link header with rel="next" carrying after=CURSOR).
func (f *Fake) listActivities(w http.ResponseWriter, r *http.Request, rp *repo) {
	q := r.URL.Query()
	ref := q.Get("ref")
	if ref != "" && !strings.HasPrefix(ref, "refs/") {
		ref = "refs/heads/" + ref
	}
	var out []Activity
	for i := len(rp.activities) - 1; i >= 0; i-- {
		a := rp.activities[i]
		if (ref != "" && a.Ref != ref) || (q.Get("activity_type") != "" && a.Type != q.Get("activity_type")) ||
			(q.Get("actor") != "" && !strings.EqualFold(a.Actor.Login, q.Get("actor"))) {
			continue
		}
		out = append(out, a)
	}
	if q.Get("direction") == "asc" {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per <= 0 {
		per = 30
	}
	per = min(per, 100)
	// The cursor is opaque to clients; here it is the offset of the page.
	lo := 0
	if c := q.Get("after"); c != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(c, "cur"))
		if err != nil || n < 0 {
			writeError(w, http.StatusUnprocessableEntity, "invalid cursor")
			return
		}
		lo = min(n, len(out))
	}
	hi := min(lo+per, len(out))
	if hi < len(out) {
		nq := r.URL.Query()
		nq.Set("after", "cur"+strconv.Itoa(hi))
		nq.Set("per_page", strconv.Itoa(per))
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?%s>; rel="next"`, f.apiBase(r), r.URL.Path, nq.Encode()))
	}
	items := make([]map[string]any, 0, hi-lo)
	for _, a := range out[lo:hi] {
		var actor any
		if a.Actor.Login != "" {
			actor = f.userJSON(a.Actor)
		}
		items = append(items, map[string]any{
			"id":            a.ID,
			"node_id":       fmt.Sprintf("A_%d", a.ID),
			"before":        a.Before,
			"after":         a.After,
			"ref":           a.Ref,
			"timestamp":     fmtTime(a.At),
			"activity_type": a.Type,
			"actor":         actor,
		})
	}
	writeJSON(w, http.StatusOK, items)
}
