package jobs

import (
	"errors"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/engine"
)

func TestListFilterValidate(t *testing.T) {
	cursor := encodeCursor(7)
	tests := []struct {
		name       string
		f          ListFilter
		wantLimit  int
		wantBefore int64
		wantFields []string // fields named by the error; nil for a valid filter
	}{
		{"empty filter", ListFilter{}, defaultListLimit, -1, nil},
		{"every field", ListFilter{Status: Running, ModelName: "iris-2", Limit: maxListLimit, Cursor: cursor}, maxListLimit, 7, nil},
		{"limit 1", ListFilter{Limit: 1}, 1, -1, nil},
		{"unknown status", ListFilter{Status: "done"}, 0, 0, []string{"status"}},
		{"model name traversal", ListFilter{ModelName: "../etc"}, 0, 0, []string{"model_name"}},
		{"model name upper case", ListFilter{ModelName: "Iris"}, 0, 0, []string{"model_name"}},
		{"model name too long", ListFilter{ModelName: strings.Repeat("a", 65)}, 0, 0, []string{"model_name"}},
		{"negative limit", ListFilter{Limit: -1}, 0, 0, []string{"limit"}},
		{"limit over the page size", ListFilter{Limit: maxListLimit + 1}, 0, 0, []string{"limit"}},
		{"bad cursor", ListFilter{Cursor: "../../etc"}, 0, 0, []string{"cursor"}},
		{"all wrong at once", ListFilter{Status: "x", ModelName: "..", Limit: -5, Cursor: "!"}, 0, 0,
			[]string{"status", "model_name", "limit", "cursor"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			limit, before, err := tc.f.validate()
			if tc.wantFields == nil {
				if err != nil || limit != tc.wantLimit || before != tc.wantBefore {
					t.Fatalf("validate() = %d, %d, %v; want %d, %d, nil", limit, before, err, tc.wantLimit, tc.wantBefore)
				}
				return
			}
			var ve *engine.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("validate() error %v, want a validation error", err)
			}
			var got []string
			for _, fe := range ve.Errors {
				got = append(got, fe.Field)
				if fe.Message == "" {
					t.Errorf("%s: empty message", fe.Field)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.wantFields, ",") {
				t.Errorf("fields %v, want %v", got, tc.wantFields)
			}
		})
	}
}
