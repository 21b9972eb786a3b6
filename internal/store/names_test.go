package store

import (
	"regexp"
	"strings"
	"testing"
)

// modelNameRE is the reference for ValidModelName: the pattern itself,
// run by the regexp package.
var modelNameRE = regexp.MustCompile(ModelNamePattern)

// modelNameCases are names at and around each edge of the rule, with
// whether ModelNamePattern accepts them.
var modelNameCases = []struct {
	name string
	want bool
}{
	{"iris", true},
	{"a", true},
	{"0", true},
	{"iris-v2.final_3", true},
	{"a.", true},
	{"a..b", true},
	{strings.Repeat("a", MaxModelNameLen), true},
	{"9" + strings.Repeat("-", MaxModelNameLen-1), true},
	{"", false},
	{strings.Repeat("a", MaxModelNameLen+1), false},
	{".", false},
	{"..", false},
	{".hidden", false},
	{"-rf", false},
	{"_x", false},
	{"Iris", false},
	{"IRIS", false},
	{"a/b", false},
	{"../etc", false},
	{"a\\b", false},
	{"a%2fb", false},
	{"a b", false},
	{"a\x00b", false},
	{"a\n", false},
	{"iris\n", false}, // $ in Go's regexp matches only at the very end
	{"caf\u00e9", false},
	{"\u0131ris", false}, // dotless i: not ASCII, though it upper-cases to I
	{"a~b", false},
	{"a:b", false},
}

func TestValidModelName(t *testing.T) {
	for _, tc := range modelNameCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidModelName(tc.name); got != tc.want {
				t.Errorf("ValidModelName(%q) = %v, want %v", tc.name, got, tc.want)
			}
			if ref := modelNameRE.MatchString(tc.name); ref != tc.want {
				t.Errorf("the table is wrong: %s matches %q: %v", ModelNamePattern, tc.name, ref)
			}
			if err := checkModelName(tc.name); (err == nil) != tc.want {
				t.Errorf("checkModelName(%q) = %v, want valid %v", tc.name, err, tc.want)
			}
		})
	}
}

// FuzzValidModelName holds the hand-written check to the pattern on every
// input: both must agree.
func FuzzValidModelName(f *testing.F) {
	for _, tc := range modelNameCases {
		f.Add(tc.name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := ValidModelName(name), modelNameRE.MatchString(name); got != want {
			t.Fatalf("ValidModelName(%q) = %v, %s says %v", name, got, ModelNamePattern, want)
		}
	})
}
