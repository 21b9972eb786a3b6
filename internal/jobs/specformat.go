package jobs

import (
	"encoding/json"

	"github.com/backpropd/backpropd/internal/store"
)

// encodeSpec encodes a resolved spec for its job record, with a "version"
// field, store.JobSpecVersion, first. The store refuses a record whose spec
// version is newer than this build's before anything is decoded, so an
// option added later, which this build's decoder would silently drop, is
// never trained without. A new option needs a bump only when its absence
// does not mean what this build does; the version is not part of Spec, so
// requests cannot set it and job views do not show it.
func encodeSpec(s Spec) ([]byte, error) {
	return json.Marshal(struct {
		Version int `json:"version"`
		Spec
	}{store.JobSpecVersion, s})
}
