// Package deploy holds no code that the server runs: its tests check the
// deployment files beside it (the Kubernetes manifests, the compose file,
// the Prometheus and Grafana configuration, and the repository's Dockerfile)
// as far as they can be checked without a container engine or a cluster,
// and start the server binary with the environment each of them gives its
// container.
//
// It is a module of its own so that the Kubernetes API types it decodes into
// stay out of the server's dependency graph. It must not import the server's
// packages.
package deploy
