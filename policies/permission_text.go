package policies

import "fmt"

// MarshalText writes the permission by name, so JSON documents (the
// explain command's change file, audit records) read "write", not 3.
func (p Permission) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads a permission name.
func (p *Permission) UnmarshalText(b []byte) error {
	v, ok := ParsePermission(string(b))
	if !ok {
		return fmt.Errorf("unknown permission %q (read, triage, write, maintain or admin)", b)
	}
	*p = v
	return nil
}
