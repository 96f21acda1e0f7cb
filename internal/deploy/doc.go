// Package deploy holds the tests of the deployment files in docs/deploy:
// the static build script and the binary it makes (checked with
// uno health against it), the Dockerfile (its instructions, read
// statically), the systemd unit (systemd-analyze verify) and the
// Kubernetes manifests (decoded strictly into the Kubernetes API types,
// and their invariants checked against what uno serve serves). It has no
// code of its own.
package deploy
