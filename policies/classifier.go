package policies

import (
	"slices"
	"strings"
)

// Classifier gives exactly Policy.Classify's answers, faster for the
// thousands of paths of a large change. Policies are dominated by a few glob
// shapes ("dir/**", "**/*.ext", "**/name", literals, "**"); for those, maps
// keyed by a path's prefixes, base name and suffixes find the candidate globs
// in a few lookups instead of trying all of them. Other globs are tried
// after a cheap literal-text prefilter. Glob.Match has the last word on every
// candidate, so the index can only save work, never change a result, as long
// as it never leaves out a glob that would match.
type Classifier struct {
	p     *Policy
	globs []indexedGlob
	nc    int

	all      []int32            // "**"
	literal  map[string][]int32 // the path itself
	dirTree  map[string][]int32 // "dir/**": dir or a parent of the path
	dirLens  []int
	name     map[string][]int32 // "**/name": the base name
	segment  map[string][]int32 // "**/seg/**": any segment of the path
	ext      map[string][]int32 // "**/*.go": the base name's last extension
	suffix   map[string][]int32 // other "**/*x", "*x": an ending of the base name
	sufLens  []int
	generics []int32

	// Cheap "may be a key" tests that spare most map lookups.
	literalKeys, dirKeys, nameKeys, segKeys keyFilter

	exempt bool
	// Scratch, reused for every path: which categories' paths and ignores
	// matched, as bit sets.
	inPaths, inIgnore []uint64
}

// Roles of a glob in the policy.
const (
	roleExempt = iota
	rolePath
	roleIgnore
)

type indexedGlob struct {
	g    *Glob
	role uint8
	cat  int32
	pre  prefilter
}

// NewClassifier indexes the globs of p once; Classify then answers per
// path. The Classifier reads p and must not outlive changes to it.
func NewClassifier(p *Policy) *Classifier {
	words := (len(p.Categories) + 63) / 64
	c := &Classifier{
		p:        p,
		nc:       len(p.Categories),
		literal:  map[string][]int32{},
		dirTree:  map[string][]int32{},
		name:     map[string][]int32{},
		segment:  map[string][]int32{},
		ext:      map[string][]int32{},
		suffix:   map[string][]int32{},
		inPaths:  make([]uint64, words),
		inIgnore: make([]uint64, words),
	}
	add := func(gs []Glob, role uint8, cat int) {
		for i := range gs {
			id := int32(len(c.globs))
			c.globs = append(c.globs, indexedGlob{g: &gs[i], role: role, cat: int32(cat)})
			c.index(id, gs[i].Pattern)
		}
	}
	add(p.Exempt, roleExempt, -1)
	for ci := range p.Categories {
		add(p.Categories[ci].Paths, rolePath, ci)
		add(p.Categories[ci].Ignore, roleIgnore, ci)
	}
	return c
}

func hasGlobMeta(s string) bool { return strings.ContainsAny(s, "*?[]{}\\") }

func addLen(lens []int, n int) []int {
	if slices.Contains(lens, n) {
		return lens
	}
	return append(lens, n)
}

// index files glob id under the lookup that finds every path it can match.
func (c *Classifier) index(id int32, pat string) {
	switch {
	case pat == "**":
		c.all = append(c.all, id)
	case pat != "" && !hasGlobMeta(pat):
		c.literal[pat] = append(c.literal[pat], id)
		c.literalKeys.add(pat)
	case len(pat) > 3 && strings.HasSuffix(pat, "/**") && !hasGlobMeta(pat[:len(pat)-3]):
		d := pat[:len(pat)-3]
		c.dirTree[d] = append(c.dirTree[d], id)
		c.dirLens = addLen(c.dirLens, len(d))
		c.dirKeys.add(d)
	case len(pat) > 6 && strings.HasPrefix(pat, "**/") && strings.HasSuffix(pat, "/**") &&
		!hasGlobMeta(pat[3:len(pat)-3]) && !strings.Contains(pat[3:len(pat)-3], "/"):
		seg := pat[3 : len(pat)-3]
		c.segment[seg] = append(c.segment[seg], id)
		c.segKeys.add(seg)
	case strings.HasPrefix(pat, "**/*") && !hasGlobMeta(pat[4:]) && !strings.Contains(pat[4:], "/"):
		c.addSuffix(id, pat[4:])
	case strings.HasPrefix(pat, "**/") && !hasGlobMeta(pat[3:]) && !strings.Contains(pat[3:], "/"):
		c.name[pat[3:]] = append(c.name[pat[3:]], id)
		c.nameKeys.add(pat[3:])
	case strings.HasPrefix(pat, "*") && !hasGlobMeta(pat[1:]) && !strings.Contains(pat, "/"):
		c.addSuffix(id, pat[1:])
	default:
		c.globs[id].pre = newPrefilter(pat)
		c.generics = append(c.generics, id)
	}
}

func (c *Classifier) addSuffix(id int32, s string) {
	// ".go" ends a base name exactly when it is the base name's last
	// extension, so one lookup serves every such glob.
	if len(s) > 1 && strings.LastIndexByte(s, '.') == 0 {
		c.ext[s] = append(c.ext[s], id)
		return
	}
	c.suffix[s] = append(c.suffix[s], id)
	c.sufLens = addLen(c.sufLens, len(s))
}

// keyFilter remembers the first byte and length of a map's keys: a string
// that differs in either is certainly not a key. Lengths from 63 up share a
// bit.
type keyFilter [256]uint64

func (f *keyFilter) add(key string) {
	if key != "" {
		f[key[0]] |= 1 << min(len(key), 63)
	}
}

func (f *keyFilter) mayHave(s string) bool {
	return s != "" && f[s[0]]&(1<<min(len(s), 63)) != 0
}

// plainPath reports whether the index's assumptions about a path hold: a
// non-empty, relative, slash-separated path without empty segments. Forges
// only send such paths; anything else goes to Policy.Classify.
func plainPath(p string) bool {
	return p != "" && p[0] != '/' && p[len(p)-1] != '/' && !strings.Contains(p, "//")
}

// classify has the contract of Policy.Classify.
func (c *Classifier) Classify(path string, dst []int) ([]int, bool) {
	if !plainPath(path) {
		return c.p.Classify(path, dst)
	}
	clear(c.inPaths)
	clear(c.inIgnore)
	c.exempt = false
	c.try(c.all, path)
	if c.literalKeys.mayHave(path) {
		c.try(c.literal[path], path)
	}
	for _, n := range c.dirLens {
		if (len(path) == n || (len(path) > n && path[n] == '/')) && c.dirKeys.mayHave(path[:n]) {
			if ids, ok := c.dirTree[path[:n]]; ok {
				c.try(ids, path)
			}
		}
	}
	if len(c.segment) > 0 {
		for rest := path; ; {
			seg, after, more := strings.Cut(rest, "/")
			if c.segKeys.mayHave(seg) {
				c.try(c.segment[seg], path)
			}
			if !more {
				break
			}
			rest = after
		}
	}
	base := path[strings.LastIndexByte(path, '/')+1:]
	if c.nameKeys.mayHave(base) {
		c.try(c.name[base], path)
	}
	if dot := strings.LastIndexByte(base, '.'); dot >= 0 {
		if ids, ok := c.ext[base[dot:]]; ok {
			c.try(ids, path)
		}
	}
	for _, n := range c.sufLens {
		if len(base) >= n {
			if ids, ok := c.suffix[base[len(base)-n:]]; ok {
				c.try(ids, path)
			}
		}
	}
	for i, id := range c.generics {
		if c.globs[id].pre.pass(path) {
			c.try(c.generics[i:i+1], path)
		}
	}
	if c.exempt {
		return dst, true
	}
	for ci := 0; ci < c.nc; ci++ {
		w, bit := ci>>6, uint64(1)<<(ci&63)
		if c.inPaths[w]&bit != 0 && c.inIgnore[w]&bit == 0 {
			dst = append(dst, ci)
		}
	}
	return dst, false
}

// try confirms candidate globs with Glob.Match, skipping those whose answer
// could no longer change the outcome.
func (c *Classifier) try(ids []int32, path string) {
	for _, id := range ids {
		ig := &c.globs[id]
		switch ig.role {
		case roleExempt:
			if !c.exempt && ig.g.Match(path) {
				c.exempt = true
			}
		case rolePath:
			w, bit := ig.cat>>6, uint64(1)<<(ig.cat&63)
			if c.inPaths[w]&bit == 0 && ig.g.Match(path) {
				c.inPaths[w] |= bit
			}
		default:
			w, bit := ig.cat>>6, uint64(1)<<(ig.cat&63)
			if c.inIgnore[w]&bit == 0 && ig.g.Match(path) {
				c.inIgnore[w] |= bit
			}
		}
	}
}

// prefilter rejects paths a generic glob cannot match because they lack its
// literal text: the text before the first wildcard must start the path, the
// text after the last must end it, and the runs in between must appear in
// order. A slash next to a wildcard is left out of the check, since "**/"
// may match nothing. Patterns with classes, alternatives or escapes get no
// prefilter (their literal text is not plain).
type prefilter struct {
	on             bool
	prefix, suffix string
	mids           []string
}

func newPrefilter(pat string) prefilter {
	if strings.ContainsAny(pat, "[]{}\\") {
		return prefilter{}
	}
	runs := strings.FieldsFunc(pat, func(r rune) bool { return r == '*' || r == '?' })
	if len(runs) == 0 {
		return prefilter{}
	}
	f := prefilter{on: true}
	if pat[0] != '*' && pat[0] != '?' {
		f.prefix = strings.TrimRight(runs[0], "/")
		runs = runs[1:]
	}
	if last := pat[len(pat)-1]; last != '*' && last != '?' && len(runs) > 0 {
		f.suffix = strings.TrimLeft(runs[len(runs)-1], "/")
		runs = runs[:len(runs)-1]
	}
	for _, r := range runs {
		if r = strings.Trim(r, "/"); r != "" {
			f.mids = append(f.mids, r)
		}
	}
	return f
}

func (f *prefilter) pass(path string) bool {
	if !f.on {
		return true
	}
	if len(path) < len(f.prefix)+len(f.suffix) || !strings.HasPrefix(path, f.prefix) || !strings.HasSuffix(path, f.suffix) {
		return false
	}
	rest := path[len(f.prefix) : len(path)-len(f.suffix)]
	for _, m := range f.mids {
		i := strings.Index(rest, m)
		if i < 0 {
			return false
		}
		rest = rest[i+len(m):]
	}
	return true
}
