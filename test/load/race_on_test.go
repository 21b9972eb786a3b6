//go:build race

package load

// raceFactor scales memory bounds: the race detector's shadow memory costs
// 5 to 10 times the program's own.
const raceFactor = 8
