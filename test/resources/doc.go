// Package resources holds the resource battery: it builds cmd/server,
// runs the binary with a 2 GiB memory limit and a token, and sends it the
// requests a hostile client with a valid token would use to exhaust its
// memory, connections or metric series, each bounded in count and time,
// while a watchdog samples the server's resident size and its /healthz
// latency. The package has no code outside its tests.
package resources
