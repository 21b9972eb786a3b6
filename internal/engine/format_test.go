package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestNewerFormatIsRefused bumps the format version of a model file and of
// a training state one above the newest this build reads (with a valid
// checksum, as the newer build would write it) and checks the refusal: a
// *FormatError wrapping ErrNewerFormat, not errCorrupt, whose text names
// the kind and both versions, with the trainer left unchanged.
func TestNewerFormatIsRefused(t *testing.T) {
	model := mustMarshal(t, trainedModels(t)["binary"])
	cfg := Config{
		Network:  NetworkConfig{Hidden: hidden(3, Tanh, 1)},
		Training: TrainingConfig{Epochs: 3, BatchSize: 4, Optimizer: OptimizerConfig{Name: "sgd", LearningRate: 0.1}},
	}
	d := moonsData(20, 0.1, 1)
	tr := mustTrainer(t, cfg, TaskBinary, d, Validation{}, Options{})
	if err := tr.Run(context.Background(), func(e Epoch) bool { return e.Epoch == 2 }); err != nil {
		t.Fatal(err)
	}
	state, err := tr.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	bump := func(b []byte, v uint32) []byte {
		b = slices.Clone(b)
		binary.LittleEndian.PutUint32(b[8:], v)
		return fixCRC(b)
	}
	fresh := func() *Trainer { return mustTrainer(t, cfg, TaskBinary, d, Validation{}, Options{}) }
	cases := []struct {
		what   string
		newest uint32
		b      []byte
		decode func(b []byte) error
	}{
		{"model", modelFormat, model, func(b []byte) error { _, err := DecodeModel(b); return err }},
		{"training state", stateFormat, state, func(b []byte) error {
			tr := fresh()
			err := tr.RestoreState(b)
			if err != nil && tr.EpochsDone() != 0 {
				t.Errorf("a refused state moved the trainer to epoch %d", tr.EpochsDone())
			}
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			if err := c.decode(c.b); err != nil {
				t.Fatalf("the %s as written: %v", c.what, err)
			}
			err := c.decode(bump(c.b, c.newest+1))
			var fe *FormatError
			if !errors.Is(err, ErrNewerFormat) || errors.Is(err, errCorrupt) || !errors.As(err, &fe) {
				t.Fatalf("version %d: %v; want a *FormatError wrapping ErrNewerFormat only", c.newest+1, err)
			}
			if want := (FormatError{What: c.what, Version: c.newest + 1, Newest: c.newest}); *fe != want {
				t.Errorf("FormatError = %+v, want %+v", *fe, want)
			}
			if want := c.what + " format version 2 is newer than this build reads (1); upgrade backpropd"; c.newest == 1 && err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			if err := c.decode(bump(c.b, 0)); !errors.Is(err, errCorrupt) || !strings.Contains(err.Error(), "version 0") {
				t.Errorf("version 0: %v; want a corrupt-data error naming version 0", err)
			}
		})
	}
}

// fingerprintV1Fields are the JSON paths of Config's fields when training
// states of format 1 were first written. Their JSON, as fingerprint
// encodes it, is what every stored checkpoint's fingerprint covers.
var fingerprintV1Fields = []string{
	"network", "training", "network.hidden", "training.optimizer", "training.lr_schedule", "training.early_stopping",
	"network.hidden.units", "network.hidden.activation", "network.hidden.slope",
	"network.output_activation", "network.loss", "network.init",
	"training.epochs", "training.batch_size", "training.shuffle", "training.seed", "training.standardize",
	"training.optimizer.name", "training.optimizer.learning_rate", "training.optimizer.momentum",
	"training.optimizer.nesterov", "training.optimizer.beta1", "training.optimizer.beta2",
	"training.optimizer.rho", "training.optimizer.epsilon",
	"training.l2",
	"training.lr_schedule.name", "training.lr_schedule.step_size", "training.lr_schedule.gamma", "training.lr_schedule.min_lr",
	"training.clip_norm",
	"training.early_stopping.enabled", "training.early_stopping.patience",
	"training.early_stopping.min_delta", "training.early_stopping.restore_best",
}

// configFields lists the JSON paths of the struct type t's fields, with
// whether json.Marshal may leave each out (tagged omitempty and not a
// struct value, which encoding/json always writes), descending into
// structs, pointers to structs and slices of structs.
func configFields(t reflect.Type, prefix string, out map[string]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		path := prefix + name
		out[path] = strings.Contains(","+opts+",", ",omitempty,") && f.Type.Kind() != reflect.Struct
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			configFields(ft, path+".", out)
		}
	}
}

// TestConfigFieldsKeepFingerprint guards the resume of stored checkpoints
// across upgrades. A checkpoint resumes only if the fingerprint of the
// job's config, recomputed by the new build, equals the stored one; the
// fingerprint hashes the config's JSON, so a field added to Config
// without omitempty would change the JSON, and the fingerprint, of every
// existing job, and every interrupted job would start over. A new option
// must be omitempty (a pointer, if it is a struct), with its zero value meaning what training did before
// it existed (and Resolve must leave it zero when unset), so the old
// configs encode as before. This test fails for a field missing from
// fingerprintV1Fields that lacks omitempty; TestFingerprintIsStable and
// the data directory fixtures of test/upgrade catch the rest.
func TestConfigFieldsKeepFingerprint(t *testing.T) {
	fields := map[string]bool{}
	configFields(reflect.TypeFor[Config](), "", fields)
	for _, p := range fingerprintV1Fields {
		if _, ok := fields[p]; !ok {
			t.Errorf("Config has no field %s any more: the fingerprint of every stored checkpoint that set it changes", p)
		}
	}
	for p, omittable := range fields {
		if !slices.Contains(fingerprintV1Fields, p) && !omittable {
			t.Errorf("Config field %s is new and always encoded (not omitempty, or a struct value): it changes the fingerprint of every stored checkpoint, which then no longer resumes", p)
		}
	}
}

// TestFingerprintIsStable pins the fingerprint of one resolved config and
// data shape. The expected value was computed by the build that wrote the
// first training states of format 1 (SHA-256 of fingerprint's JSON); if it
// changes, checkpoints written by earlier builds no longer resume.
func TestFingerprintIsStable(t *testing.T) {
	cfg := Config{
		Network:  NetworkConfig{Hidden: hidden(3, Tanh, 1)},
		Training: TrainingConfig{Epochs: 3, BatchSize: 4, Optimizer: OptimizerConfig{Name: "adam", LearningRate: 0.05}},
	}
	tr := mustTrainer(t, cfg, TaskBinary, moonsData(20, 0.1, 1), Validation{Fraction: 0.25}, Options{})
	const want = "9ec5d29c66a897c1416a2bba48f5e7617c969e8283d497fd1384b10a866c160e"
	if tr.finger != want {
		t.Errorf("fingerprint %s, want %s", tr.finger, want)
	}
}
