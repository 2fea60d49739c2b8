package policies

import (
	"errors"
	"fmt"
	"strings"
)

// Diagnostic is one problem in a policy file, positioned so an editor, the
// CLI and the check run can point at it.
type Diagnostic struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Key     string `json:"key,omitempty"` // dotted path of the offending key, e.g. categories.infra.approvals
	Message string `json:"message"`
}

// String formats the diagnostic as FILE:LINE:COL: message.
func (d Diagnostic) String() string {
	return fmt.Sprintf("%s:%d:%d: %s", d.File, d.Line, d.Column, d.Message)
}

// ParseError carries every problem found in one file, not only the first.
type ParseError struct {
	Diagnostics []Diagnostic
}

func (e *ParseError) Error() string {
	lines := make([]string, len(e.Diagnostics))
	for i, d := range e.Diagnostics {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Diagnostics extracts the positioned problems from an error returned by
// Parse. Any other error becomes a single diagnostic at line 1 so callers
// can always show something.
func Diagnostics(err error) []Diagnostic {
	if err == nil {
		return nil
	}
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe.Diagnostics
	}
	return []Diagnostic{{Line: 1, Column: 1, Message: err.Error()}}
}
