package engine

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

const stateMagic = "BPDSTATE"

// stateFormat is the format version of training states (checkpoints)
// this build writes and the newest it reads. Bump it when an older build
// would misread the new states.
//
// Format 2 adds the precision: a state of a configuration with a
// training.precision holds it in the header, and a float32 state holds
// its vectors as float32. States of configurations without one are still
// written as format 1, byte for byte as before, so that a checkpoint
// written mid-job resumes on a build that knows only format 1.
const stateFormat = 2

// stateHeader is the JSON header of a training state. The floats that
// follow are the parameters, the optimizer's moment vectors in order, and
// the best weights when early stopping keeps them, in the precision's
// type (all float64 in format 1).
type stateHeader struct {
	// Precision is the configuration's training.precision, empty (and
	// float64) in format 1.
	Precision   Precision `json:"precision,omitempty"`
	Fingerprint string    `json:"fingerprint"`
	Epoch       int       `json:"epoch"`
	Finished    bool      `json:"finished"`
	Step        int64     `json:"step"`
	RNG         []byte    `json:"rng"`
	History     []Epoch   `json:"history"`
	EarlyStop   esState   `json:"early_stopping"`
	Params      int       `json:"params"`
	Moments     int       `json:"moments"`
	Best        bool      `json:"best"`
}

// MarshalState encodes the full training state at the last completed epoch
// boundary: weights, optimizer moments and step, random-number state, epoch,
// history, early-stopping bookkeeping and best weights, in the container
// format of model files (magic "BPDSTATE"). Call it from onEpoch or after
// Run returns; after a Run interrupted mid-epoch it still encodes the last
// epoch boundary, so resuming from it is bit-identical.
func (t *Trainer) MarshalState() ([]byte, error) {
	s := &t.snap
	h := stateHeader{
		Precision:   t.cfg.Training.Precision,
		Fingerprint: t.finger, Epoch: s.epoch, Finished: s.finished, Step: s.step, RNG: s.rng,
		History: t.history[:s.history], EarlyStop: s.es,
		Params: t.core.params(), Moments: t.core.moments(), Best: t.keepBest,
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode training state: %w", err)
	}
	count := h.values()
	version, size := uint32(1), 8*count
	if h.Precision != "" {
		version = 2
		if h.Precision == Float32 {
			size = 4 * count
		}
	}
	return encodeContainerWith(stateMagic, version, b, count, size, t.core.appendState), nil
}

// values is the number of floats that follow the header.
func (h *stateHeader) values() int {
	n := h.Params * (1 + h.Moments)
	if h.Best {
		n += h.Params
	}
	return n
}

// RestoreState loads a state written by MarshalState of a Trainer with the
// same config and data shape (checked by a fingerprint); a following Run
// continues from it and ends bit-identical to an uninterrupted run. On
// error the trainer is unchanged.
func (t *Trainer) RestoreState(b []byte) error {
	raw, values, count, err := decodeContainer("training state", stateMagic, stateFormat, b)
	if err != nil {
		return err
	}
	var h stateHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		return corrupt("training state header: %v", err)
	}
	version := binary.LittleEndian.Uint32(b[8:])
	s := &t.snap
	switch {
	case version == 1 && h.Precision != "":
		return corrupt("training state: a format 1 state with a precision")
	case h.Precision != "" && h.Precision != Float32 && h.Precision != Float64:
		return corrupt("training state: unknown precision %q", h.Precision)
	case h.precision() != t.cfg.Training.precision():
		return fmt.Errorf("restore training state: it holds %s weights, and the configuration trains in %s (training.precision); a checkpoint resumes only in its own precision",
			h.precision(), t.cfg.Training.precision())
	case h.Fingerprint != t.finger:
		return fmt.Errorf("restore training state: it belongs to a different configuration or data set")
	case h.Params != t.core.params() || h.Moments != t.core.moments() || h.Best != t.keepBest:
		return corrupt("training state: vector shapes do not match the trainer")
	case h.Epoch < 0 || h.Epoch > t.cfg.Training.Epochs || len(h.History) != h.Epoch || h.Step < 0:
		return corrupt("training state: epoch %d with %d history entries", h.Epoch, len(h.History))
	}
	n := h.values()
	if count != n {
		return corrupt("training state: %d values present, %d expected", count, n)
	}
	n32 := 0
	if h.precision() == Float32 {
		n32 = n
	}
	if err := checkValues("training state", values, count, n32); err != nil {
		return err
	}
	var probe rand.PCG
	if err := probe.UnmarshalBinary(h.RNG); err != nil {
		return corrupt("training state: random-number state: %v", err)
	}
	for i := range h.History {
		h.History[i].Duration = time.Duration(h.History[i].DurationSeconds * float64(time.Second))
	}

	if err := t.core.restoreState(values); err != nil {
		return err
	}
	s.step, s.rng, s.epoch, s.es, s.finished = h.Step, h.RNG, h.Epoch, h.EarlyStop, h.Finished
	t.history = h.History
	s.history = len(h.History)
	t.rewind()
	return nil
}

// precision is the precision of the state's vectors: empty is float64.
func (h *stateHeader) precision() Precision {
	if h.Precision == "" {
		return Float64
	}
	return h.Precision
}
