package table

import "testing"

func TestParseDatetime(t *testing.T) {
	// Expected seconds from `date -u -d <instant> +%s`.
	tests := []struct {
		in      string
		want    float64
		hasTime bool
		ok      bool
	}{
		{"2007-11-09", 1194566400, false, true},
		{"2007/11/09", 1194566400, false, true},
		{"2007-11-09T10:30:00Z", 1194604200, true, true},
		{"2007-11-09T12:30:00+02:00", 1194604200, true, true},
		{"2007-11-09T10:30:00", 1194604200, true, true},
		{"2007-11-09T10:30", 1194604200, true, true},
		{"2007-11-09 10:30:00", 1194604200, true, true},
		{"2007-11-09 10:30:00.5", 1194604200.5, true, true},
		{" 2007-11-09 ", 1194566400, false, true},
		{"1969-12-31", -86400, false, true},
		{"9999-12-31", 253402214400, false, true}, // past int64 nanoseconds (year 2262)
		{"09/11/2007", 0, false, false},           // day and month order is ambiguous
		{"2007-13-01", 0, false, false},
		{"Adelie", 0, false, false},
		{"", 0, false, false},
		{"12", 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, hasTime, ok := ParseDatetime(tt.in)
			if got != tt.want || hasTime != tt.hasTime || ok != tt.ok {
				t.Errorf("ParseDatetime(%q) = %v, %v, %v; want %v, %v, %v", tt.in, got, hasTime, ok, tt.want, tt.hasTime, tt.ok)
			}
		})
	}
}
