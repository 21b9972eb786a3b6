// Package prometheus holds the integration test that runs a built backpropd
// next to a real Prometheus server (Debian's prometheus package) and checks,
// through Prometheus's query API, that a training job's loss is scraped and
// falls; and that promtool accepts the /metrics exposition. It has no
// non-test code.
package prometheus
