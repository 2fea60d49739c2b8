package bot

import (
	"crypto/sha256"
	"encoding/hex"
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
