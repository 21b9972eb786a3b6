// Package upgrade holds the upgrade tests of the data directory: a small
// real data directory written by an earlier build is kept under testdata/,
// one per format version, and the tests load every file in it with this
// build, predict with its model and resume its interrupted job to the end.
// The package has no code outside its tests.
package upgrade
