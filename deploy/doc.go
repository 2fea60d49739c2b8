// Package deploy holds what it takes to run foureyes, and no Go code:
//
//   - Dockerfile: a multi-stage build of a static binary on distroless,
//     running as a non-root user;
//   - kubernetes/: a kustomization with the Deployment, Service, an example
//     Secret, a ServiceMonitor and a PrometheusRule;
//   - prometheus/rules.yml: the same alert rules for a plain Prometheus,
//     with promtool unit tests in rules_test.yml;
//   - compose.yaml: foureyes with PostgreSQL on one host;
//   - systemd/foureyes.service: a hardened unit with the SQLite database.
//
// The package's test parses every manifest here and the GitHub App manifest
// app.yml at the repository root, and checks that the alert rules name only
// metrics that package metrics exports.
package deploy
