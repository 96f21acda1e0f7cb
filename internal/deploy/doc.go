// Package deploy holds the tests of the deployment files in docs/deploy:
// the static build script and the binary it makes (checked with
// uno health against it), the Dockerfile (its instructions, read
// statically), the systemd unit (systemd-analyze verify) and the
// Kubernetes manifests (decoded strictly into the Kubernetes API types,
// their invariants checked against what uno serve serves, and the
// ConfigMap's config started with the built binary). It has no
// code of its own.
package deploy
