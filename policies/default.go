package policies

import (
	_ "embed"
	"fmt"
)

// The default lives in a YAML file rather than Go literals so it reads like
// any other policy and goes through the same validation and digest.
//
//go:embed default.yml
var defaultYAML string

// DefaultSource is the Source of the policy Default returns.
const DefaultSource = "built-in default"

// Default returns the built-in default policy (SPEC section 5). Each call
// returns a fresh value, so a caller that modifies it affects no one else.
func Default() *Policy {
	p, err := Parse(DefaultSource, []byte(defaultYAML))
	if err != nil {
		// default.yml is compiled into the binary and covered by tests.
		panic(fmt.Sprintf("policies: built-in default does not parse: %v", err))
	}
	return p
}
