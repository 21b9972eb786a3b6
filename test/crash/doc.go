// Package crash holds the crash-safety tests: they build
// cmd/server, run it as a subprocess on a data directory, kill it with
// SIGKILL at seeded random moments (while it accepts jobs, writes
// checkpoints and saves models) and with SIGTERM, restart it, and check
// that nothing accepted is lost, interrupted jobs resume from their
// checkpoints, every stored model loads and predicts, and no temporary
// files remain. The package has no code outside its tests.
package crash
