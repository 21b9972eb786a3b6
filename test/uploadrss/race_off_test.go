//go:build !race

package uploadrss

const raceEnabled = false
