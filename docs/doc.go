// Package docs holds foureyes' documentation, and no Go code:
//
//   - policy.md: the policy file reference;
//   - gitlab.md: setting foureyes up on GitLab;
//   - operations.md: running it in production (metrics, alerts, backups);
//   - release-guard.md: the release-branch guard and release reports;
//   - scan.md: `foureyes scan` and a live `foureyes explain` (its flags,
//     constants, JSON keys, CSV columns and example summary line are
//     checked by cmd/foureyes/scan_docs_test.go).
//
// The package's test keeps the documents true to the code: the policy
// reference against the JSON Schema and the parser (every key, default and
// enum value documented; every example parses, every error example prints
// what it shows), the runbooks against the Prometheus alert rules, and the
// metric list against package metrics.
package docs
