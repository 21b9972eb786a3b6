package engine

import "testing"

// TestSplitSizes: SplitSizes, which callers use before loading any data,
// counts exactly the rows that split holds out, for stratified and plain
// splits, including the fractions that leave a side empty.
func TestSplitSizes(t *testing.T) {
	tests := []struct {
		name       string
		groups     []int
		stratified bool
		fraction   float64
		train, val int
	}{
		// Iris: 3 classes of 50; 0.001 × 50 rounds to 0 in every class.
		{"iris tiny fraction", []int{50, 50, 50}, true, 0.001, 150, 0},
		{"iris 0.2", []int{50, 50, 50}, true, 0.2, 120, 30},
		// 0.5 × 1 rounds to 1 but each class keeps a training row.
		{"one row per class", []int{1, 1}, true, 0.5, 2, 0},
		{"stratified cap", []int{3, 2}, true, 0.9, 2, 3},
		{"plain all held out", []int{1}, false, 0.6, 0, 1},
		{"plain none held out", []int{4}, false, 0.1, 4, 0},
		{"plain 0.25", []int{10}, false, 0.25, 7, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			train, val := SplitSizes(tt.groups, tt.stratified, tt.fraction)
			if train != tt.train || val != tt.val {
				t.Fatalf("SplitSizes = %d train, %d val; want %d, %d", train, val, tt.train, tt.val)
			}
			// The oracle: split itself on labels with these class sizes.
			var cls []int32
			rows := 0
			for c, n := range tt.groups {
				rows += n
				for range n {
					cls = append(cls, int32(c))
				}
			}
			if !tt.stratified {
				cls = nil
			}
			tr, va := split(rows, cls, len(tt.groups), tt.fraction, 1)
			if len(tr) != train || len(va) != val {
				t.Errorf("split gives %d train, %d val; SplitSizes %d, %d", len(tr), len(va), train, val)
			}
		})
	}
}
