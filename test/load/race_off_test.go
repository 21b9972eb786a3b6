//go:build !race

package load

// raceFactor scales memory bounds: 1 without the race detector.
const raceFactor = 1
