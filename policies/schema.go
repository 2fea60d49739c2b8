package policies

import _ "embed"

// A string rather than a []byte so no caller can change the copy every
// other caller sees.
//
//go:embed schema.json
var schemaJSON string

// SchemaURL is the $id of the JSON Schema, for yaml-language-server headers
// ("# yaml-language-server: $schema=...").
const SchemaURL = "https://raw.githubusercontent.com/foureyes-dev/foureyes/main/policies/schema.json"

// Schema returns the JSON Schema (draft 2020-12) of the policy file, for
// editors and for serving over HTTP. It accepts what Parse accepts except
// that it cannot check glob syntax or duplicate keys.
func Schema() []byte { return []byte(schemaJSON) }
