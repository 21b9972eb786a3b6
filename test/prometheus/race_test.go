//go:build race

package prometheus

const raceEnabled = true
