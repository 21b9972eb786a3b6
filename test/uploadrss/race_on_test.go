//go:build race

package uploadrss

// raceEnabled: the race detector's shadow memory multiplies the heap's
// resident size, so peak RSS says nothing about the upload under -race.
const raceEnabled = true
