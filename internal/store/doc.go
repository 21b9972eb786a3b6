// Package store keeps backpropd's durable state, datasets, model versions,
// job records and training checkpoints, as files under one data directory.
//
// # Durability
//
// Every write goes to a temp file in the target's directory, which is
// written, fsynced, renamed over the target, and then the directory is
// fsynced. So when a Put or Create method returns nil, the record survives
// a crash or power loss; if the process dies earlier, the previous version
// of the record (or no record) survives, never part of one. Deletes are
// durable when they return. Records made of two files (a dataset's numbers
// and metadata, a model's file and metadata) write the metadata last and
// delete it first; Open removes any data file left without its metadata,
// and every leftover temp file.
//
// Every file is a frame with a magic number, format version, record kind,
// payload length and CRC-32C, so a corrupt, truncated, empty or misplaced
// file is detected on read and reported as an error wrapping ErrCorrupt
// that names the file. Listings skip such files (logging them, or for
// ListJobs returning them) and keep serving the rest.
//
// Every kind of file has a named format version (format.go): the frame's
// header field, and a top-level "format" field in the JSON records (absent
// means 1). A file of a version newer than this build reads gives a
// *FormatError wrapping ErrNewerFormat, naming the file and both
// versions, before anything else in it is decoded; it is skipped like a
// corrupt file and left as it is for the newer build.
//
// Model versions are numbered 1, 2, 3 … per name by a durable counter that
// is advanced before a version is written and outlives deletes, so a
// version number is never reused, not even after a crash.
//
// # Safety
//
// Ids are server-generated UUIDs and model names must match
// ModelNamePattern (^[a-z0-9][a-z0-9._-]{0,63}$); anything else is
// rejected with ErrInvalidName before a path is built. All file access goes through an
// os.Root, so no name, and no symlink placed inside the directory, reaches
// a file outside it. A full disk gives an error wrapping ErrNoSpace and a
// read-only directory one wrapping ErrReadOnly; the temp file is removed
// and what was stored before is untouched.
//
// # Model names
//
// The model name rule has one home, ValidModelName, exported from here
// because the rule exists for the store's sake: a model name becomes a
// directory name under models/, and the store is what must refuse one that
// could leave it. The job manager (checking a submitted job) and the API
// (checking every path that names a model) already import the store, and
// the store imports neither, so using it from here keeps the dependency
// rules (engine imports none of api, jobs, store or ingest; store imports
// neither api nor jobs; jobs does not import api) without a package of its
// own for one function.
//
// A Store is safe for concurrent use. It imports nothing of the server's
// other packages; consumers declare the small interfaces they need.
package store
