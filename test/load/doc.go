// Package load holds the load test: the service wired as
// cmd/server wires it, in-process so that goleak can count its goroutines
// and the race detector can watch it, under 4 training jobs and 100
// concurrent prediction clients, plus a client that sends its headers a
// byte at a time and clients that never read their event streams. The
// package has no code outside its tests.
package load
