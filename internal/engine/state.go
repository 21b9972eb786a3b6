package engine

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

const stateMagic = "BPDSTATE"

// stateFormat is the format version of training states (checkpoints)
// this build writes and the newest it reads. Bump it when an older build
// would misread the new states.
const stateFormat = 1

// stateHeader is the JSON header of a training state. The floats that
// follow are the parameters, the optimizer's moment vectors in order, and
// the best weights when early stopping keeps them.
type stateHeader struct {
	Fingerprint string  `json:"fingerprint"`
	Epoch       int     `json:"epoch"`
	Finished    bool    `json:"finished"`
	Step        int64   `json:"step"`
	RNG         []byte  `json:"rng"`
	History     []Epoch `json:"history"`
	EarlyStop   esState `json:"early_stopping"`
	Params      int     `json:"params"`
	Moments     int     `json:"moments"`
	Best        bool    `json:"best"`
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
		Fingerprint: t.finger, Epoch: s.epoch, Finished: s.finished, Step: s.step, RNG: s.rng,
		History: t.history[:s.history], EarlyStop: s.es,
		Params: len(s.params), Moments: len(s.moments), Best: s.best != nil,
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode training state: %w", err)
	}
	vecs := append([][]float64{s.params}, s.moments...)
	if s.best != nil {
		vecs = append(vecs, s.best)
	}
	return encodeContainer(stateMagic, stateFormat, b, vecs...), nil
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
	s := &t.snap
	switch {
	case h.Fingerprint != t.finger:
		return fmt.Errorf("restore training state: it belongs to a different configuration or data set")
	case h.Params != len(s.params) || h.Moments != len(s.moments) || h.Best != (s.best != nil):
		return corrupt("training state: vector shapes do not match the trainer")
	case h.Epoch < 0 || h.Epoch > t.cfg.Training.Epochs || len(h.History) != h.Epoch || h.Step < 0:
		return corrupt("training state: epoch %d with %d history entries", h.Epoch, len(h.History))
	}
	n := h.Params * (1 + h.Moments)
	if h.Best {
		n += h.Params
	}
	if count != n {
		return corrupt("training state: %d values present, %d expected", count, n)
	}
	var probe rand.PCG
	if err := probe.UnmarshalBinary(h.RNG); err != nil {
		return corrupt("training state: random-number state: %v", err)
	}
	for i := range h.History {
		h.History[i].Duration = time.Duration(h.History[i].DurationSeconds * float64(time.Second))
	}

	params := readFloats(&values, h.Params)
	if i := firstNonFinite(params); i >= 0 {
		return corrupt("training state: parameter %d is %v", i, params[i])
	}
	copy(s.params, params)
	for _, m := range s.moments {
		copy(m, readFloats(&values, h.Params))
	}
	if s.best != nil {
		copy(s.best, readFloats(&values, h.Params))
	}
	s.step, s.rng, s.epoch, s.es, s.finished = h.Step, h.RNG, h.Epoch, h.EarlyStop, h.Finished
	t.history = h.History
	s.history = len(h.History)
	t.rewind()
	return nil
}
