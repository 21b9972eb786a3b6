// Package uploadrss holds the test and benchmark of an upload's peak
// memory: the server runs in a subprocess (this test binary run again),
// so that its peak resident size (VmHWM in /proc/<pid>/status) is the
// upload's alone, and the test sends it CSV and JSON datasets. The
// package has no code outside its tests.
package uploadrss
