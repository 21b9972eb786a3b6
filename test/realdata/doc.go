// Package realdata holds the end-to-end tests on real and synthetic
// tables: each uploads a CSV as a user would, with no parameters beyond
// its name and target unless the case is about one, trains on it through
// the built server binary, and predicts rows the test held out, raw and
// keyed by their column names, checking the accuracy against what the
// table's construction or a published result gives. The package has no
// code outside its tests.
package realdata
