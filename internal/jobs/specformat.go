package jobs

import (
	"encoding/json"
)

// encodeSpec encodes a resolved spec for its job record, with its
// "version" field: the spec's own (Resolve leaves a version 1 spec without
// training.precision at version 1, so that an older build reads it as
// it was meant), or SpecVersion for a spec without one. The store refuses
// a record whose spec version is newer than this build's before anything
// is decoded, so an option added later, which this build's decoder would
// silently drop, is never trained without. A new option needs a bump only
// when its absence does not mean what this build does.
func encodeSpec(s Spec) ([]byte, error) {
	if s.Version == 0 {
		s.Version = SpecVersion
	}
	return json.Marshal(s)
}
