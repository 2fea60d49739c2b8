// Package foureyes holds files of the repository root that the binary
// needs at run time; the code lives in the packages below it.
package foureyes

import _ "embed"

// AppManifest is app.yml, the GitHub App manifest, used by the server's
// manifest flow to register the App.
//
//go:embed app.yml
var AppManifest []byte
