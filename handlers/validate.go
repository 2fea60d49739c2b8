package handlers

import (
	"net/http"

	"github.com/foureyes-dev/foureyes/policies"
)

// validationError is one diagnostic as POST /api/validate reports it.
type validationError struct {
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Message string `json:"message"`
	Key     string `json:"key"`
}

type validationResult struct {
	Valid  bool              `json:"valid"`
	Errors []validationError `json:"errors,omitempty"`
}

// validate answers POST /api/validate: the body is a policy file; 200 when
// it parses, 422 with every diagnostic otherwise. ?name= sets the source
// name the parser uses in its messages.
func (s *server) validate(w http.ResponseWriter, r *http.Request) {
	// policies.MaxSize (1 MiB) is also what Parse accepts from a forge.
	body, release, o, ok := s.readBody(w, r, policies.MaxSize)
	if !ok {
		writeJSON(w, o.status, map[string]string{"status": o.result, "message": o.message})
		return
	}
	defer release()
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "policy"
	}
	if _, err := policies.Parse(name, body); err != nil {
		diags := policies.Diagnostics(err)
		res := validationResult{Errors: make([]validationError, 0, len(diags))}
		for _, d := range diags {
			res.Errors = append(res.Errors, validationError{
				Line: d.Line, Column: d.Column, Message: d.Message, Key: d.Key,
			})
		}
		writeJSON(w, http.StatusUnprocessableEntity, res)
		return
	}
	writeJSON(w, http.StatusOK, validationResult{Valid: true})
}
