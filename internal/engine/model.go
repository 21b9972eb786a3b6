package engine

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/backpropd/backpropd/internal/kernels"
	"github.com/backpropd/backpropd/internal/table"
)

// Summary is the training summary stored inside a model file. When early
// stopping restored the best weights, the figures are those of the best
// epoch; otherwise those of the last one.
type Summary struct {
	Epochs       int      `json:"epochs"`
	Loss         float64  `json:"loss"`
	ValLoss      *float64 `json:"val_loss,omitempty"`
	Accuracy     *float64 `json:"accuracy,omitempty"`
	ValAccuracy  *float64 `json:"val_accuracy,omitempty"`
	StoppedEarly bool     `json:"stopped_early"`
	TrainRows    int      `json:"train_rows"`
	// EncodedWidth is the number of network inputs the typed input
	// columns encode to; 0 for a model of numeric features, whose inputs
	// are its features.
	EncodedWidth int `json:"encoded_width,omitempty"`
}

// Model is a trained network ready for inference. It is immutable and safe
// for concurrent use.
type Model struct {
	task         Task
	cfg          Config
	summary      Summary
	features     int
	outputs      int
	featureNames []string
	targetNames  []string
	classes      []string
	mean, std    []float64 // shift and scale of every network input; nil without scaling
	// inputs is the encoding of typed input columns, nil for numeric
	// features; index holds each category input's kept-level positions.
	inputs      []inputSpec
	target      string // a typed classifier's target column name
	index       []map[string]int32
	numericOnly bool // every input is a number column
	specs       []layerSpec
	// net is the network's shape; exactly one of n64 and n32, by the
	// precision it was trained in, holds it.
	net    shape
	n64    *network[float64]
	n32    *network[float32]
	scaler *scaler
	// chunk is the rows Predict runs at once (chunkRows); small and large
	// hold inference workspaces for up to min(smallRows, chunk) and chunk
	// rows, so that steady-state Predict calls allocate nothing and a
	// one-row request does not pin a large buffer.
	chunk        int
	small, large sync.Pool
}

const (
	smallRows    = 16
	predictChunk = 256
	// maxChunkValues bounds chunk rows × widest layer, so that one
	// inference buffer holds at most 2^20 values (8 MiB in float64, 4 MiB
	// in float32) and a prediction's two at most 16 MiB, however wide the
	// model.
	maxChunkValues = 1 << 20
)

// shape is what a Model asks of its network whatever its precision.
type shape interface {
	inputs() int
	outputs() int
	widest() int
	numParams() int
}

func (net *network[T]) numParams() int { return len(net.params) }

// chunkRows is the rows one inference pass takes for a network whose
// widest layer (inputs included) has widest units: predictChunk, fewer
// when chunkRows × widest would exceed maxChunkValues, and at least 1.
func chunkRows(widest int) int {
	return max(1, min(predictChunk, maxChunkValues/max(widest, 1)))
}

// newModel builds a model that owns every slice it is given.
// features is the number of input columns; the network's input width
// is specs[0].In, which differs for typed inputs. The weights are p32
// for a float32 model (cfg.Training.precision() is Float32), otherwise
// p64; nil allocates zeros.
func newModel(task Task, cfg Config, sum Summary, features int, featureNames, targetNames, classes []string, mean, std []float64, specs []layerSpec, loss Loss, p64 []float64, p32 []float32, inputs []inputSpec) *Model {
	m := &Model{
		task: task, cfg: cfg, summary: sum, features: features,
		featureNames: featureNames, targetNames: targetNames, classes: classes,
		mean: mean, std: std, specs: specs, inputs: inputs,
	}
	if inputs != nil {
		m.index = indexes(inputs)
		m.numericOnly = true
		for j := range inputs {
			m.numericOnly = m.numericOnly && inputs[j].Kind == table.Number
		}
	}
	if cfg.Training.precision() == Float32 {
		m.n32 = newNetwork(specs, loss, p32, false)
		m.net = m.n32
		setPools(m, m.n32)
	} else {
		m.n64 = newNetwork(specs, loss, p64, false)
		m.net = m.n64
		setPools(m, m.n64)
	}
	m.outputs = m.net.outputs()
	m.scaler = newScaler(mean, std)
	return m
}

// setPools sizes m's chunks for net and makes its pools hand out
// inference workspaces of net's precision.
func setPools[T float](m *Model, net *network[T]) {
	m.chunk = chunkRows(net.widest())
	m.small.New = func() any { return newInferWorkspace(net, min(smallRows, m.chunk)) }
	m.large.New = func() any { return newInferWorkspace(net, m.chunk) }
}

// Model returns the trained model: a copy of the current weights (the best
// ones when early stopping restored them), taken now, with the
// standardization, class labels and a training summary.
func (t *Trainer) Model() *Model {
	pr := t.data
	sum := Summary{Epochs: t.epoch, StoppedEarly: t.stoppedEarly || t.finished, TrainRows: len(pr.trainIdx)}
	if n := t.ModelEpoch(); n > 0 {
		e := t.history[n-1]
		sum.Loss, sum.ValLoss, sum.Accuracy, sum.ValAccuracy = e.Loss, clonePtr(e.ValLoss), clonePtr(e.Accuracy), clonePtr(e.ValAccuracy)
	}
	specs := slices.Clone(architecture(t.cfg.Network, pr.train.features, pr.outputs))
	features := pr.train.features
	var inputs []inputSpec
	if pr.inputs != nil {
		features = len(pr.inputs)
		sum.EncodedWidth = pr.width
		inputs = cloneSpecs(pr.inputs)
	}
	var p64 []float64
	var p32 []float32
	switch c := t.core.(type) {
	case *core[float32]:
		p32 = slices.Clone(c.net.params)
	case *core[float64]:
		p64 = slices.Clone(c.net.params)
	}
	m := newModel(t.task, t.cfg.clone(), sum, features,
		slices.Clone(pr.featureNames), slices.Clone(pr.targetNames), slices.Clone(pr.classes),
		slices.Clone(pr.mean), slices.Clone(pr.std), specs, t.cfg.Network.Loss, p64, p32, inputs)
	m.target = pr.target
	return m
}

func cloneSpecs(specs []inputSpec) []inputSpec {
	out := slices.Clone(specs)
	for j := range out {
		out[j].Min, out[j].Max = clonePtr(out[j].Min), clonePtr(out[j].Max)
		out[j].Levels = slices.Clone(out[j].Levels)
	}
	return out
}

// ModelEpoch is the 1-based epoch whose weights Model returns, and whose
// history entry its summary copies: the best epoch when early stopping
// restored its weights, otherwise the last completed epoch; 0 before the
// first. After a Stop the weights also hold the mini-batches trained of the
// unfinished epoch, which has no history entry.
func (t *Trainer) ModelEpoch() int {
	if t.finished && t.keepBest && t.es.HasBest && t.es.BestEpoch >= 1 && t.es.BestEpoch <= len(t.history) {
		return t.es.BestEpoch
	}
	return len(t.history)
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	return ptr(*p)
}

// clone is a deep copy: no slice or pointer is shared with c.
func (c Config) clone() Config {
	c.Network.Hidden = slices.Clone(c.Network.Hidden)
	for i := range c.Network.Hidden {
		c.Network.Hidden[i].Slope = clonePtr(c.Network.Hidden[i].Slope)
	}
	t := &c.Training
	t.Shuffle, t.Seed, t.Standardize = clonePtr(t.Shuffle), clonePtr(t.Seed), clonePtr(t.Standardize)
	t.ClassWeight = t.ClassWeight.clone()
	c.Preprocessing = c.Preprocessing.clone()
	o := &t.Optimizer
	o.Beta1, o.Beta2, o.Rho = clonePtr(o.Beta1), clonePtr(o.Beta2), clonePtr(o.Rho)
	if t.EarlyStopping != nil {
		es := *t.EarlyStopping
		es.Enabled, es.RestoreBest, es.Patience = clonePtr(es.Enabled), clonePtr(es.RestoreBest), clonePtr(es.Patience)
		t.EarlyStopping = &es
	}
	return c
}

// Task returns the model's task.
func (m *Model) Task() Task { return m.task }

// Features is the number of input columns: the numeric features, or the
// typed columns a model trained on typed data takes.
func (m *Model) Features() int { return m.features }

// EncodedWidth is the number of network inputs: Features for numeric
// features, the width the typed columns encode to otherwise.
func (m *Model) EncodedWidth() int { return m.net.inputs() }

// TargetName is the name of the model's first target column: a
// regression or multi-label model's first target name, a classifier's
// target column when it was trained on typed data with one target name;
// "" otherwise (a classifier of numeric features keeps its class labels,
// not the column's name).
func (m *Model) TargetName() string {
	if len(m.targetNames) > 0 {
		return m.targetNames[0]
	}
	return m.target
}

// FeatureNames are the input column names, in order.
func (m *Model) FeatureNames() []string { return slices.Clone(m.featureNames) }

// TargetNames are the target column names (regression and multi-label).
func (m *Model) TargetNames() []string { return slices.Clone(m.targetNames) }

// Outputs is the width of one prediction row.
func (m *Model) Outputs() int { return m.outputs }

// Classes are the class labels of a classifier in byte order, indexed like
// its outputs (for a binary model, Classes()[1] is the class whose
// probability the single output gives); nil for regression and multi-label
// models.
func (m *Model) Classes() []string { return slices.Clone(m.classes) }

// Config returns the resolved configuration the model was trained with.
func (m *Model) Config() Config { return m.cfg.clone() }

// Summary returns the training summary.
func (m *Model) Summary() Summary {
	s := m.summary
	s.ValLoss, s.Accuracy, s.ValAccuracy = clonePtr(s.ValLoss), clonePtr(s.Accuracy), clonePtr(s.ValAccuracy)
	return s
}

// NumParams is the number of weights and biases.
func (m *Model) NumParams() int { return m.net.numParams() }

// Precision is the floating-point type of the model's weights and
// inference: that of its training.
func (m *Model) Precision() Precision { return m.cfg.Training.precision() }

// Predict computes outputs for rows×Features() row-major inputs x into dst,
// which must hold at least rows×Outputs() values: probabilities for
// classifiers (softmax rows, or sigmoid per output), values for regression.
// It applies the stored preprocessing. A model trained on typed columns
// takes x only when every input is a number column (NaN is a missing
// cell); otherwise it takes PredictColumns. It returns an error, never panics,
// on wrong sizes. It is safe for concurrent use and, for a steady stream
// of calls, allocates nothing: the buffers come from a pool. It runs the
// rows in chunks through two activation buffers, so its own memory is at
// most PredictMemory(rows) bytes whatever the number of layers.
func (m *Model) Predict(dst, x []float64, rows int) error {
	switch {
	case rows < 0:
		return fmt.Errorf("predict: rows is %d", rows)
	case len(x) != rows*m.features:
		return fmt.Errorf("predict: x holds %d values; want rows × features = %d × %d", len(x), rows, m.features)
	case len(dst) < rows*m.outputs:
		return fmt.Errorf("predict: dst holds %d values; want at least rows × outputs = %d × %d", len(dst), rows, m.outputs)
	case m.inputs != nil && !m.numericOnly:
		return errTypedInputs
	}
	pool := &m.large
	if rows <= min(smallRows, m.chunk) {
		pool = &m.small
	}
	if m.n32 != nil {
		predictRows(m, m.n32, pool, dst, x, rows)
	} else {
		predictRows(m, m.n64, pool, dst, x, rows)
	}
	return nil
}

// predictRows is Predict in net's precision: the rows are encoded and
// scaled in float64, rounded to T as they enter the network, and its
// outputs widened back to float64 into dst.
func predictRows[T float](m *Model, net *network[T], pool *sync.Pool, dst, x []float64, rows int) {
	ws := pool.Get().(*inferWorkspace[T])
	defer pool.Put(ws)
	pack := getPack[T](min(rows, ws.rows))
	defer putPack(pack)
	f, k := m.features, m.outputs
	for s := 0; s < rows; s += ws.rows {
		n := min(ws.rows, rows-s)
		in := ws.a
		if m.inputs != nil {
			w := net.inputs()
			for r := range n {
				row, enc := x[(s+r)*f:(s+r+1)*f], ws.encodeRow(r, w)
				off := 0
				for j := range m.inputs {
					m.inputs[j].encodeValue(enc[off:], row[j])
					off += m.inputs[j].width()
				}
				scaleRow(m.scaler, in[r*w:(r+1)*w], enc)
			}
		} else {
			for r := range n {
				scaleRow(m.scaler, in[r*f:r*f+f], x[(s+r)*f:(s+r+1)*f])
			}
		}
		widen(dst[s*k:(s+n)*k], net.inferPass(ws, n, pack))
	}
}

// widen copies src into dst as float64.
func widen[T float](dst []float64, src []T) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = float64(v)
	}
}

// PredictMemory is the most bytes Predict's buffers take for rows rows:
// two activation buffers of chunk × widest values of the model's
// precision (8 bytes for float64, 4 for float32), where chunk is the rows
// run at once (at most 256, fewer for wide models) and widest the widest
// layer, inputs included; for float32 one float64 row of inputs that
// typed cells are encoded into; and, where passes of that many rows run
// on package kernels, one set of packing buffers
// (kernels.WorkspaceBytes). Callers add their own inputs and outputs.
func (m *Model) PredictMemory(rows int) int64 {
	chunk := m.chunk
	if rows <= min(smallRows, m.chunk) {
		chunk = min(smallRows, m.chunk)
	}
	kern := useKernels() && min(rows, chunk) >= inferKernelRows
	if m.n32 != nil {
		n := int64(chunk)*int64(m.net.widest())*4*2 + int64(m.net.inputs())*8
		if kern {
			n += kernels.WorkspaceBytes[float32]()
		}
		return n
	}
	n := int64(chunk) * int64(m.net.widest()) * 8 * 2
	if kern {
		n += kernels.WorkspaceBytes[float64]()
	}
	return n
}

// errNoClasses is returned by Labels for models without class labels.
var errNoClasses = errors.New("labels: the model has no class labels (regression or multi-label)")

// Labels writes, for each of rows rows of probabilities from Predict, the
// label of the most probable class into dst: for a binary model
// Classes()[1] when its probability is at least 0.5, otherwise
// Classes()[0]; for multiclass the argmax, the first on ties.
func (m *Model) Labels(dst []string, probs []float64, rows int) error {
	switch {
	case m.classes == nil:
		return errNoClasses
	case rows < 0:
		return fmt.Errorf("labels: rows is %d", rows)
	case len(probs) < rows*m.outputs:
		return fmt.Errorf("labels: probs holds %d values; want at least rows × outputs = %d × %d", len(probs), rows, m.outputs)
	case len(dst) < rows:
		return fmt.Errorf("labels: dst holds %d labels; want at least %d", len(dst), rows)
	}
	k := m.outputs
	for r := range rows {
		if k == 1 {
			c := 0
			if probs[r] >= 0.5 {
				c = 1
			}
			dst[r] = m.classes[c]
			continue
		}
		dst[r] = m.classes[argmax(probs[r*k:r*k+k])]
	}
	return nil
}
