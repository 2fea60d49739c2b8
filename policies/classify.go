package policies

// Classify appends to dst the indexes (into p.Categories) of every category
// the file belongs to: those whose paths match and whose ignore does not.
// exempt is true when the file matches an exempt glob; an exempt file needs
// no review and is reported in no category. A non-exempt file in no
// category belongs to the implicit "uncategorized" category, which the
// engine handles: every change is reviewed.
func (p *Policy) Classify(path string, dst []int) (cats []int, exempt bool) {
	if MatchAny(p.Exempt, path) {
		return dst, true
	}
	for i := range p.Categories {
		c := &p.Categories[i]
		if MatchAny(c.Paths, path) && !MatchAny(c.Ignore, path) {
			dst = append(dst, i)
		}
	}
	return dst, false
}
