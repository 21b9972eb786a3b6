//go:build race

package api

// raceEnabled: byte counts of allocations do not hold under the race
// detector's build.
const raceEnabled = true
