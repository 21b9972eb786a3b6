package engine

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/backpropd/backpropd/internal/kernels"
	"github.com/backpropd/backpropd/internal/table"
)

// DataShape is what EstimateMemory needs to know about a job's data: no
// values, only sizes, so that a caller can estimate before it loads
// anything.
type DataShape struct {
	Rows, Features int // the training data
	// Outputs is the width of the output layer: the classes of a
	// multiclass task, 1 for binary labels, the target columns otherwise.
	Outputs int
	// TargetColumns is the number of numeric target columns per row; 0
	// when the targets are class labels.
	TargetColumns int
	// Labels says the targets are class labels; LabelBytes is the length
	// of the longest one.
	Labels     bool
	LabelBytes int
	// ValRows is the number of rows of a separate validation set (0
	// without one); ValFraction says a held-out fraction of the training
	// rows validates instead.
	ValRows     int
	ValFraction bool
	// Width is the number of network inputs typed data (Data.Columns)
	// encodes to, 0 for numeric X; ColumnBytes is the memory of the typed
	// columns, training and validation (see ColumnsBytes). With typed
	// data, Features is the number of columns.
	Width       int
	ColumnBytes int64
	// Threads is the goroutines the job's products run on
	// (Options.Threads); 0 means 1. Each holds its own GEMM packing
	// buffers where products run on package kernels.
	Threads int
}

// ColumnsBytes is the memory typed columns hold: 8 bytes per number or
// datetime cell, 4 per category code, and each level as a string header
// and its bytes.
func ColumnsBytes(cols []table.Column) int64 {
	var n int64
	for j := range cols {
		c := &cols[j]
		n = sat(n, mul(int64(len(c.Values)), 8), mul(int64(len(c.Codes)), 4))
		for _, l := range c.Levels {
			n = sat(n, 16, int64(len(l)))
		}
	}
	return n
}

// MemoryEstimate is a job's estimated peak memory in bytes, by where it
// goes. Total is the sum of the parts.
type MemoryEstimate struct {
	// Data is the training and validation data as the job holds it
	// (values, targets or labels) plus the trainer's per-row indices.
	Data int64
	// Workspace is the per-batch buffers: every layer's activations for
	// the forward pass and its deltas for the backward pass, batch rows
	// each, plus the batch's inputs and targets and the dropout masks.
	Workspace int64
	// Network is the weights and biases, their gradients and the
	// optimizer's moment vectors.
	Network int64
	// Copies is every other copy of the weights a run makes: the best
	// weights (early stopping), the epoch-boundary snapshot, a checkpoint
	// being encoded and one being read back on resume, the model and its
	// encoded file, and the history as the record and the checkpoint hold
	// it.
	Copies int64
	Total  int64
}

// memoryOverhead covers what does not grow with the data or the network:
// the trainer's and the model's small structures, the configuration's
// fingerprint, the JSON headers.
const memoryOverhead = 256 << 10

// historyEntryBytes bounds one epoch's history entry in all the forms a
// job holds at once: the Epoch value, its JSON in the job record, and in a
// checkpoint's header while it is encoded.
const historyEntryBytes = 1 << 10

// EstimateMemory is a conservative estimate of the peak memory, in bytes,
// of training cfg for task on data of shape d: everything NewTrainer
// allocates, what a Run and its checkpoints allocate, the model saved at
// the end, and the data itself. It allocates nothing, so callers use it to
// refuse or hold back a job before the job can ask the process for more
// memory than it has (a Go out-of-memory error is fatal and cannot be
// recovered).
//
// TestEstimateMemoryBoundsMeasured holds it to within a factor of 2 above
// the bytes actually allocated, for several shapes. It mirrors the
// allocations in NewTrainer, newWorkspace, newNetwork, newDropout,
// newOptimizer, takeSnapshot, MarshalState, RestoreState and Model: every
// change to what those allocate must update it, and that test.
//
// cfg need not be resolved or valid: it is resolved here, and sizes out of
// range saturate at math.MaxInt64 instead of overflowing.
func EstimateMemory(cfg Config, task Task, d DataShape) MemoryEstimate {
	hasVal := d.ValRows > 0 || d.ValFraction
	cfg = cfg.Resolve(task, hasVal)
	rows, feats, outs := int64(max(d.Rows, 0)), int64(max(d.Features, 1)), int64(max(d.Outputs, 1))
	valRows := int64(max(d.ValRows, 0))
	allRows := sat(rows, valRows)

	// Data: the caller's X and targets (the store loads them for the
	// job), the class indices and the sorted copy of the labels that
	// finding the classes makes, and the row indices and permutation.
	// Typed data is its columns, the encoded network inputs of every row
	// and the buffer fitting a median sorts one column's training cells in.
	data := mul(allRows, feats, 8)
	if d.Width > 0 {
		feats = int64(d.Width)
		data = sat(d.ColumnBytes, mul(allRows, feats, 8), mul(rows, 8))
	}
	if d.Labels {
		// A label is a string header (16 bytes) into the store's blob of
		// length-prefixed (4 bytes) labels; cls is an int32 per row.
		perRow := int64(16+4+4) + int64(max(d.LabelBytes, 0))
		data = sat(data, mul(allRows, perRow), mul(rows, 16))
	} else {
		data = sat(data, mul(allRows, int64(max(d.TargetColumns, 0)), 8))
	}
	data = sat(data, mul(allRows, 8), mul(rows, 8)) // trainIdx+valIdx, perm
	if d.ValFraction {
		// split: the groups, the held-out flags, the class counts.
		data = sat(data, mul(rows, 8), rows, mul(outs, 8))
	}
	// Standardization: mean, std, their inverse, and the model's copies.
	data = sat(data, mul(feats, 6, 8))

	// Everything the network holds is in its precision; the data, the
	// scaler and the history stay float64.
	elem := int64(8)
	if cfg.Training.precision() == Float32 {
		elem = 4
	}

	// Workspace: acts[0] is batch × features, acts[i+1] and deltas[i]
	// batch × the width of layer i, y batch × outputs, ones batch.
	batch := int64(max(cfg.Training.BatchSize, 1))
	if rows > 0 {
		batch = min(batch, rows)
	}
	widths := outs
	params := int64(0)
	in := feats
	for _, l := range cfg.Network.Hidden {
		u := int64(max(l.Units, 0))
		widths = sat(widths, u)
		params = sat(params, mul(sat(in, 1), u))
		in = u
	}
	params = sat(params, mul(sat(in, 1), outs))
	ws := mul(batch, sat(feats, mul(widths, 2), outs, 1), elem)
	// The GEMM packing buffers of every goroutine of the run's pool,
	// where products run on package kernels.
	if useKernels() {
		per := kernels.WorkspaceBytes[float64]()
		if elem == 4 {
			per = kernels.WorkspaceBytes[float32]()
		}
		ws = sat(ws, mul(int64(min(max(d.Threads, 1), maxThreads)), per))
	}
	// Dropout masks: a byte per row of the batch and unit of a hidden
	// layer with dropout (input dropout needs none).
	ws = sat(ws, dropoutBytes(cfg.Network, batch))

	// Network: parameters, gradients and the optimizer's moments.
	moments := int64(0)
	switch o := cfg.Training.Optimizer; o.Name {
	case optAdam:
		moments = 2
	case optRMSProp:
		moments = 1
	case optSGD:
		if o.Momentum != 0 {
			moments = 1
		}
	}
	network := mul(sat(2, moments), params, elem)

	// Copies: the snapshot holds params, moments and best; a checkpoint
	// encodes the same vectors, and a resume reads one back; the model
	// clones the params and its file encodes them.
	best := int64(0)
	if es := cfg.Training.EarlyStopping; hasVal && cfg.earlyStopping() && (es.RestoreBest == nil || *es.RestoreBest) {
		best = 1
	}
	state := sat(1, moments, best)
	copies := mul(sat(best, mul(state, 3), 2), params, elem)
	copies = sat(copies, mul(int64(max(cfg.Training.Epochs, 0)), historyEntryBytes), memoryOverhead)

	return MemoryEstimate{Data: data, Workspace: ws, Network: network, Copies: copies,
		Total: sat(data, ws, network, copies)}
}

// CheckMemory returns a *ValidationError when the estimate e of training
// cfg exceeds limit bytes (what one job may use), naming the fields to
// change: the batch size and the widest hidden layer when the workspace is
// the largest part, the widest layer when the weights and their copies
// are, the dataset when its data is. A limit of 0 or less means no limit.
func CheckMemory(cfg Config, e MemoryEstimate, limit int64) error {
	if limit <= 0 || e.Total <= limit {
		return nil
	}
	widest := -1
	for i, l := range cfg.Network.Hidden {
		if widest < 0 || l.Units > cfg.Network.Hidden[widest].Units {
			widest = i
		}
	}
	layer := ""
	if widest >= 0 {
		layer = fmt.Sprintf("network.hidden[%d].units", widest)
	}
	var fields []string
	switch {
	case e.Workspace >= max(e.Network+e.Copies, e.Data):
		fields = append(fields, "training.batch_size")
		if layer != "" {
			fields = append(fields, layer)
		}
	case e.Network+e.Copies >= e.Data && layer != "":
		fields = append(fields, layer)
	default:
		fields = append(fields, "dataset_id")
	}
	change := fields[0]
	if len(fields) > 1 {
		change += " or " + fields[1]
	}
	msg := fmt.Sprintf("the job needs an estimated %s of memory (batch workspace %s, weights with gradients and optimizer state %s, their copies %s, data %s), more than the %s one job may use; lower %s",
		FormatBytes(e.Total), FormatBytes(e.Workspace), FormatBytes(e.Network), FormatBytes(e.Copies), FormatBytes(e.Data), FormatBytes(limit), change)
	var p problems
	for _, f := range fields {
		p.add(f, "%s", msg)
	}
	return p.err()
}

// FormatBytes writes n in binary units with up to one decimal: 512 B,
// 1.5 KiB, 717.4 MiB, 1.1 TiB.
func FormatBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n)
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%s %s", trimZero(fmt.Sprintf("%.1f", v)), units[i])
}

func trimZero(s string) string {
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s
}

// sat is the sum of its non-negative arguments, or math.MaxInt64 when it
// would overflow.
func sat(xs ...int64) int64 {
	var s uint64
	for _, x := range xs {
		var c uint64
		s, c = bits.Add64(s, uint64(max(x, 0)), 0)
		if c != 0 || s > math.MaxInt64 {
			return math.MaxInt64
		}
	}
	return int64(s)
}

// mul is the product of its non-negative arguments, or math.MaxInt64 when
// it would overflow.
func mul(xs ...int64) int64 {
	p := uint64(1)
	for _, x := range xs {
		hi, lo := bits.Mul64(p, uint64(max(x, 0)))
		if hi != 0 || lo > math.MaxInt64 {
			return math.MaxInt64
		}
		p = lo
	}
	return int64(p)
}

// shapeOf is the DataShape of data that prepare has checked, trained on
// threads goroutines.
func shapeOf(train Data, val Validation, pr *prepared, threads int) DataShape {
	d := DataShape{Rows: train.Rows, Features: train.Features, Outputs: pr.outputs, TargetColumns: pr.train.k,
		Labels: pr.train.cls != nil, ValFraction: val.Fraction != 0, Threads: threads}
	longest := func(labels []string) {
		for _, l := range labels {
			d.LabelBytes = max(d.LabelBytes, len(l))
		}
	}
	longest(train.Labels)
	if pr.inputs != nil {
		d.Width = pr.width
		d.ColumnBytes = ColumnsBytes(train.Columns)
		if val.Set != nil {
			d.ColumnBytes = sat(d.ColumnBytes, ColumnsBytes(val.Set.Columns))
		}
	}
	if val.Set != nil {
		d.ValRows = val.Set.Rows
		longest(val.Set.Labels)
	}
	return d
}
