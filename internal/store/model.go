package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"time"
)

// ModelMeta describes one stored model version.
type ModelMeta struct {
	Name         string             `json:"name"`
	Version      int                `json:"version"`
	CreatedAt    time.Time          `json:"created_at"`
	JobID        string             `json:"job_id,omitempty"`
	DatasetID    string             `json:"dataset_id,omitempty"`
	Task         string             `json:"task"`
	FeatureNames []string           `json:"feature_names"`
	TargetNames  []string           `json:"target_names,omitempty"`
	Classes      []string           `json:"classes,omitempty"`
	Outputs      int                `json:"outputs"`
	Metrics      map[string]float64 `json:"metrics,omitempty"`
	StoppedEarly bool               `json:"stopped_early,omitempty"`
	Imported     bool               `json:"imported,omitempty"`
	SizeBytes    int64              `json:"size_bytes"`
}

// ModelName summarizes the versions stored under one name.
type ModelName struct {
	Name          string `json:"name"`
	LatestVersion int    `json:"latest_version"`
	Versions      []int  `json:"versions"`
}

// counter is the payload of models/<name>/counter: the last version ever
// assigned under the name. It outlives every version, so deleted version
// numbers are never handed out again.
type counter struct {
	Name        string `json:"name"`
	LastVersion int    `json:"last_version"`
}

// nameLock orders every operation on one model name: writers (PutModel,
// deletes) exclusively, readers shared. Entries are reference-counted and
// dropped when unused, so looking up many unknown names costs no memory.
type nameLock struct {
	sync.RWMutex
	refs int
}

// lockName locks name for writing (or reading) and returns the unlock.
func (s *Store) lockName(name string, write bool) (unlock func()) {
	s.mu.Lock()
	l, ok := s.nameLocks[name]
	if !ok {
		l = new(nameLock)
		s.nameLocks[name] = l
	}
	l.refs++
	s.mu.Unlock()
	if write {
		l.Lock()
	} else {
		l.RLock()
	}
	return func() {
		if write {
			l.Unlock()
		} else {
			l.RUnlock()
		}
		s.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(s.nameLocks, name)
		}
		s.mu.Unlock()
	}
}

// versions lists the stored versions of name in ascending order. A name
// never stored has none.
func (s *Store) versions(name string) ([]int, error) {
	dir := modelDir(name)
	ents, err := s.fs.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, readErr(dir, err)
	}
	var vs []int
	for _, e := range ents {
		if v, ok := parseVersionFile(e.Name(), ".meta"); ok && e.Type().IsRegular() {
			vs = append(vs, v)
		}
	}
	slices.Sort(vs)
	return vs, nil
}

// PutModel stores file (already validated by the engine's decoder) as the
// next version of meta.Name, filling Version, CreatedAt and SizeBytes.
// Versions are never reused, even after deletes: the name's counter is
// made durable before the version is written, so a failed or interrupted
// put burns its number rather than risking its reuse.
func (s *Store) PutModel(ctx context.Context, meta ModelMeta, file []byte) (ModelMeta, error) {
	return s.putModel(ctx, meta, file, false)
}

// putModel is PutModel; guarded holds the model file's write to the disk
// floor (ImportModel).
func (s *Store) putModel(ctx context.Context, meta ModelMeta, file []byte, guarded bool) (ModelMeta, error) {
	if err := checkModelName(meta.Name); err != nil {
		return ModelMeta{}, err
	}
	defer s.lockName(meta.Name, true)()

	if err := s.mkdir(modelDir(meta.Name)); err != nil {
		return ModelMeta{}, err
	}
	vs, err := s.versions(meta.Name)
	if err != nil {
		return ModelMeta{}, err
	}
	last := 0
	if len(vs) > 0 {
		last = vs[len(vs)-1]
	}
	cpath := counterPath(meta.Name)
	b, err := s.readBytes(cpath, kindCounter)
	switch {
	case err == nil:
		if err := checkFormat(cpath, "version counter", b, counterFormat); err != nil {
			return ModelMeta{}, err
		}
		var c counter
		if err := json.Unmarshal(b, &c); err != nil || c.Name != meta.Name || c.LastVersion < 0 {
			return ModelMeta{}, corrupt(cpath, "bad version counter")
		}
		last = max(last, c.LastVersion)
	case errors.Is(err, ErrNotFound):
		// A new name (or one whose counter write never completed: the
		// stored versions bound what was assigned).
	default:
		// Guessing could reuse a deleted version; refuse instead.
		return ModelMeta{}, err
	}
	meta.Version = last + 1
	meta.CreatedAt = time.Now().UTC()
	meta.SizeBytes = int64(len(file))

	cb, _ := withFormat(counterFormat, &counter{Name: meta.Name, LastVersion: meta.Version})
	if err := s.writeBytes(ctx, cpath, kindCounter, cb); err != nil {
		return ModelMeta{}, err
	}
	fpath := modelFilePath(meta.Name, meta.Version)
	if err := s.writeModelFile(ctx, fpath, file, guarded); err != nil {
		return ModelMeta{}, err
	}
	mb, err := withFormat(modelMetaFormat, &meta)
	if err != nil {
		s.remove(fpath)
		return ModelMeta{}, fmt.Errorf("store: encode model metadata: %w", err)
	}
	if err := s.writeBytes(ctx, modelMetaPath(meta.Name, meta.Version), kindModelMeta, mb); err != nil {
		s.remove(fpath)
		return ModelMeta{}, err
	}
	s.modelChanges.Add(1)
	return meta, nil
}

// ListModels lists model names with their versions, sorted by name. Names
// whose every version was deleted are not listed; names that cannot be
// read are skipped and logged.
func (s *Store) ListModels(ctx context.Context) ([]ModelName, error) {
	ents, err := s.fs.ReadDir(dirModels)
	if err != nil {
		return nil, readErr(dirModels, err)
	}
	out := []ModelName{}
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || checkModelName(name) != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		mn, err := s.ModelVersions(ctx, name)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				s.log.Error("store: skipping unreadable model", "name", name, "err", err)
			}
			continue
		}
		out = append(out, mn)
	}
	slices.SortFunc(out, func(a, b ModelName) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

// ModelVersions lists one name's versions in ascending order. A name with
// no stored version gives ErrNotFound.
func (s *Store) ModelVersions(ctx context.Context, name string) (ModelName, error) {
	if err := checkModelName(name); err != nil {
		return ModelName{}, err
	}
	defer s.lockName(name, false)()
	vs, err := s.versions(name)
	if err != nil {
		return ModelName{}, err
	}
	if len(vs) == 0 {
		return ModelName{}, fmt.Errorf("store: model %s: %w", name, ErrNotFound)
	}
	return ModelName{Name: name, LatestVersion: vs[len(vs)-1], Versions: vs}, nil
}

// resolve turns version 0 into the latest stored version. The caller holds
// the name's lock.
func (s *Store) resolve(name string, version int) (int, error) {
	if err := checkModelName(name); err != nil {
		return 0, err
	}
	if err := checkVersion(version); err != nil {
		return 0, err
	}
	if version > 0 {
		return version, nil
	}
	vs, err := s.versions(name)
	if err != nil {
		return 0, err
	}
	if len(vs) == 0 {
		return 0, fmt.Errorf("store: model %s: %w", name, ErrNotFound)
	}
	return vs[len(vs)-1], nil
}

// modelMeta reads one version's metadata; the caller holds the name's lock.
func (s *Store) modelMeta(name string, version int) (ModelMeta, error) {
	rel := modelMetaPath(name, version)
	b, err := s.readBytes(rel, kindModelMeta)
	if err != nil {
		return ModelMeta{}, err
	}
	if err := checkFormat(rel, "model metadata", b, modelMetaFormat); err != nil {
		return ModelMeta{}, err
	}
	var m ModelMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return ModelMeta{}, corrupt(rel, "decode: %v", err)
	}
	if m.Name != name || m.Version != version {
		return ModelMeta{}, corrupt(rel, "holds model %s version %d", quote(m.Name), m.Version)
	}
	return m, nil
}

// ModelMeta returns a version's metadata; version 0 means the latest.
func (s *Store) ModelMeta(ctx context.Context, name string, version int) (ModelMeta, error) {
	if err := checkModelName(name); err != nil {
		return ModelMeta{}, err
	}
	defer s.lockName(name, false)()
	v, err := s.resolve(name, version)
	if err != nil {
		return ModelMeta{}, err
	}
	return s.modelMeta(name, v)
}

// ModelFile returns a version's model file and metadata; version 0 means the
// latest.
func (s *Store) ModelFile(ctx context.Context, name string, version int) (ModelMeta, []byte, error) {
	if err := checkModelName(name); err != nil {
		return ModelMeta{}, nil, err
	}
	defer s.lockName(name, false)()
	v, err := s.resolve(name, version)
	if err != nil {
		return ModelMeta{}, nil, err
	}
	m, err := s.modelMeta(name, v)
	if err != nil {
		return ModelMeta{}, nil, err
	}
	rel := modelFilePath(name, v)
	file, err := s.readBytes(rel, kindModelFile)
	if errors.Is(err, ErrNotFound) {
		// The metadata is written after the file and removed before it.
		return ModelMeta{}, nil, corrupt(rel, "model file missing")
	}
	if err != nil {
		return ModelMeta{}, nil, err
	}
	return m, file, nil
}

// DeleteModelVersion deletes one version (which must be positive). Its
// number is never reused.
func (s *Store) DeleteModelVersion(ctx context.Context, name string, version int) error {
	if err := checkModelName(name); err != nil {
		return err
	}
	if version <= 0 {
		return fmt.Errorf("%w: model version %d must be positive", ErrInvalidName, version)
	}
	defer s.lockName(name, true)()
	return s.deleteVersion(name, version)
}

func (s *Store) deleteVersion(name string, version int) error {
	defer s.modelChanges.Add(1)
	if err := s.remove(modelMetaPath(name, version)); err != nil {
		return err
	}
	if err := s.remove(modelFilePath(name, version)); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// DeleteModel deletes every version of a name; its version counter
// survives, so the next PutModel continues the numbering.
func (s *Store) DeleteModel(ctx context.Context, name string) error {
	if err := checkModelName(name); err != nil {
		return err
	}
	defer s.lockName(name, true)()
	vs, err := s.versions(name)
	if err != nil {
		return err
	}
	if len(vs) == 0 {
		return fmt.Errorf("store: model %s: %w", name, ErrNotFound)
	}
	for _, v := range vs {
		if err := s.deleteVersion(name, v); err != nil {
			return err
		}
	}
	return nil
}
