package bot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// PatchDigest returns the hex SHA-256 of one file's patch, the value
// adapters store in File.PatchDigest.
func PatchDigest(patch string) string {
	sum := sha256.Sum256([]byte(patch))
	return hex.EncodeToString(sum[:])
}

// DiffDigest returns the hex SHA-256 of a change's diff: its files' paths,
// previous paths, statuses and patch digests, independent of the order the
// forge listed them in. Two heads with the same digest show reviewers the
// same change, which is what lets an approval survive a merge or rebase of
// the base branch (SPEC §6).
//
// It returns "" when any file has no PatchDigest: such a digest would not
// notice a content change in that file (a binary, or a patch the forge did
// not show), and an approval must never survive a change nobody saw.
// Adapters should fill a substitute (e.g. the blob SHA) for those files.
func DiffDigest(files []File) string {
	for i := range files {
		if files[i].PatchDigest == "" {
			return ""
		}
	}
	// Sort pointers rather than copies of File: forges usually list files
	// sorted already, so this is a linear check in the common case.
	order := make([]*File, len(files))
	for i := range files {
		order[i] = &files[i]
	}
	cmp := func(a, b *File) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		if c := strings.Compare(a.PreviousPath, b.PreviousPath); c != 0 {
			return c
		}
		if c := strings.Compare(a.Status, b.Status); c != 0 {
			return c
		}
		return strings.Compare(a.PatchDigest, b.PatchDigest)
	}
	if !slices.IsSortedFunc(order, cmp) {
		slices.SortFunc(order, cmp)
	}

	// Fields are NUL-terminated: git paths cannot contain NUL, so the
	// encoding is unambiguous. Writing through a buffer keeps the number of
	// hash calls (each with a fixed overhead) low for thousands of files.
	h := sha256.New()
	buf := make([]byte, 0, 8<<10)
	for _, f := range order {
		if len(buf) > 6<<10 {
			h.Write(buf)
			buf = buf[:0]
		}
		buf = append(buf, f.Path...)
		buf = append(buf, 0)
		buf = append(buf, f.PreviousPath...)
		buf = append(buf, 0)
		buf = append(buf, f.Status...)
		buf = append(buf, 0)
		buf = append(buf, f.PatchDigest...)
		buf = append(buf, 0)
	}
	h.Write(buf)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// factReviewDigest is the scope of the review bindings: review key -> the
// diff digest of the change when foureyes first saw the review.
const factReviewDigest = "review-digest"

// completeReviewDigests binds each review to the digest recorded for it.
func completeReviewDigests(ctx context.Context, st FactReader, c *Change) error {
	bound, err := st.Facts(ctx, FactScope(c.Ref, factReviewDigest))
	if err != nil {
		return fmt.Errorf("read review digests: %w", err)
	}
	for i := range c.Reviews {
		if r := &c.Reviews[i]; r.Digest == "" {
			r.Digest = bound[r.Key()]
		}
	}
	return nil
}

// recordDigests remembers, after an evaluation, what each review newly seen
// was given on and the digest of the evaluated head. A review of the
// current head is bound to the current digest; one of an earlier head to
// the digest recorded for that head, if any (else it stays unbound, and
// stale). A head evaluated with two different diffs (retargeted) keeps no
// digest: which one an approval of it saw is unknown, so it is never
// shared.
//
// The facts go into b, which publish writes together with the verdict.
func (s *Service) recordDigests(ctx context.Context, b *factBatch, c *Change, digest string) error {
	heads := FactScope(c.Ref, factDigest)
	known, err := s.Store.Facts(ctx, heads)
	if err != nil {
		return fmt.Errorf("read diff digests: %w", err)
	}
	if old, seen := known[c.Ref.HeadSHA]; digest != "" && (!seen || (old != digest && old != "")) {
		v := digest
		if seen {
			v = "" // evaluated with another diff before: ambiguous
		}
		b.put(heads, c.Ref.HeadSHA, v)
	}
	scope := FactScope(c.Ref, factReviewDigest)
	bound, err := s.Store.Facts(ctx, scope)
	if err != nil {
		return fmt.Errorf("read review digests: %w", err)
	}
	for _, r := range c.Reviews {
		if r.State != Approved || r.CommitSHA == "" {
			continue
		}
		k := r.Key()
		if _, ok := bound[k]; ok {
			continue
		}
		d := ""
		switch {
		case r.CommitSHA == c.Ref.HeadSHA:
			d = digest
		default:
			d = known[r.CommitSHA]
		}
		if d == "" {
			continue
		}
		b.put(scope, k, d)
	}
	return nil
}
