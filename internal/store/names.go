package store

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// Layout of the data directory. Every name below is built only from a
// validated id, model name or version number.
const (
	dirDatasets    = "datasets"    // <id>.meta, <id>.data
	dirModels      = "models"      // <name>/counter, <name>/v<N>.meta, <name>/v<N>.model
	dirJobs        = "jobs"        // <id>.job, <id>.history
	dirCheckpoints = "checkpoints" // <id>.ckpt
	tmpPrefix      = ".tmp-"
	counterFile    = "counter"
)

// ModelNamePattern is the rule for model names, as a regular expression:
// a lower-case letter or digit, then up to 63 lower-case letters, digits,
// '.', '_' or '-'. The leading alphanumeric rules out "." and "..", and the
// alphabet rules out '/', '\', '%' and NUL, so a valid name is always one
// plain directory name under models/. Error messages quote it.
const ModelNamePattern = `^[a-z0-9][a-z0-9._-]{0,63}$`

// MaxModelNameLen is the longest model name ModelNamePattern allows.
const MaxModelNameLen = 64

// ValidModelName reports whether name matches ModelNamePattern. It is the
// one implementation of the rule: the store checks it before building a
// path, the job manager when a job is submitted, and the API on every
// request that names a model. It is written out byte by byte rather than
// with regexp because it runs on every prediction; FuzzValidModelName and
// TestValidModelName hold it to the pattern.
func ValidModelName(name string) bool {
	if len(name) == 0 || len(name) > MaxModelNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// quote renders untrusted input for an error message: quoted (so NUL and
// control bytes are visible) and cut to a readable length.
func quote(s string) string {
	const max = 72
	if len(s) > max {
		return strconv.Quote(s[:max]) + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return strconv.Quote(s)
}

// checkID accepts only canonical lowercase UUIDs
// (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), the only form the store issues.
func checkID(what, id string) error {
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id {
		return fmt.Errorf("%w: %s id %s is not a canonical lowercase UUID", ErrInvalidName, what, quote(id))
	}
	return nil
}

// checkModelName accepts the names ValidModelName accepts.
func checkModelName(name string) error {
	if !ValidModelName(name) {
		return fmt.Errorf("%w: model name %s must match %s", ErrInvalidName, quote(name), ModelNamePattern)
	}
	return nil
}

func checkVersion(version int) error {
	if version < 0 {
		return fmt.Errorf("%w: model version %d must be 0 (latest) or positive", ErrInvalidName, version)
	}
	return nil
}

func datasetMetaPath(id string) string { return dirDatasets + "/" + id + ".meta" }
func datasetDataPath(id string) string { return dirDatasets + "/" + id + ".data" }
func modelDir(name string) string      { return dirModels + "/" + name }
func counterPath(name string) string   { return modelDir(name) + "/" + counterFile }
func jobPath(id string) string         { return dirJobs + "/" + id + ".job" }
func checkpointPath(id string) string  { return dirCheckpoints + "/" + id + ".ckpt" }
func historyPath(id string) string     { return dirJobs + "/" + id + ".history" }

func modelMetaPath(name string, v int) string {
	return modelDir(name) + "/v" + strconv.Itoa(v) + ".meta"
}

func modelFilePath(name string, v int) string {
	return modelDir(name) + "/v" + strconv.Itoa(v) + ".model"
}

// parseVersionFile parses "v<N><ext>" with N a positive decimal without
// leading zeros.
func parseVersionFile(file, ext string) (int, bool) {
	s, ok := strings.CutSuffix(file, ext)
	if !ok {
		return 0, false
	}
	s, ok = strings.CutPrefix(s, "v")
	if !ok || s == "" || s[0] == '0' {
		return 0, false
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 || strconv.Itoa(v) != s {
		return 0, false
	}
	return v, true
}

// ModelFilePath is the file of a model version, relative to the data
// directory, for messages about its content (such as a model format this
// build cannot read). It does not check name or version.
func ModelFilePath(name string, version int) string { return modelFilePath(name, version) }

// CheckpointPath is a job's checkpoint file, relative to the data
// directory, for messages about its content. It does not check id.
func CheckpointPath(jobID string) string { return checkpointPath(jobID) }
