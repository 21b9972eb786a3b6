package engine

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestResolveDefaults(t *testing.T) {
	got := Config{}.Resolve(TaskMulticlass, true)
	want := Config{
		Network: NetworkConfig{
			Hidden:           []LayerConfig{{Units: 64, Activation: ReLU}},
			OutputActivation: Softmax, Loss: CrossEntropy, Init: Glorot,
		},
		Training: TrainingConfig{
			Epochs: 10, BatchSize: 32, Shuffle: boolp(true), Seed: seed(1), Standardize: boolp(true),
			Optimizer:     OptimizerConfig{Name: "adam", LearningRate: 0.001, Beta1: ptr(0.9), Beta2: ptr(0.999), Epsilon: 1e-8},
			LRSchedule:    ScheduleConfig{Name: "constant"},
			EarlyStopping: &EarlyStoppingConfig{Enabled: boolp(true), Patience: ptr(5), RestoreBest: boolp(true)},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve = %s\nwant      %s", mustJSON(t, got), mustJSON(t, want))
	}

	cases := []struct {
		name  string
		in    Config
		task  Task
		val   bool
		check func(Config) bool
	}{
		{"regression output", Config{}, TaskRegression, false, func(c Config) bool {
			return c.Network.OutputActivation == Identity && c.Network.Loss == MSE && c.Training.EarlyStopping == nil
		}},
		{"binary output", Config{}, TaskBinary, false, func(c Config) bool {
			return c.Network.OutputActivation == Sigmoid && c.Network.Loss == BinaryCrossEntropy
		}},
		{"empty hidden list stays empty", Config{Network: NetworkConfig{Hidden: []LayerConfig{}}}, TaskRegression, false, func(c Config) bool {
			return c.Network.Hidden != nil && len(c.Network.Hidden) == 0
		}},
		{"layer activation and leaky slope", Config{Network: NetworkConfig{Hidden: []LayerConfig{{Units: 3}, {Units: 4, Activation: LeakyReLU}}}}, TaskRegression, false, func(c Config) bool {
			h := c.Network.Hidden
			return h[0].Activation == ReLU && h[0].Slope == nil && *h[1].Slope == 0.01
		}},
		{"sgd", Config{Training: TrainingConfig{Optimizer: OptimizerConfig{Name: "sgd"}}}, TaskRegression, false, func(c Config) bool {
			o := c.Training.Optimizer
			return o.LearningRate == 0.01 && o.Momentum == 0 && o.Beta1 == nil && o.Beta2 == nil && o.Rho == nil && o.Epsilon == 0
		}},
		{"rmsprop", Config{Training: TrainingConfig{Optimizer: OptimizerConfig{Name: "rmsprop"}}}, TaskRegression, false, func(c Config) bool {
			o := c.Training.Optimizer
			return o.LearningRate == 0.001 && *o.Rho == 0.9 && o.Beta1 == nil && o.Epsilon == 1e-8
		}},
		{"step schedule", Config{Training: TrainingConfig{LRSchedule: ScheduleConfig{Name: "step"}}}, TaskRegression, false, func(c Config) bool {
			return c.Training.LRSchedule.StepSize == 10 && c.Training.LRSchedule.Gamma == 0.1
		}},
		{"explicit false kept", Config{Training: TrainingConfig{Shuffle: boolp(false), Standardize: boolp(false), Seed: seed(0)}}, TaskRegression, false, func(c Config) bool {
			return !*c.Training.Shuffle && !*c.Training.Standardize && *c.Training.Seed == 0
		}},
		{"early stopping filled", Config{Training: TrainingConfig{EarlyStopping: &EarlyStoppingConfig{MinDelta: 0.1}}}, TaskRegression, true, func(c Config) bool {
			es := c.Training.EarlyStopping
			return *es.Enabled && *es.Patience == 5 && es.MinDelta == 0.1 && *es.RestoreBest
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.in.Resolve(c.task, c.val)
			if !c.check(r) {
				t.Errorf("Resolve = %s", mustJSON(t, r))
			}
			if again := r.Resolve(c.task, c.val); !reflect.DeepEqual(again, r) {
				t.Errorf("Resolve is not idempotent:\nonce  %s\ntwice %s", mustJSON(t, r), mustJSON(t, again))
			}
			if err := r.Validate(c.task, 3, 2+boolToInt(c.task == TaskBinary)*-1, Limits{}); err != nil {
				t.Errorf("resolved defaults do not validate: %v", err)
			}
		})
	}
}

// TestResolveKeepsExplicitZeros: for the pointer fields, whose valid range
// includes 0 while the default does not, an explicit 0 survives Resolve
// (and a JSON round trip) and validates, and nil still takes the default.
func TestResolveKeepsExplicitZeros(t *testing.T) {
	cases := []struct {
		name  string
		in    string // the training part of a config, as a client sends it
		check func(TrainingConfig) bool
	}{
		{"adam beta1 0", `{"optimizer":{"name":"adam","beta1":0}}`, func(c TrainingConfig) bool {
			return *c.Optimizer.Beta1 == 0 && *c.Optimizer.Beta2 == 0.999
		}},
		{"adam beta2 0", `{"optimizer":{"name":"adam","beta2":0}}`, func(c TrainingConfig) bool {
			return *c.Optimizer.Beta1 == 0.9 && *c.Optimizer.Beta2 == 0
		}},
		{"rmsprop rho 0", `{"optimizer":{"name":"rmsprop","rho":0}}`, func(c TrainingConfig) bool { return *c.Optimizer.Rho == 0 }},
		{"patience 0", `{"early_stopping":{"patience":0}}`, func(c TrainingConfig) bool { return *c.EarlyStopping.Patience == 0 }},
		{"patience 0 while disabled", `{"early_stopping":{"enabled":false,"patience":0}}`, func(c TrainingConfig) bool {
			return !*c.EarlyStopping.Enabled && *c.EarlyStopping.Patience == 0
		}},
		{"patience unset", `{"early_stopping":{"min_delta":0.5}}`, func(c TrainingConfig) bool { return *c.EarlyStopping.Patience == 5 }},
		// A zero where the field does not apply changes nothing, as a zero
		// momentum with adam does; it is kept and accepted.
		{"sgd beta1 0", `{"optimizer":{"name":"sgd","beta1":0}}`, func(c TrainingConfig) bool {
			return *c.Optimizer.Beta1 == 0 && c.Optimizer.Beta2 == nil && c.Optimizer.Rho == nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var in Config
			if err := json.Unmarshal([]byte(`{"training":`+c.in+`}`), &in); err != nil {
				t.Fatal(err)
			}
			r := in.Resolve(TaskRegression, true)
			if !c.check(r.Training) {
				t.Fatalf("Resolve = %s", mustJSON(t, r))
			}
			if again := r.Resolve(TaskRegression, true); !reflect.DeepEqual(again, r) {
				t.Errorf("Resolve is not idempotent:\nonce  %s\ntwice %s", mustJSON(t, r), mustJSON(t, again))
			}
			var back Config
			if err := json.Unmarshal([]byte(mustJSON(t, r)), &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, r) {
				t.Errorf("JSON round trip lost a value:\nbefore %s\nafter  %s", mustJSON(t, r), mustJSON(t, back))
			}
			if err := r.Validate(TaskRegression, 3, 1, Limits{}); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
	t.Run("no shared pointers", func(t *testing.T) {
		in := Config{Training: TrainingConfig{
			Optimizer:     OptimizerConfig{Name: "adam", Beta1: ptr(0.0), Beta2: ptr(0.0), Rho: ptr(0.0)},
			EarlyStopping: &EarlyStoppingConfig{Patience: ptr(0)},
		}}
		r := in.Resolve(TaskRegression, true)
		if r.Training.Optimizer.Beta1 == in.Training.Optimizer.Beta1 || r.Training.Optimizer.Beta2 == in.Training.Optimizer.Beta2 ||
			r.Training.Optimizer.Rho == in.Training.Optimizer.Rho || r.Training.EarlyStopping.Patience == in.Training.EarlyStopping.Patience {
			t.Error("the resolved config shares a pointer with its input")
		}
		c := r.clone()
		if c.Training.Optimizer.Beta1 == r.Training.Optimizer.Beta1 || c.Training.EarlyStopping.Patience == r.Training.EarlyStopping.Patience {
			t.Error("clone shares a pointer with its original")
		}
	})
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestValidateRejects gives one bad config per case and checks that the
// error names exactly the expected field, with a message naming the
// problem.
func TestValidateRejects(t *testing.T) {
	type mod func(*Config)
	cases := []struct {
		name    string
		task    Task
		outputs int
		lim     Limits
		mod     mod
		field   string
		message string
	}{
		{"softmax hidden", TaskMulticlass, 3, Limits{}, func(c *Config) { c.Network.Hidden[1].Activation = Softmax }, "network.hidden[1].activation", "only as the output"},
		{"unknown hidden activation", TaskRegression, 1, Limits{}, func(c *Config) { c.Network.Hidden[0].Activation = "swish" }, "network.hidden[0].activation", `"swish"`},
		{"units zero", TaskRegression, 1, Limits{}, func(c *Config) { c.Network.Hidden[1].Units = -1 }, "network.hidden[1].units", "between 1 and 65536"},
		{"units over hard cap", TaskRegression, 1, Limits{}, func(c *Config) { c.Network.Hidden[0].Units = 65537 }, "network.hidden[0].units", "65536"},
		{"units over limit", TaskRegression, 1, Limits{MaxUnits: 16}, func(c *Config) {}, "network.hidden[0].units", "between 1 and 16"},
		{"too many layers", TaskRegression, 1, Limits{MaxLayers: 1}, func(c *Config) {}, "network.hidden", "at most 1"},
		{"too many params", TaskRegression, 1, Limits{MaxParams: 100}, func(c *Config) {}, "network.hidden", "limit is 100"},
		{"slope on relu", TaskRegression, 1, Limits{}, func(c *Config) { c.Network.Hidden[0].Slope = ptr(0.2) }, "network.hidden[0].slope", "only to leaky_relu"},
		{"slope out of range", TaskRegression, 1, Limits{}, func(c *Config) {
			c.Network.Hidden[0].Activation, c.Network.Hidden[0].Slope = LeakyReLU, ptr(1.5)
		}, "network.hidden[0].slope", "less than 1"},
		{"dropout of 1", TaskRegression, 1, Limits{}, func(c *Config) { c.Network.Hidden[1].Dropout = 1 }, "network.hidden[1].dropout", "must be at least 0 and below 1, got 1"},
		{"dropout negative", TaskRegression, 1, Limits{}, func(c *Config) { c.Network.Hidden[0].Dropout = -0.1 }, "network.hidden[0].dropout", "must be at least 0 and below 1, got -0.1"},
		{"dropout NaN", TaskRegression, 1, Limits{}, func(c *Config) { c.Network.Hidden[0].Dropout = math.NaN() }, "network.hidden[0].dropout", "below 1, got NaN"},
		{"input dropout of 1.5", TaskRegression, 1, Limits{}, func(c *Config) { c.Network.InputDropout = 1.5 }, "network.input_dropout", "must be at least 0 and below 1, got 1.5"},
		{"l1 negative", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.L1 = -1e-3 }, "training.l1", "must be between 0 and 1, got -0.001"},
		{"l1 infinite", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.L1 = math.Inf(1) }, "training.l1", "got +Inf"},
		{"precision unknown", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.Precision = "float16" }, "training.precision", `must be "float32" or "float64", got "float16"`},
		{"unknown output activation", TaskRegression, 1, Limits{}, func(c *Config) { c.Network.OutputActivation = "gelu" }, "network.output_activation", `"gelu"`},
		{"multiclass without softmax", TaskMulticlass, 3, Limits{}, func(c *Config) { c.Network.OutputActivation, c.Network.Loss = Sigmoid, MSE }, "network.output_activation", "needs output_activation softmax"},
		{"binary without sigmoid", TaskBinary, 1, Limits{}, func(c *Config) { c.Network.OutputActivation, c.Network.Loss = Identity, MSE }, "network.output_activation", "needs output_activation sigmoid"},
		{"softmax single output", TaskRegression, 1, Limits{}, func(c *Config) { c.Network.OutputActivation = Softmax }, "network.output_activation", "single output"},
		{"cross_entropy without softmax", TaskBinary, 1, Limits{}, func(c *Config) { c.Network.Loss = CrossEntropy }, "network.loss", "cross_entropy requires output_activation softmax, not sigmoid"},
		{"cross_entropy on regression", TaskRegression, 2, Limits{}, func(c *Config) { c.Network.OutputActivation, c.Network.Loss = Softmax, CrossEntropy }, "network.loss", "not regression"},
		{"binary_cross_entropy without sigmoid", TaskMulticlass, 3, Limits{}, func(c *Config) { c.Network.Loss = BinaryCrossEntropy }, "network.loss", "requires output_activation sigmoid, not softmax"},
		{"unknown loss", TaskRegression, 1, Limits{}, func(c *Config) { c.Network.Loss = "hinge" }, "network.loss", `"hinge"`},
		{"unknown init", TaskRegression, 1, Limits{}, func(c *Config) { c.Network.Init = "orthogonal" }, "network.init", `"orthogonal"`},
		{"unknown task", "ranking", 1, Limits{}, func(c *Config) {}, "task", `"ranking"`},
		{"epochs", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.Epochs = -3 }, "training.epochs", "between 1 and"},
		{"epochs over limit", TaskRegression, 1, Limits{MaxEpochs: 5}, func(c *Config) {}, "training.epochs", "between 1 and 5"},
		{"batch", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.BatchSize = -1 }, "training.batch_size", "between 1 and"},
		{"batch over limit", TaskRegression, 1, Limits{MaxBatch: 8}, func(c *Config) {}, "training.batch_size", "between 1 and 8"},
		{"lr zero", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.Optimizer.LearningRate = -0.1 }, "training.optimizer.learning_rate", "greater than 0"},
		{"lr huge", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.Optimizer.LearningRate = 11 }, "training.optimizer.learning_rate", "at most 10"},
		{"lr NaN", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.Optimizer.LearningRate = math.NaN() }, "training.optimizer.learning_rate", "NaN"},
		{"lr Inf", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.Optimizer.LearningRate = math.Inf(1) }, "training.optimizer.learning_rate", "+Inf"},
		{"unknown optimizer", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.Optimizer = OptimizerConfig{Name: "lbfgs", LearningRate: 1} }, "training.optimizer.name", `"lbfgs"`},
		{"nesterov without momentum", TaskRegression, 1, Limits{}, func(c *Config) {
			c.Training.Optimizer = OptimizerConfig{Name: "sgd", LearningRate: 0.1, Nesterov: true}
		}, "training.optimizer.nesterov", "momentum"},
		{"nesterov with adam", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.Optimizer.Nesterov = true }, "training.optimizer.nesterov", "only to sgd"},
		{"momentum with adam", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.Optimizer.Momentum = 0.9 }, "training.optimizer.momentum", "does not apply to optimizer adam"},
		{"momentum 1", TaskRegression, 1, Limits{}, func(c *Config) {
			c.Training.Optimizer = OptimizerConfig{Name: "sgd", LearningRate: 0.1, Momentum: 1}
		}, "training.optimizer.momentum", "less than 1"},
		{"beta1 1", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.Optimizer.Beta1 = ptr(1.0) }, "training.optimizer.beta1", "at least 0 and less than 1, got 1"},
		{"beta1 negative", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.Optimizer.Beta1 = ptr(-0.1) }, "training.optimizer.beta1", "at least 0 and less than 1, got -0.1"},
		{"beta1 NaN", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.Optimizer.Beta1 = ptr(math.NaN()) }, "training.optimizer.beta1", "got NaN"},
		{"beta1 unresolved", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.Optimizer.Beta1 = nil }, "training.optimizer.beta1", "not resolved"},
		{"beta2 out of range", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.Optimizer.Beta2 = ptr(1.0) }, "training.optimizer.beta2", "less than 1"},
		{"beta2 negative", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.Optimizer.Beta2 = ptr(-1e-9) }, "training.optimizer.beta2", "at least 0"},
		{"rho 1", TaskRegression, 1, Limits{}, func(c *Config) {
			c.Training.Optimizer = OptimizerConfig{Name: "rmsprop", LearningRate: 0.1, Rho: ptr(1.0), Epsilon: 1e-8}
		}, "training.optimizer.rho", "at least 0 and less than 1, got 1"},
		{"rho negative", TaskRegression, 1, Limits{}, func(c *Config) {
			c.Training.Optimizer = OptimizerConfig{Name: "rmsprop", LearningRate: 0.1, Rho: ptr(-0.5), Epsilon: 1e-8}
		}, "training.optimizer.rho", "at least 0"},
		{"rho unresolved", TaskRegression, 1, Limits{}, func(c *Config) {
			c.Training.Optimizer = OptimizerConfig{Name: "rmsprop", LearningRate: 0.1, Epsilon: 1e-8}
		}, "training.optimizer.rho", "not resolved"},
		{"beta2 with rmsprop", TaskRegression, 1, Limits{}, func(c *Config) {
			c.Training.Optimizer = OptimizerConfig{Name: "rmsprop", LearningRate: 0.1, Rho: ptr(0.0), Beta2: ptr(0.5), Epsilon: 1e-8}
		}, "training.optimizer.beta2", "does not apply to optimizer rmsprop"},
		{"epsilon negative", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.Optimizer.Epsilon = -1 }, "training.optimizer.epsilon", "greater than 0"},
		{"beta1 with sgd", TaskRegression, 1, Limits{}, func(c *Config) {
			c.Training.Optimizer = OptimizerConfig{Name: "sgd", LearningRate: 0.1, Beta1: ptr(0.9)}
		}, "training.optimizer.beta1", "does not apply to optimizer sgd"},
		{"rho with adam", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.Optimizer.Rho = ptr(0.5) }, "training.optimizer.rho", "does not apply"},
		{"l2 negative", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.L2 = -1 }, "training.l2", "between 0 and 1"},
		{"clip NaN", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.ClipNorm = math.NaN() }, "training.clip_norm", "finite"},
		{"unknown schedule", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.LRSchedule.Name = "cyclic" }, "training.lr_schedule.name", `"cyclic"`},
		{"step size zero", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.LRSchedule = ScheduleConfig{Name: "step", StepSize: -1, Gamma: 0.5} }, "training.lr_schedule.step_size", "at least 1"},
		{"gamma too big", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.LRSchedule = ScheduleConfig{Name: "step", StepSize: 2, Gamma: 2} }, "training.lr_schedule.gamma", "at most 1"},
		{"min_lr above lr", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.LRSchedule = ScheduleConfig{Name: "cosine", MinLR: 1} }, "training.lr_schedule.min_lr", "less than the learning rate"},
		{"gamma on constant", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.LRSchedule.Gamma = 0.5 }, "training.lr_schedule.gamma", "does not apply"},
		{"patience negative", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.EarlyStopping = &EarlyStoppingConfig{Patience: ptr(-1)} }, "training.early_stopping.patience", "at least 0"},
		{"patience unresolved", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.EarlyStopping = &EarlyStoppingConfig{} }, "training.early_stopping.patience", "not resolved"},
		{"min_delta negative", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.EarlyStopping = &EarlyStoppingConfig{Patience: ptr(1), MinDelta: -1} }, "training.early_stopping.min_delta", ">= 0"},
		{"not resolved", TaskRegression, 1, Limits{}, func(c *Config) { c.Training.Seed = nil }, "training", "not resolved"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Network: NetworkConfig{Hidden: hidden(32, ReLU, 2)}}.Resolve(c.task, false)
			c.mod(&cfg)
			err := cfg.Validate(c.task, 4, c.outputs, c.lim)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
			for _, fe := range ve.Errors {
				if fe.Field == c.field && strings.Contains(fe.Message, c.message) {
					return
				}
			}
			t.Errorf("errors %v lack %s with %q", ve.Errors, c.field, c.message)
		})
	}
}

func TestValidateCollectsAll(t *testing.T) {
	cfg := Config{Network: NetworkConfig{Hidden: []LayerConfig{{Units: 0}, {Units: 3, Activation: Softmax}}}}.Resolve(TaskRegression, false)
	cfg.Training.Optimizer.LearningRate = 0
	cfg.Training.Epochs = -1
	err := cfg.Validate(TaskRegression, 2, 1, Limits{})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate = %v", err)
	}
	var fields []string
	for _, fe := range ve.Errors {
		fields = append(fields, fe.Field)
	}
	want := []string{"network.hidden[0].units", "network.hidden[1].activation", "training.epochs", "training.optimizer.learning_rate"}
	if !reflect.DeepEqual(fields, want) {
		t.Errorf("fields = %q, want %q", fields, want)
	}
	if !strings.Contains(err.Error(), "network.hidden[0].units: must be between 1 and 65536, got 0") {
		t.Errorf("Error() = %q does not list the field errors", err)
	}
}

// TestNewTrainerRejectsData covers the data checks, which name the
// engine's own paths "data", "validation.set", "validation.fraction" or
// "training.early_stopping", never a request's.
func TestNewTrainerRejectsData(t *testing.T) {
	good := blobsData(40, 3, 3, 1)
	cases := []struct {
		name    string
		task    Task
		data    func() Data
		val     Validation
		cfg     Config
		lim     Limits
		field   string
		message string
	}{
		{"no rows", TaskMulticlass, func() Data { return Data{Features: 3} }, Validation{}, Config{}, Limits{}, "data", "no rows"},
		{"short X", TaskMulticlass, func() Data { d := good; d.X = d.X[:10]; return d }, Validation{}, Config{}, Limits{}, "data", "X holds 10 values"},
		{"NaN input", TaskMulticlass, func() Data {
			d := good
			d.X = append([]float64(nil), d.X...)
			d.X[4] = math.NaN()
			return d
		}, Validation{}, Config{}, Limits{}, "data", "row 2, feature 2 is NaN"},
		{"cells over limit", TaskMulticlass, func() Data { return good }, Validation{}, Config{}, Limits{MaxCells: 100}, "data", "limit is 100"},
		{"binary with 3 classes", TaskBinary, func() Data { return good }, Validation{}, Config{}, Limits{}, "data", "exactly 2 classes; the labels have 3"},
		{"multiclass with 1 class", TaskMulticlass, func() Data {
			d := good
			d.Labels = make([]string, d.Rows)
			return d
		}, Validation{}, Config{}, Limits{}, "data", "at least 2 classes"},
		{"regression with labels", TaskRegression, func() Data { return good }, Validation{}, Config{}, Limits{}, "data", "numeric targets, not class labels"},
		{"binary targets not 0/1", TaskBinary, func() Data {
			d := sineData(10)
			return d
		}, Validation{}, Config{}, Limits{}, "data", "must be 0 or 1"},
		{"fraction out of range", TaskMulticlass, func() Data { return good }, Validation{Fraction: 1}, Config{}, Limits{}, "validation.fraction", "less than 1"},
		{"fraction leaves nothing", TaskRegression, func() Data { return sineData(3) }, Validation{Fraction: 0.01}, Config{}, Limits{}, "validation.fraction", "both need at least 1"},
		{"validation set with other features", TaskMulticlass, func() Data { return good }, Validation{Set: ptr(blobsData(10, 4, 3, 1))}, Config{}, Limits{}, "validation.set", "4 feature columns"},
		{"validation set with unknown label", TaskMulticlass, func() Data { return good }, Validation{Set: func() *Data {
			d := blobsData(10, 3, 3, 1)
			d.Labels[3] = "zebra"
			return &d
		}()}, Config{}, Limits{}, "validation.set", `row 4 has label "zebra"`},
		{"early stopping without validation", TaskMulticlass, func() Data { return good }, Validation{}, Config{Training: TrainingConfig{EarlyStopping: &EarlyStoppingConfig{}}}, Limits{}, "training.early_stopping", "needs validation data"},
		{"config and data errors together", TaskMulticlass, func() Data { return Data{Features: 3} }, Validation{}, Config{Training: TrainingConfig{Epochs: -1}}, Limits{}, "training.epochs", "between 1 and"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewTrainer(c.cfg, c.task, c.data(), c.val, Options{Limits: c.lim})
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("NewTrainer = %v, want a *ValidationError", err)
			}
			for _, fe := range ve.Errors {
				if fe.Field == c.field && strings.Contains(fe.Message, c.message) {
					return
				}
			}
			t.Errorf("errors %v lack %s with %q", ve.Errors, c.field, c.message)
		})
	}
	t.Run("early stopping disabled without validation is fine", func(t *testing.T) {
		cfg := Config{Training: TrainingConfig{EarlyStopping: &EarlyStoppingConfig{Enabled: boolp(false)}}}
		if _, err := NewTrainer(cfg, TaskMulticlass, good, Validation{}, Options{}); err != nil {
			t.Fatal(err)
		}
	})
}
