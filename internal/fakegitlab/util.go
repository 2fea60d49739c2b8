package fakegitlab

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"sort"
	"strings"
)

func lastSegment(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

func encodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// sha1hex stands in for git object IDs in shapes that need one.
func sha1hex(b []byte) string {
	h := sha1.Sum(b)
	return hex.EncodeToString(h[:])
}

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// sortedUserIDs gives map iteration a stable order, so listings are
// deterministic.
func sortedUserIDs(m map[int]*User) []int {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

func sortedMRIIDs(m map[int]*mrState) []int {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}
