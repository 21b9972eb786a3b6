package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/store"
	"github.com/backpropd/backpropd/internal/table"
)

// The hostile-input table: the one list of bad requests for every
// surface, sent to the real router, handlers, store and job manager, which
// already hold a CSV dataset, a regression dataset, a finished job and the
// model it trained. TestHostileInput sends it over real HTTP (and each 413
// case once more chunked), TestBadInput straight to the handler, and the
// handler fuzz targets take its bodies as seeds. Each case must get its
// documented 4xx naming the problem, never a 5xx or a leak; afterwards the
// server still answers and the data directory is byte-for-byte what it
// was.

// Limits of the hardening server: small enough that bodies one byte over
// each are cheap to send, large enough for 20,000-level JSON object
// nesting (120,001 bytes) under the request limit and a 1 MB CSV line
// under the upload limit.
const (
	hardReqLimit    = 128 << 10
	hardUploadLimit = 2 << 20
)

// hostile is one request and the answer it must get.
type hostile struct {
	name   string
	method string
	// path may hold {ds} (the iris dataset's id), {rds} (the regression
	// dataset's), {job} (the finished job's), {model} (its model's
	// name) and {typed} (a classifier of a typed table, penguinsLike). It
	// is sent verbatim: percent escapes, backslashes and dots reach the
	// server as written.
	path   string
	ct     string // Content-Type; "" sends none
	body   string // may hold the same placeholders
	status int
	// want must appear in the problem's detail or in one of its errors'
	// field or message (on /v2: in the "error" text).
	want string
}

// Spec fragments for the job cases: a job on the iris data with one
// change.
func irisJob(extra string) string {
	return `{"model_name":"h","dataset_id":"{ds}"` + extra + `}`
}

func hidden(layers string) string { return irisJob(`,"network":{"hidden":[` + layers + `]}`) }

func training(t string) string { return irisJob(`,"training":{` + t + `}`) }

// padTo pads a JSON object to exactly n bytes with spaces before its final
// brace.
func padTo(n int, obj string) string {
	return obj[:len(obj)-1] + strings.Repeat(" ", n-len(obj)) + "}"
}

// csvOf is a CSV body of exactly n bytes, padded with leading zeros in its
// last feature cell, whose target holds a single class (so that it is
// refused with a 400 when it is not too large).
func csvOf(n int) string {
	head, tail := "a,y\n1,p\n", "3,p\n"
	return head + strings.Repeat("0", n-len(head)-len(tail)) + tail
}

var (
	deep10k    = strings.Repeat("[", 10000) + "1" + strings.Repeat("]", 10000)
	deepObj10k = strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	longName   = strings.Repeat("a", 5000)
	pickle     = "\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94."
	v2One      = `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP64","data":%s}]}`
)

func v2Body(data string) string { return fmt.Sprintf(v2One, data) }

// unknownKeys is n object members "u0":0, "u1":0, … that no model has.
func unknownKeys(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"u%d":0`, i)
	}
	return b.String()
}

// craftedModelFiles are the {file:…} placeholders of the hostile-input
// table: the seed model's file with its header rewritten (craftModelFile)
// as a client could, each breaking one name rule.
func craftedModelFiles(tb testing.TB, file []byte) []string {
	tb.Helper()
	return []string{
		"{file:dup-feature}", craftModelFile(tb, file, `"sepal_width"`, `"sepal_length"`),
		"{file:nul-feature}", craftModelFile(tb, file, `"sepal_width"`, `"sepal\u0000width"`),
		"{file:long-feature}", craftModelFile(tb, file, `"petal_length"`, `"`+strings.Repeat("p", 257)+`"`),
		"{file:newline-class}", craftModelFile(tb, file, `"setosa"`, `"set\nosa"`),
	}
}

// craftModelFile rewrites the first occurrence of old in the JSON header
// of a model file as new, and mends the header length and the CRC-32C
// (Castagnoli) trailer, following the layout in internal/engine's
// container.go: magic 8 bytes, version uint32, header length uint32,
// header, values, CRC of everything before it, little-endian.
func craftModelFile(tb testing.TB, file []byte, old, new string) string {
	tb.Helper()
	n := binary.LittleEndian.Uint32(file[12:])
	header := file[16 : 16+n]
	if !bytes.Contains(header, []byte(old)) {
		tb.Fatalf("the model header has no %s", old)
	}
	header = bytes.Replace(header, []byte(old), []byte(new), 1)
	out := append([]byte(nil), file[:12]...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(header)))
	out = append(out, header...)
	out = append(out, file[16+n:len(file)-4]...)
	out = binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, crc32.MakeTable(crc32.Castagnoli)))
	return string(out)
}

// strayText is a CSV of 20 numbers in column b, the last one the text
// "five": 1 of 20 cells, at ingest.StrayTextShare, so refused. With drop,
// a row with a missing target comes first and moves it a line down.
func strayText(eol string, drop int) string {
	var b strings.Builder
	b.WriteString("a,b,y" + eol)
	for range drop {
		b.WriteString("0,0," + eol)
	}
	for i := range 20 {
		cell := strconv.Itoa(i)
		if i == 19 {
			cell = "five"
		}
		fmt.Fprintf(&b, "%d,%s,%c%s", i, cell, "pq"[i%2], eol)
	}
	return b.String()
}

// hostileInputs is the table. One line per case.
var hostileInputs = []hostile{
	// JSON: syntax.
	{"job malformed", "POST", "/v1/jobs", jsonCT, `{"model_name":"h",`, 400, "malformed JSON"},
	{"job trailing garbage", "POST", "/v1/jobs", jsonCT, irisJob("") + ` ]`, 400, "unexpected data after the JSON value"},
	{"predict malformed", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[[1,2,3,4]`, 400, "malformed JSON"},
	{"predict trailing garbage", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[[1,2,3,4]]}x`, 400, "after the JSON value"},
	{"v2 malformed", "POST", "/v2/models/{model}/infer", jsonCT, `{"inputs":`, 400, "malformed JSON"},
	{"v2 trailing garbage", "POST", "/v2/models/{model}/infer", jsonCT, v2Body(`[1,2,3,4]`) + `{}`, 400, "after the JSON value"},
	{"dataset JSON malformed", "POST", "/v1/datasets", jsonCT, `{"name":"d","features":[[1]`, 400, "malformed JSON"},
	// JSON: unknown fields, wrong types, null.
	{"job unknown field", "POST", "/v1/jobs", jsonCT, irisJob(`,"learning_rate":0.1`), 400, "learning_rate"},
	{"job unknown nested field", "POST", "/v1/jobs", jsonCT, training(`"optimizer":{"name":"adam","lr":0.1}`), 400, "training.optimizer.lr"},
	{"predict unknown field", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[[1,2,3,4]],"signature":"x"}`, 400, "signature"},
	{"v2 unknown field", "POST", "/v2/models/{model}/infer", jsonCT, `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP64","data":[1,2,3,4],"dtype":"x"}]}`, 400, "dtype"},
	{"job wrong type", "POST", "/v1/jobs", jsonCT, `{"model_name":7,"dataset_id":"{ds}"}`, 400, "model_name"},
	{"job epochs as string", "POST", "/v1/jobs", jsonCT, training(`"epochs":"10"`), 400, "training.epochs"},
	{"predict inputs an object", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":{"a":1}}`, 400, "inputs"},
	{"v2 shape as strings", "POST", "/v2/models/{model}/infer", jsonCT, `{"inputs":[{"name":"input","shape":["1","4"],"datatype":"FP64","data":[1,2,3,4]}]}`, 400, "shape"},
	{"job null model name", "POST", "/v1/jobs", jsonCT, `{"model_name":null,"dataset_id":"{ds}"}`, 400, "model_name"},
	{"job null dataset id", "POST", "/v1/jobs", jsonCT, `{"model_name":"h","dataset_id":null}`, 400, "dataset_id"},
	{"predict null inputs", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":null}`, 400, "inputs"},
	{"v2 null inputs", "POST", "/v2/models/{model}/infer", jsonCT, `{"inputs":null}`, 400, "inputs"},
	{"v2 null data", "POST", "/v2/models/{model}/infer", jsonCT, v2Body(`null`), 400, "inputs[0].data"},
	// JSON: encoding and depth.
	{"job invalid UTF-8", "POST", "/v1/jobs", jsonCT, "{\"model_name\":\"h\xc3\x28\",\"dataset_id\":\"{ds}\"}", 400, "UTF-8"},
	{"predict invalid UTF-8", "POST", "/v1/models/{model}/predict", jsonCT, "{\"inputs\":[{\"sepal_length\xff\":1}]}", 400, "UTF-8"},
	{"v2 invalid UTF-8", "POST", "/v2/models/{model}/infer", jsonCT, "{\"id\":\"\xfe\",\"inputs\":[]}", 400, "UTF-8"},
	{"dataset JSON invalid UTF-8", "POST", "/v1/datasets", jsonCT, "{\"name\":\"\xed\xa0\x80\",\"features\":[[1],[2]],\"targets\":[1,2]}", 400, "UTF-8"},
	{"job nested 10k", "POST", "/v1/jobs", jsonCT, deep10k, 400, "max depth"},
	{"job object nested 10k", "POST", "/v1/jobs", jsonCT, deepObj10k, 400, "max depth"},
	{"predict nested 10k", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":` + deep10k + `}`, 400, "max depth"},
	{"v2 nested 10k", "POST", "/v2/models/{model}/infer", jsonCT, v2Body(deep10k), 400, "max depth"},
	// A dataset upload is read as a stream of the shape it must have, so
	// deep nesting is refused at the first value that is not a number.
	{"dataset JSON nested 10k", "POST", "/v1/datasets", jsonCT, `{"name":"d","features":` + deep10k + `,"targets":[1]}`, 400, "features[0][0]"},
	// JSON: non-finite numbers, as literals and as strings.
	{"predict NaN literal", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[[NaN,1,2,3]]}`, 400, "malformed JSON"},
	{"predict Infinity literal", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[[1,Infinity,2,3]]}`, 400, "malformed JSON"},
	{"predict 1e999", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[[1,2,1e999,3]]}`, 400, "inputs[0][2]"},
	{"predict -1e999 by name", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[{"sepal_length":1,"sepal_width":2,"petal_length":3,"petal_width":-1e999}]}`, 400, "petal_width"},
	{"predict NaN string", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[[1,2,3,"NaN"]]}`, 400, "inputs[0][3]"},
	{"predict Infinity string", "POST", "/v1/models/{model}/predict", jsonCT, `{"instances":[[1,2,3,4],["Infinity",2,3,4]]}`, 400, "instances[1][0]"},
	{"v2 NaN literal", "POST", "/v2/models/{model}/infer", jsonCT, v2Body(`[1,2,NaN,4]`), 400, "malformed JSON"},
	{"v2 1e999", "POST", "/v2/models/{model}/infer", jsonCT, v2Body(`[1,2,3,1e999]`), 400, "inputs[0].data"},
	{"v2 NaN string", "POST", "/v2/models/{model}/infer", jsonCT, v2Body(`[1,"NaN",3,4]`), 400, "inputs[0].data"},
	{"v2 Infinity string", "POST", "/v2/models/{model}/infer", jsonCT, v2Body(`["Infinity",2,3,4]`), 400, "inputs[0].data"},
	{"job inline 1e999", "POST", "/v1/jobs", jsonCT, `{"model_name":"h","data":{"features":[[1],[1e999]],"targets":[1,2]}}`, 400, "data.features[1][0]"},
	{"job inline NaN string", "POST", "/v1/jobs", jsonCT, `{"model_name":"h","data":{"features":[[1],["NaN"]],"targets":[1,2]}}`, 400, "data.features[1][0]"},
	{"dataset JSON feature name with DEL", "POST", "/v1/datasets", jsonCT, `{"name":"d","feature_names":["a\u007f"],"features":[[1],[2]],"targets":[1,2]}`, 400, "feature_names[0]"},
	{"dataset JSON duplicate feature names", "POST", "/v1/datasets", jsonCT, `{"name":"d","feature_names":["a","a"],"features":[[1,2],[2,1]],"targets":[1,2]}`, 400, "feature_names[1]"},
	{"dataset JSON 1 MB target name", "POST", "/v1/datasets", jsonCT, `{"name":"d","target_names":["` + strings.Repeat("t", 1<<20) + `"],"features":[[1],[2]],"targets":[1,2]}`, 400, "target_names[0]"},
	{"dataset JSON class label with NUL", "POST", "/v1/datasets", jsonCT, `{"name":"d","features":[[1],[2]],"targets":["a\u0000","b"]}`, 400, "targets[0]"},
	{"dataset JSON Infinity string target", "POST", "/v1/datasets", jsonCT, `{"name":"d","features":[[1],[2]],"targets":[1,"Infinity"]}`, 400, "targets[1]"},
	// JSON: shapes.
	{"predict empty inputs", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[]}`, 400, "inputs"},
	{"predict empty row", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[[]]}`, 400, "inputs[0]"},
	{"predict ragged rows", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[[1,2,3,4],[1,2]]}`, 400, "inputs[1]"},
	{"predict too few features", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[[1,2,3]]}`, 400, "inputs[0]"},
	{"predict too many features", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[[1,2,3,4,5]]}`, 400, "inputs[0]"},
	{"predict unknown feature name", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[{"sepal_length":1,"sepal_width":2,"petal_length":3,"petal_width":4,"colour":5}]}`, 400, "colour"},
	{"predict missing feature name", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[{"sepal_length":1,"sepal_width":2,"petal_length":3}]}`, 400, "petal_width"},
	{"predict inputs and instances", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[[1,2,3,4]],"instances":[[1,2,3,4]]}`, 400, "instances"},
	{"v2 empty inputs", "POST", "/v2/models/{model}/infer", jsonCT, `{"inputs":[]}`, 400, "inputs"},
	{"v2 wrong feature count", "POST", "/v2/models/{model}/infer", jsonCT, `{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP64","data":[1,2,3]}]}`, 400, "shape[1]"},
	{"v2 data shorter than shape", "POST", "/v2/models/{model}/infer", jsonCT, v2Body(`[1,2,3]`), 400, "inputs[0].data"},
	{"v2 ragged nested data", "POST", "/v2/models/{model}/infer", jsonCT, `{"inputs":[{"name":"input","shape":[2,4],"datatype":"FP64","data":[[1,2,3,4],[1,2]]}]}`, 400, "inputs[0].data"},
	{"v2 absurd shape", "POST", "/v2/models/{model}/infer", jsonCT, `{"inputs":[{"name":"input","shape":[4000000000000,4],"datatype":"FP64","data":[1,2,3,4]}]}`, 400, "inputs[0].shape"},
	{"v2 negative shape", "POST", "/v2/models/{model}/infer", jsonCT, `{"inputs":[{"name":"input","shape":[-1,4],"datatype":"FP64","data":[1,2,3,4]}]}`, 400, "inputs[0].shape[0]"},
	{"v2 BYTES input", "POST", "/v2/models/{model}/infer", jsonCT, `{"inputs":[{"name":"input","shape":[1,4],"datatype":"BYTES","data":["a","b","c","d"]}]}`, 400, "datatype"},
	{"v2 unknown tensor name", "POST", "/v2/models/{model}/infer", jsonCT, `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}]}`, 400, "inputs[0].name"},
	{"v2 unknown output", "POST", "/v2/models/{model}/infer", jsonCT, `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}],"outputs":[{"name":"logits"}]}`, 400, "logits"},
	{"v2 INT8 out of range", "POST", "/v2/models/{model}/infer", jsonCT, `{"inputs":[{"name":"input","shape":[1,4],"datatype":"INT8","data":[1,2,3,300]}]}`, 400, "INT8"},
	{"job inline empty features", "POST", "/v1/jobs", jsonCT, `{"model_name":"h","data":{"features":[],"targets":[]}}`, 400, "data.features"},
	{"job inline ragged", "POST", "/v1/jobs", jsonCT, `{"model_name":"h","data":{"features":[[1,2],[3]],"targets":[1,2]}}`, 400, "data.features[1]"},

	{"predict feature given twice", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[{"sepal_length":1,"sepal_length":2,"sepal_width":2,"petal_length":3,"petal_width":4}]}`, 400, "inputs[0].sepal_length"},
	{"predict boolean feature", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[[true,2,3,4]]}`, 400, "inputs[0][0]"},
	{"predict output overflows", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[[1e308,1e308,1e308,1e308]]}`, 400, "inputs[0]"},
	{"v2 FP32 out of range", "POST", "/v2/models/{model}/infer", jsonCT, `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1e300,2,3,4]}]}`, 400, "FP32"},
	{"v2 fraction in INT64", "POST", "/v2/models/{model}/infer", jsonCT, `{"inputs":[{"name":"input","shape":[1,4],"datatype":"INT64","data":[1.5,2,3,4]}]}`, 400, "INT64"},

	// Job and dataset bodies: syntax, depth and values once more, each
	// as its own decoder meets it.
	{"malformed JSON", "POST", "/v1/jobs", jsonCT, `{"model_name": "m",`, 400, "malformed JSON"},
	{"trailing garbage", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","dataset_id":"{ds}"} xyz`, 400, "unexpected data after the JSON value"},
	{"two values", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","dataset_id":"{ds}"}{}`, 400, "unexpected data after the JSON value"},
	{"unknown top-level field", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","dataset_id":"{ds}","epochs":3}`, 400, "epochs"},
	{"unknown nested field", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","dataset_id":"{ds}","network":{"hidden":[{"units":3},{"units":3,"activaton":"relu"}]}}`, 400, "network.hidden[1].activaton"},
	{"wrong type nested", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","dataset_id":"{ds}","network":{"hidden":[{"units":3},{"units":"many"}]}}`, 400, "network.hidden[1].units"},
	{"fraction where integer", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","dataset_id":"{ds}","training":{"epochs":1.5}}`, 400, "training.epochs"},
	{"missing data", "POST", "/v1/jobs", jsonCT, `{"model_name":"m"}`, 400, "dataset_id"},
	{"both data and dataset", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","dataset_id":"{ds}","data":{"features":[[1]],"targets":[1]}}`, 400, "data"},
	{"array body", "POST", "/v1/jobs", jsonCT, `[1,2]`, 400, "object"},
	{"empty body", "POST", "/v1/jobs", jsonCT, ``, 400, "empty"},
	{"invalid UTF-8", "POST", "/v1/jobs", jsonCT, "{\"model_name\":\"m\xff\xfe\",\"dataset_id\":\"{ds}\"}", 400, "UTF-8"},
	{"deep nesting", "POST", "/v1/jobs", jsonCT, strings.Repeat("[", 10000) + strings.Repeat("]", 10000), 400, "max depth"},
	{"nesting just past the limit", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}}`, 400, "column 100"},
	{"brackets in strings do not nest", "POST", "/v1/jobs", jsonCT, `{"model_name":"` + strings.Repeat("[", 100) + `\"{{"}`, 400, "dataset_id"},
	{"nesting at the limit decodes", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":` + strings.Repeat("[", 62) + strings.Repeat("]", 62) + `}}`, 400, "data.features[0][0]"},
	{"deep nesting in a field", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}}`, 400, "max depth"},
	{"nesting past the decoder's depth limit", "POST", "/v1/jobs", jsonCT, strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000), 400, "max depth"},
	{"NaN literal in inline features", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[[NaN]],"targets":[1]}}`, 400, "malformed JSON"},
	{"Infinity literal", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[[Infinity]],"targets":[1]}}`, 400, "malformed JSON"},
	{"1e999 in inline features", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[[1],[1e999]],"targets":[1,2]}}`, 400, "data.features[1][0]"},
	{"NaN as string", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[[1],["NaN"]],"targets":[1,2]}}`, 400, "data.features[1][0]"},
	{"null feature", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[[1],[null]],"targets":[1,2]}}`, 400, "data.features[1][0]"},
	{"empty features", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[],"targets":[]}}`, 400, "data.features"},
	{"ragged inline rows", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[[1,2],[3]],"targets":[1,2]}}`, 400, "data.features[1]"},
	{"targets count differs", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[[1],[2]],"targets":[1]}}`, 400, "data.targets"},
	{"mixed target kinds", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[[1],[2]],"targets":[1,"a"]}}`, 400, "data.targets[1]"},
	{"1e999 target", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[[1],[2]],"targets":[1,1e999]}}`, 400, "data.targets[1]"},
	{"JSON dataset without name", "POST", "/v1/datasets", jsonCT, `{"features":[[1],[2]],"targets":[1,2]}`, 400, "name"},
	{"JSON dataset bad task", "POST", "/v1/datasets", jsonCT, `{"name":"d","task":"clustering","features":[[1],[2]],"targets":[1,2]}`, 400, "task"},
	{"JSON dataset one class", "POST", "/v1/datasets", jsonCT, `{"name":"d","features":[[1],[2]],"targets":["a","a"]}`, 400, "2 classes"},
	{"JSON dataset feature_names count", "POST", "/v1/datasets", jsonCT, `{"name":"d","feature_names":["a","b"],"features":[[1],[2]],"targets":[1,2]}`, 400, "feature_names"},

	// Job specs: numbers out of range.
	{"epochs zero", "POST", "/v1/jobs", jsonCT, training(`"epochs":0`), 400, "training.epochs"},
	{"epochs negative", "POST", "/v1/jobs", jsonCT, training(`"epochs":-5`), 400, "training.epochs"},
	{"epochs absurd", "POST", "/v1/jobs", jsonCT, training(`"epochs":1000000000000`), 400, "training.epochs"},
	{"epochs past int64", "POST", "/v1/jobs", jsonCT, training(`"epochs":99999999999999999999999`), 400, "training.epochs"},
	{"batch size zero", "POST", "/v1/jobs", jsonCT, training(`"batch_size":0`), 400, "training.batch_size"},
	{"epsilon zero", "POST", "/v1/jobs", jsonCT, training(`"optimizer":{"name":"adam","epsilon":0}`), 400, "training.optimizer.epsilon"},
	{"empty loss", "POST", "/v1/jobs", jsonCT, irisJob(`,"network":{"loss":""}`), 400, "network.loss"},
	{"layer without units", "POST", "/v1/jobs", jsonCT, hidden(`{"activation":"relu"}`), 400, "network.hidden[0].units"},
	{"spec version from the future", "POST", "/v1/jobs", jsonCT, irisJob(`,"version":3`), 400, "version"},
	{"spec version as string", "POST", "/v1/jobs", jsonCT, irisJob(`,"version":"1"`), 400, "version"},
	{"batch size negative", "POST", "/v1/jobs", jsonCT, training(`"batch_size":-64`), 400, "training.batch_size"},
	{"batch size absurd", "POST", "/v1/jobs", jsonCT, training(`"batch_size":1000000000000`), 400, "training.batch_size"},
	{"units zero", "POST", "/v1/jobs", jsonCT, hidden(`{"units":8},{"units":0}`), 400, "network.hidden[1].units"},
	{"units negative", "POST", "/v1/jobs", jsonCT, hidden(`{"units":-8}`), 400, "network.hidden[0].units"},
	{"units absurd", "POST", "/v1/jobs", jsonCT, hidden(`{"units":1000000000}`), 400, "network.hidden[0].units"},
	{"layer count absurd", "POST", "/v1/jobs", jsonCT, hidden(strings.TrimSuffix(strings.Repeat(`{"units":1},`, 2000), ",")), 400, "network.hidden"},
	{"learning rate zero", "POST", "/v1/jobs", jsonCT, training(`"optimizer":{"name":"adam","learning_rate":0}`), 400, "training.optimizer.learning_rate"},
	{"learning rate negative", "POST", "/v1/jobs", jsonCT, training(`"optimizer":{"name":"sgd","learning_rate":-0.1}`), 400, "training.optimizer.learning_rate"},
	{"learning rate absurd", "POST", "/v1/jobs", jsonCT, training(`"optimizer":{"name":"sgd","learning_rate":1e300}`), 400, "training.optimizer.learning_rate"},
	{"learning rate 1e999", "POST", "/v1/jobs", jsonCT, training(`"optimizer":{"name":"sgd","learning_rate":1e999}`), 400, "training.optimizer.learning_rate"},
	{"max duration negative", "POST", "/v1/jobs", jsonCT, training(`"max_duration_seconds":-1`), 400, "training.max_duration_seconds"},
	{"validation fraction 1", "POST", "/v1/jobs", jsonCT, irisJob(`,"validation":{"fraction":1}`), 400, "validation.fraction"},
	{"l2 negative", "POST", "/v1/jobs", jsonCT, training(`"l2":-1`), 400, "training.l2"},
	{"clip norm negative", "POST", "/v1/jobs", jsonCT, training(`"clip_norm":-1`), 400, "training.clip_norm"},
	{"l1 negative", "POST", "/v1/jobs", jsonCT, training(`"l1":-1`), 400, "training.l1"},
	{"dropout of 1", "POST", "/v1/jobs", jsonCT, hidden(`{"units":8},{"units":8,"dropout":1}`), 400, "network.hidden[1].dropout"},
	{"input dropout negative", "POST", "/v1/jobs", jsonCT, irisJob(`,"network":{"input_dropout":-0.5}`), 400, "network.input_dropout"},
	{"adam beta1 of 1", "POST", "/v1/jobs", jsonCT, training(`"optimizer":{"name":"adam","beta1":1}`), 400, "training.optimizer.beta1"},
	{"patience negative", "POST", "/v1/jobs", jsonCT, irisJob(`,"validation":{"fraction":0.2},"training":{"early_stopping":{"patience":-1}}`), 400, "training.early_stopping.patience"},
	{"leaky slope negative", "POST", "/v1/jobs", jsonCT, hidden(`{"units":8,"activation":"leaky_relu","slope":-5}`), 400, "network.hidden[0].slope"},
	{"step schedule negative", "POST", "/v1/jobs", jsonCT, training(`"lr_schedule":{"name":"step","step_size":-1,"gamma":0.5}`), 400, "training.lr_schedule.step_size"},
	{"validation split leaves no rows", "POST", "/v1/jobs", jsonCT, irisJob(`,"validation":{"fraction":0.001}`), 400, "validation.fraction"},
	// Job specs: names.
	{"unknown activation", "POST", "/v1/jobs", jsonCT, hidden(`{"units":8,"activation":"gelu"}`), 400, "network.hidden[0].activation"},
	{"unknown output activation", "POST", "/v1/jobs", jsonCT, irisJob(`,"network":{"output_activation":"swish"}`), 400, "network.output_activation"},
	{"unknown loss", "POST", "/v1/jobs", jsonCT, irisJob(`,"network":{"loss":"hinge"}`), 400, "network.loss"},
	{"unknown optimizer", "POST", "/v1/jobs", jsonCT, training(`"optimizer":{"name":"lbfgs"}`), 400, "training.optimizer.name"},
	{"unknown init", "POST", "/v1/jobs", jsonCT, irisJob(`,"network":{"init":"ones"}`), 400, "network.init"},
	{"unknown lr schedule", "POST", "/v1/jobs", jsonCT, training(`"lr_schedule":{"name":"cosine-warm"}`), 400, "training.lr_schedule"},
	{"softmax in a hidden layer", "POST", "/v1/jobs", jsonCT, hidden(`{"units":8,"activation":"softmax"}`), 400, "network.hidden[0].activation"},
	{"cross_entropy on regression", "POST", "/v1/jobs", jsonCT, `{"model_name":"h","dataset_id":"{rds}","network":{"loss":"cross_entropy"}}`, 400, "network.loss"},
	{"parameters over the cap", "POST", "/v1/jobs", jsonCT, hidden(`{"units":65536},{"units":65536},{"units":65536}`), 400, "limit"},
	{"model name traversal", "POST", "/v1/jobs", jsonCT, `{"model_name":"../../etc","dataset_id":"{ds}"}`, 400, "model_name"},
	{"dataset id traversal", "POST", "/v1/jobs", jsonCT, `{"model_name":"h","dataset_id":"../../../etc/passwd"}`, 400, "dataset_id"},
	{"unknown dataset", "POST", "/v1/jobs", jsonCT, `{"model_name":"h","dataset_id":"0b6f2c1e-8d3a-4f5e-9c7b-1a2b3c4d5e6f"}`, 400, "dataset_id"},
	{"validation dataset traversal", "POST", "/v1/jobs", jsonCT, irisJob(`,"validation":{"dataset_id":"..\\..\\x"}`), 400, "validation.dataset_id"},

	// CSV uploads.
	{"csv empty", "POST", "/v1/datasets?name=d", "text/csv", ``, 400, "header"},
	{"csv no header", "POST", "/v1/datasets?name=d", "text/csv", "1,2,3\n4,5,6\n", 400, "header"},
	{"csv only a header", "POST", "/v1/datasets?name=d", "text/csv", "a,b,y\n", 400, "no data rows"},
	{"csv only a header CRLF", "POST", "/v1/datasets?name=d", "text/csv", "a,b,y\r\n", 400, "no data rows"},
	{"csv duplicate column", "POST", "/v1/datasets?name=d", "text/csv", "a,b,a,y\n1,2,3,4\n", 400, "duplicate column"},
	{"csv duplicate column behind a BOM", "POST", "/v1/datasets?name=d", "text/csv", "\ufeffa,a,y\n1,2,3\n", 400, "duplicate column"},
	{"csv missing target column", "POST", "/v1/datasets?name=d&target=label", "text/csv", "a,b,y\n1,2,3\n", 400, "label"},
	{"csv stray text in a number column", "POST", "/v1/datasets?name=d", "text/csv", strayText("\n", 0), 400, `line 21, column 2 (b): column b: 1 of 20 cells are text ("five"); add them to na_values or declare the column categorical`},
	{"csv stray text with BOM and CRLF", "POST", "/v1/datasets?name=d", "text/csv", "\ufeff" + strayText("\r\n", 0), 400, "line 21, column 2 (b)"},
	{"csv stray text after a dropped row", "POST", "/v1/datasets?name=d", "text/csv", strayText("\n", 1), 400, "line 22, column 2 (b)"},
	{"csv text in a declared numeric column", "POST", "/v1/datasets?name=d&numeric=b", "text/csv", "a,b,y\n1,x,p\n", 400, "line 2, column 2 (b)"},
	{"csv every target missing", "POST", "/v1/datasets?name=d", "text/csv", "a,y\n1,\n2,NA\n3,?\n", 400, "every row's target is missing (3 rows dropped)"},
	{"csv quoted newline in a feature", "POST", "/v1/datasets?name=d&numeric=b", "text/csv", "a,b,y\n1,\"2\n3\",p\n", 400, "column 2 (b)"},
	{"csv line count after a quoted newline", "POST", "/v1/datasets?name=d&numeric=b", "text/csv", "a,b,y\n1,2,\"p\nq\"\n4,x,r\n", 400, "line 4, column 2 (b)"},
	{"csv 1 MB line", "POST", "/v1/datasets?name=d&numeric=a", "text/csv", "a,y\n" + strings.Repeat("7", 1<<20) + "x,p\n", 400, "line 2, column 1 (a)"},
	{"csv 1 MB cell in a category", "POST", "/v1/datasets?name=d&categorical=a", "text/csv", "a,y\n" + strings.Repeat("7", 1<<20) + ",p\n2,p\n", 400, "at least 2 classes"},
	{"csv 1 MB header name", "POST", "/v1/datasets?name=d&target=y", "text/csv", "a,y," + strings.Repeat("h", 1<<20) + "\n1,2\n", 400, "is 1048576 bytes long; at most 256"},
	{"csv 257-byte column name", "POST", "/v1/datasets?name=d", "text/csv", strings.Repeat("c", 257) + ",y\n1,p\n2,q\n", 400, "line 1, column 1"},
	{"csv column name with NUL", "POST", "/v1/datasets?name=d", "text/csv", "a,b\x00,y\n1,2,p\n2,3,q\n", 400, "control character U+0000"},
	{"csv column name with DEL", "POST", "/v1/datasets?name=d", "text/csv", "a\x7f,y\n1,p\n2,q\n", 400, "control character U+007F"},
	{"csv column name not UTF-8", "POST", "/v1/datasets?name=d", "text/csv", "a,b\xc3,y\n1,2,p\n2,3,q\n", 400, "line 1, column 2"},
	{"csv class label with a newline", "POST", "/v1/datasets?name=d", "text/csv", "a,y\n1,\"p\nq\"\n2,r\n", 400, "class label"},
	{"csv 257-byte class label", "POST", "/v1/datasets?name=d", "text/csv", "a,y\n1," + strings.Repeat("p", 257) + "\n2,r\n", 400, "line 2, column 2 (y)"},
	{"csv ends mid-row", "POST", "/v1/datasets?name=d", "text/csv", "a,b,y\n1,2,p\n4,5", 400, "line 3"},
	{"csv ends in an open quote", "POST", "/v1/datasets?name=d", "text/csv", "a,b,y\n1,2,\"p\n", 400, "quote"},
	{"csv NaN feature once na_values drops it", "POST", "/v1/datasets?name=d&na_values=&numeric=a", "text/csv", "a,y\nNaN,p\n1,q\n", 400, "line 2, column 1 (a)"},
	{"csv 1e999 feature", "POST", "/v1/datasets?name=d&numeric=a", "text/csv", "a,y\n1,p\n1e999,q\n", 400, "line 3, column 1 (a)"},
	{"csv NUL in a cell", "POST", "/v1/datasets?name=d&numeric=a", "text/csv", "a,y\n1\x00,p\n2,q\n", 400, "line 2, column 1 (a)"},
	{"csv na_values that match every feature", "POST", "/v1/datasets?name=d&na_values=1,2,3", "text/csv", "a,b,y\n1,2,p\n3,1,q\n", 400, "no feature columns left"},
	{"csv na_values that match everything", "POST", "/v1/datasets?name=d&na_values=1,2,p,q", "text/csv", "a,y\n1,p\n2,q\n", 400, "every row's target is missing"},
	{"csv mixed types in a declared datetime", "POST", "/v1/datasets?name=d&datetime=w", "text/csv", "w,y\n2024-01-01,p\n7,q\nsoon,p\n", 400, "line 3, column 1 (w)"},
	{"csv a date far out of range", "POST", "/v1/datasets?name=d&datetime=w", "text/csv", "w,y\n2024-01-01,p\n99999-01-01,q\n", 400, "line 3, column 1 (w)"},
	{"csv headerless iris", "POST", "/v1/datasets?name=d", "text/csv", "5.1,3.5,setosa\n4.9,3.0,setosa\n7.0,3.2,versicolor\n", 400, "header=false"},
	{"csv unknown override column", "POST", "/v1/datasets?name=d&ignore=id,nope", "text/csv", "id,a,y\n1,2,p\n2,3,q\n", 400, "query.ignore"},
	{"csv override of the target", "POST", "/v1/datasets?name=d&categorical=y", "text/csv", "a,y\n1,p\n2,q\n", 400, "query.categorical"},
	{"csv column declared twice", "POST", "/v1/datasets?name=d&categorical=a&numeric=a", "text/csv", "a,y\n1,p\n2,q\n", 400, "both categorical and numeric"},
	{"csv bad delimiter", "POST", "/v1/datasets?name=d&delimiter=x", "text/csv", "a,y\n1,p\n2,q\n", 400, "query.delimiter"},
	{"csv bad decimal", "POST", "/v1/datasets?name=d&decimal=x", "text/csv", "a,y\n1,p\n2,q\n", 400, "query.decimal"},
	{"csv decimal comma with comma delimiter", "POST", "/v1/datasets?name=d&decimal=,&delimiter=,", "text/csv", "a,y\n1,p\n2,q\n", 400, "query.decimal"},
	{"csv bad header", "POST", "/v1/datasets?name=d&header=no", "text/csv", "a,y\n1,p\n2,q\n", 400, "query.header"},
	{"json records with a new key", "POST", "/v1/datasets?name=d", jsonCT, `[{"a":1,"y":"p"},{"a":2,"b":3,"y":"q"}]`, 400, "[1].b"},
	{"json records with an object value", "POST", "/v1/datasets?name=d", jsonCT, `[{"a":{"x":1},"y":"p"}]`, 400, "[0].a"},
	{"json records with text in a declared number", "POST", "/v1/datasets?name=d&numeric=a", jsonCT, `[{"a":1,"y":"p"},{"a":"x","y":"q"}]`, 400, "[1].a"},
	{"json records without a name", "POST", "/v1/datasets", jsonCT, `[{"a":1,"y":"p"}]`, 400, "query.name"},
	{"json records with a CSV-only parameter", "POST", "/v1/datasets?name=d&na_values=x", jsonCT, `[{"a":1,"y":"p"}]`, 400, "query.na_values"},
	{"json records with an unknown target", "POST", "/v1/datasets?name=d&target=z", jsonCT, `[{"a":1,"y":"p"}]`, 400, "query.target"},
	{"json records whose targets are all null", "POST", "/v1/datasets?name=d", jsonCT, `[{"a":1,"y":null},{"a":2}]`, 400, "every record's target is missing"},
	{"json records cut short", "POST", "/v1/datasets?name=d", jsonCT, `[{"a":1,"y":"p"},{"a":`, 400, "line 1"},
	{"tsv stray text", "POST", "/v1/datasets?name=d", "text/tab-separated-values", strings.ReplaceAll(strayText("\n", 0), ",", "\t"), 400, "line 21, column 2 (b)"},
	{"csv binary data", "POST", "/v1/datasets?name=d", "text/csv", pickle, 400, "not valid UTF-8"},
	{"csv name too long", "POST", "/v1/datasets?name=" + longName, "text/csv", "a,y\n1,p\n2,q\n", 400, "name"},

	{"csv target named twice", "POST", "/v1/datasets?name=d&target=y,y", "text/csv", "a,y\n1,p\n2,q\n", 400, "named twice"},
	{"csv empty target name", "POST", "/v1/datasets?name=d&target=a,,y", "text/csv", "a,b,y\n1,2,p\n2,3,q\n", 400, "query.target"},
	{"csv name with NUL", "POST", "/v1/datasets?name=%00", "text/csv", "a,y\n1,p\n2,q\n", 400, "query.name"},
	{"csv empty name", "POST", "/v1/datasets?name=", "text/csv", "a,y\n1,p\n2,q\n", 400, "query.name"},

	{"csv duplicate column, numeric target", "POST", "/v1/datasets?name=d", "text/csv", "a,a,y\n1,2,3\n", 400, "duplicate column"},
	{"csv non-numeric feature, numeric target", "POST", "/v1/datasets?name=d&numeric=b", "text/csv", "a,b,y\n1,2,3\n4,five,6\n", 400, "line 3, column 2 (b)"},
	{"csv not a date, numeric target", "POST", "/v1/datasets?name=d&datetime=b", "text/csv", "a,b,y\n1,x,3\n", 400, "line 2, column 2 (b)"},
	{"csv ragged row", "POST", "/v1/datasets?name=d", "text/csv", "a,b,y\n1,2,3\n4,5\n", 400, "line 3"},
	{"csv quoted newline in a feature, numeric target", "POST", "/v1/datasets?name=d&numeric=b", "text/csv", "a,b,y\n1,\"2\n2\",3\n", 400, "column 2 (b)"},
	{"csv ends mid-row, numeric target", "POST", "/v1/datasets?name=d", "text/csv", "a,b,y\n1,2,3\n4,5", 400, "line 3"},
	{"csv ends in an open quote, numeric target", "POST", "/v1/datasets?name=d", "text/csv", "a,b,y\n1,2,\"3\n", 400, "quote"},
	{"csv NaN feature, numeric target", "POST", "/v1/datasets?name=d&numeric=a&na_values=NA", "text/csv", "a,y\nNaN,1\n", 400, "line 2, column 1 (a)"},
	{"csv Inf target", "POST", "/v1/datasets?name=d", "text/csv", "a,y\n1,1\n2,-Inf\n", 400, "line 3, column 2 (y)"},
	{"csv 1 MB line, numeric target", "POST", "/v1/datasets?name=d&numeric=a", "text/csv", "a,y\n" + strings.Repeat("9", 1<<20) + "x,1\n", 400, "line 2, column 1 (a)"},
	{"csv without name", "POST", "/v1/datasets", "text/csv", "a,y\n1,2\n", 400, "query.name"},
	{"csv bad task", "POST", "/v1/datasets?name=d&task=ranking", "text/csv", "a,y\n1,2\n", 400, "query.task"},
	{"csv binary with 3 classes", "POST", "/v1/datasets?name=d&task=binary", "text/csv", "a,y\n1,p\n2,q\n3,r\n", 400, "exactly 2 classes"},
	{"csv every column a target", "POST", "/v1/datasets?name=d&target=a,y", "text/csv", "a,y\n1,2\n", 400, "no feature columns"},

	// HTTP: query parameters.
	{"csv misspelt query parameter", "POST", "/v1/datasets?name=d&taget=y", "text/csv", "a,y\n1,p\n2,q\n", 400, "query.taget"},
	{"jobs unknown query parameter", "GET", "/v1/jobs?state=running", "", "", 400, "query.state"},
	{"jobs cursor traversal", "GET", "/v1/jobs?cursor=../../etc", "", "", 400, "query.cursor"},
	{"jobs negative limit", "GET", "/v1/jobs?limit=-1", "", "", 400, "query.limit"},
	{"jobs bad status", "GET", "/v1/jobs?status=done", "", "", 400, "query.status"},
	{"jobs model name filter traversal", "GET", "/v1/jobs?model_name=..%2f..%2fetc", "", "", 400, "query.model_name"},
	{"jobs model name filter upper case", "GET", "/v1/jobs?model_name=IRIS", "", "", 400, "query.model_name"},
	{"jobs limit over the page size", "GET", "/v1/jobs?limit=1001", "", "", 400, "query.limit"},
	{"version with a leading zero", "GET", "/v1/models/{model}/versions/01", "", "", 400, "path.version"},
	{"version with a plus", "GET", "/v1/models/{model}/versions/+1", "", "", 400, "path.version"},
	{"version past int64", "GET", "/v1/models/{model}/versions/99999999999999999999", "", "", 400, "path.version"},

	// HTTP: content types.
	{"job without Content-Type", "POST", "/v1/jobs", "", irisJob(""), 415, "Content-Type"},
	{"job as text/plain", "POST", "/v1/jobs", "text/plain", irisJob(""), 415, "application/json"},
	{"job as form", "POST", "/v1/jobs", "application/x-www-form-urlencoded", "model_name=h", 415, "application/json"},
	{"job with a broken media type", "POST", "/v1/jobs", "application/json; charset", irisJob(""), 415, "Content-Type"},
	{"predict without Content-Type", "POST", "/v1/models/{model}/predict", "", `{"inputs":[[1,2,3,4]]}`, 415, "Content-Type"},
	{"predict as text/csv", "POST", "/v1/models/{model}/predict", "text/csv", "1,2,3,4\n", 415, "application/json"},
	{"v2 as text/plain", "POST", "/v2/models/{model}/infer", "text/plain", v2Body(`[1,2,3,4]`), 415, "application/json"},
	{"dataset without Content-Type", "POST", "/v1/datasets?name=d", "", "a,y\n1,p\n", 415, "Content-Type"},
	{"dataset as XML", "POST", "/v1/datasets?name=d", "application/xml", "<a/>", 415, "Content-Type"},
	{"model import as JSON", "POST", "/v1/models/{model}/versions", jsonCT, `{}`, 415, "application/octet-stream"},
	{"model import without Content-Type", "POST", "/v1/models/{model}/versions", "", "x", 415, "application/octet-stream"},
	// HTTP: model files are data only.
	{"model import of a pickle", "POST", "/v1/models/{model}/versions", "application/octet-stream", pickle, 400, "not a valid model file"},
	{"model import empty", "POST", "/v1/models/{model}/versions", "application/octet-stream", "", 400, "body"},
	// Model files that decode but break the rules a trained model meets.
	{"model import duplicate feature names", "POST", "/v1/models/{model}/versions", "application/octet-stream", "{file:dup-feature}", 400, "body.feature_names[1]"},
	{"model import feature name with NUL", "POST", "/v1/models/{model}/versions", "application/octet-stream", "{file:nul-feature}", 400, "U+0000"},
	{"model import 257-byte feature name", "POST", "/v1/models/{model}/versions", "application/octet-stream", "{file:long-feature}", 400, "body.feature_names[2]"},
	{"model import class with a newline", "POST", "/v1/models/{model}/versions", "application/octet-stream", "{file:newline-class}", 400, "body.classes[0]"},
	// Predict bodies that cost the server far more than their size.
	{"predict 25 empty object rows", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[` + strings.Repeat(`{},`, 24) + `{}]}`, 400, "inputs[0].sepal_length"},
	{"predict 25 empty array rows", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[` + strings.Repeat(`[],`, 24) + `[]]}`, 400, "has 0 values"},
	{"predict 10,000 unknown keys", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[{` + unknownKeys(10000) + `}]}`, 400, "reading stops after 20"},
	{"predict 100 KB unknown key", "POST", "/v1/models/{model}/predict", jsonCT, `{"inputs":[{"` + strings.Repeat("k", 100<<10) + `":1}]}`, 400, `"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"…`},
	// Predict rows of a typed model ({typed}: island, bill_length_mm, date,
	// input) with cells of the wrong type, huge cells and many keys.
	{"predict typed string in a number column", "POST", "/v1/models/{typed}/predict", jsonCT, `{"inputs":[{"island":"Dream"},{"bill_length_mm":"45.1"}]}`, 400, "inputs[1].bill_length_mm"},
	{"predict typed number in a datetime column", "POST", "/v1/models/{typed}/predict", jsonCT, `{"inputs":[["Dream",45,20080301,0]]}`, 400, "inputs[0][2]"},
	{"predict typed object in a category column", "POST", "/v1/models/{typed}/predict", jsonCT, `{"inputs":[{"island":{"name":"Dream"}}]}`, 400, "inputs[0].island"},
	{"predict typed date out of range", "POST", "/v1/models/{typed}/predict", jsonCT, `{"inputs":[{"date":"99999-01-01"}]}`, 400, "is not a date"},
	{"predict typed 100 KB date cell", "POST", "/v1/models/{typed}/predict", jsonCT, `{"inputs":[{"date":"` + strings.Repeat("9", 100<<10) + `"}]}`, 400, "inputs[0].date"},
	{"predict typed 1 MB cell", "POST", "/v1/models/{typed}/predict", jsonCT, `{"inputs":[{"island":"` + strings.Repeat("x", 1<<20) + `"}]}`, 413, "limit"},
	{"predict typed 10,000 unknown keys", "POST", "/v1/models/{typed}/predict", jsonCT, `{"inputs":[{` + unknownKeys(10000) + `}]}`, 400, "reading stops after 20"},
	{"predict typed the target column", "POST", "/v1/models/{typed}/predict", jsonCT, `{"inputs":[{"species":"Adelie"}]}`, 400, "inputs[0].species"},
	{"v2 typed FP64 for a category", "POST", "/v2/models/{typed}/infer", jsonCT, `{"inputs":[{"name":"island","shape":[1],"datatype":"FP64","data":[1]}]}`, 400, "inputs[0].datatype"},
	{"v2 typed string in a number column", "POST", "/v2/models/{typed}/infer", jsonCT, strings.Replace(typedV2(`"2008-03-01"`), `"data":[45]`, `"data":["45"]`, 1), 400, "inputs[1].data[0]"},
	{"v2 typed shape past the data", "POST", "/v2/models/{typed}/infer", jsonCT, strings.ReplaceAll(typedV2(`"2008-03-01"`), `"shape":[1]`, `"shape":[9999]`), 400, "more elements than the data can hold"},
	// HTTP: one byte over each limit, and at the limit (not 413).
	{"job at the request limit", "POST", "/v1/jobs", jsonCT, padTo(hardReqLimit, `{"model_name":"h"}`), 400, "dataset_id"},
	{"job one byte over", "POST", "/v1/jobs", jsonCT, padTo(hardReqLimit+1, `{"model_name":"h"}`), 413, "limit"},
	{"predict at the request limit", "POST", "/v1/models/{model}/predict", jsonCT, padTo(hardReqLimit, `{"inputs":[[1,2,3]]}`), 400, "inputs[0]"},
	{"predict one byte over", "POST", "/v1/models/{model}/predict", jsonCT, padTo(hardReqLimit+1, `{"inputs":[[1,2,3,4]]}`), 413, "limit"},
	{"v2 one byte over", "POST", "/v2/models/{model}/infer", jsonCT, padTo(hardReqLimit+1, v2Body(`[1,2,3,4]`)), 413, "limit"},
	{"v2 versioned one byte over", "POST", "/v2/models/{model}/versions/1/infer", jsonCT, padTo(hardReqLimit+1, v2Body(`[1,2,3,4]`)), 413, "limit"},
	{"csv at the upload limit", "POST", "/v1/datasets?name=d", "text/csv", csvOf(hardUploadLimit), 400, "2 classes"},
	{"csv one byte over", "POST", "/v1/datasets?name=d", "text/csv", csvOf(hardUploadLimit + 1), 413, "limit"},
	{"dataset JSON one byte over", "POST", "/v1/datasets", jsonCT, padTo(hardUploadLimit+1, `{"name":"d","features":[[1],[2]],"targets":[1,2]}`), 413, "limit"},
	{"model import one byte over", "POST", "/v1/models/{model}/versions", "application/octet-stream", strings.Repeat("\x00", hardUploadLimit+1), 413, "limit"},
	// HTTP: content types and list filters once more.
	{"no Content-Type on a dataset", "POST", "/v1/datasets?name=d", "", "a,y\n1,2\n", 415, "Content-Type"},
	{"curl's default Content-Type on a dataset", "POST", "/v1/datasets?name=d", "application/x-www-form-urlencoded", "a,y\n1,2\n", 415, "-H 'Content-Type: text/csv'"},
	{"no Content-Type on a job", "POST", "/v1/jobs", "", `{"model_name":"m"}`, 415, "application/json"},
	{"text/plain job", "POST", "/v1/jobs", "text/plain", `{"model_name":"m"}`, 415, "application/json"},
	{"bad limit", "GET", "/v1/jobs?limit=0", "", "", 400, "query.limit"},
	{"huge limit", "GET", "/v1/jobs?limit=99999999999999999999", "", "", 400, "query.limit"},
	{"wrong method on a job", "PATCH", "/v1/jobs/{ds}", "", "", 405, "PATCH"},
	// HTTP: routes and methods.
	{"unknown route", "GET", "/v1/nothing", "", "", 404, "no route"},
	{"unknown top route", "GET", "/admin", "", "", 404, "no route"},
	{"unknown v2 route", "GET", "/v2/repository/index", "", "", 404, "no route"},
	{"unknown model", "GET", "/v1/models/nosuchmodel", "", "", 404, "nosuchmodel"},
	{"unknown version", "GET", "/v1/models/{model}/versions/99", "", "", 404, "99"},
	{"unknown dataset", "GET", "/v1/datasets/0b6f2c1e-8d3a-4f5e-9c7b-1a2b3c4d5e6f", "", "", 404, "0b6f2c1e-8d3a-4f5e-9c7b-1a2b3c4d5e6f"},
	{"unknown job", "GET", "/v1/jobs/0b6f2c1e-8d3a-4f5e-9c7b-1a2b3c4d5e6f", "", "", 404, "not found"},
	{"v2 unknown model", "POST", "/v2/models/nosuchmodel/infer", jsonCT, v2Body(`[1,2,3,4]`), 404, "nosuchmodel"},
	{"PUT datasets", "PUT", "/v1/datasets", "", "", 405, "PUT"},
	{"PATCH a job", "PATCH", "/v1/jobs/{job}", "", "", 405, "PATCH"},
	{"GET cancel", "GET", "/v1/jobs/{job}/cancel", "", "", 405, "GET"},
	{"PUT a model", "PUT", "/v1/models/{model}", jsonCT, `{}`, 405, "PUT"},
	{"GET predict", "GET", "/v1/models/{model}/predict", "", "", 405, "GET"},
	{"DELETE a model file", "DELETE", "/v1/models/{model}/versions/1/file", "", "", 405, "DELETE"},
	{"GET v2 infer", "GET", "/v2/models/{model}/infer", "", "", 405, "GET"},
	{"POST healthz", "POST", "/healthz", "", "", 405, "POST"},
	{"DELETE metrics", "DELETE", "/metrics", "", "", 405, "DELETE"},
	// State conflicts that must not change anything.
	{"cancel a finished job", "POST", "/v1/jobs/{job}/cancel", "", "", 409, "succeeded"},
	{"stop a finished job", "POST", "/v1/jobs/{job}/stop", "", "", 409, "running"},
}

// traversal is a hostile path segment and the status it must get: 400
// naming the parameter when it reaches the handler as one segment, 404
// when the router sees more segments than any route has. A segment with
// only set is tried on the routes of that parameter alone.
type traversal struct {
	seg    string
	status int
	only   string
}

var traversals = []traversal{
	{"..", 400, ""},
	{".", 400, ""},
	{"..%2f..%2fetc%2fpasswd", 400, ""},
	{"..%2F..%2F", 400, ""},
	{"%2e%2e", 400, ""},
	{"%2e%2e%2f%2e%2e%2fetc", 400, ""},
	{"%252e%252e%252f", 400, ""},
	{"..%255c..%255c", 400, ""},
	{"..\\..\\windows", 400, ""},
	{"..%5c..%5cwindows", 400, ""},
	{"a%00b", 400, ""},
	{"%00", 400, ""},
	{"iris%00.json", 400, ""},
	{"%c0%ae%c0%ae", 400, ""},
	{"IRIS", 400, ""},
	{"-rf", 400, ""},
	{"~root", 400, ""},
	{"x%20y", 400, ""},
	{longName, 400, ""},
	{strings.Repeat("a", 4096), 400, ""},
	{"..%252f..%252f", 400, ""},
	{"0B6F2C1E-8D3A-4F5E-9C7B-1A2B3C4D5E6F", 400, ""}, // a UUID, but not the canonical lower case
	{"{ds}x", 400, "path.id"},                         // a model name, but no id
	{"../../../etc/passwd", 404, ""},
}

// paramRoutes are the routes with path parameters; {p} marks the one the
// traversal replaces, the others take valid values.
var paramRoutes = []struct{ method, path, param string }{
	{"GET", "/v1/datasets/{p}", "path.id"},
	{"DELETE", "/v1/datasets/{p}", "path.id"},
	{"GET", "/v1/jobs/{p}", "path.id"},
	{"DELETE", "/v1/jobs/{p}", "path.id"},
	{"POST", "/v1/jobs/{p}/cancel", "path.id"},
	{"POST", "/v1/jobs/{p}/stop", "path.id"},
	{"GET", "/v1/jobs/{p}/events", "path.id"},
	{"GET", "/v1/jobs/{p}/loss.svg", "path.id"},
	{"GET", "/v1/models/{p}", "path.name"},
	{"DELETE", "/v1/models/{p}", "path.name"},
	{"POST", "/v1/models/{p}/predict", "path.name"},
	{"POST", "/v1/models/{p}/versions", "path.name"},
	{"GET", "/v1/models/{p}/versions/1", "path.name"},
	{"DELETE", "/v1/models/{p}/versions/1", "path.name"},
	{"POST", "/v1/models/{p}/versions/1/predict", "path.name"},
	{"GET", "/v1/models/{p}/versions/1/file", "path.name"},
	{"GET", "/v1/models/{model}/versions/{p}", "path.version"},
	{"DELETE", "/v1/models/{model}/versions/{p}", "path.version"},
	{"POST", "/v1/models/{model}/versions/{p}/predict", "path.version"},
	{"GET", "/v1/models/{model}/versions/{p}/file", "path.version"},
	{"GET", "/v2/models/{p}", "path.name"},
	{"GET", "/v2/models/{p}/ready", "path.name"},
	{"POST", "/v2/models/{p}/infer", "path.name"},
	{"GET", "/v2/models/{p}/versions/1", "path.name"},
	{"GET", "/v2/models/{p}/versions/1/ready", "path.name"},
	{"POST", "/v2/models/{p}/versions/1/infer", "path.name"},
	{"GET", "/v2/models/{model}/versions/{p}", "path.version"},
	{"GET", "/v2/models/{model}/versions/{p}/ready", "path.version"},
	{"POST", "/v2/models/{model}/versions/{p}/infer", "path.version"},
}

// traversalCases crosses every parameterized route with every hostile
// segment.
func traversalCases() []hostile {
	var out []hostile
	for _, r := range paramRoutes {
		for _, tr := range traversals {
			if tr.only != "" && tr.only != r.param {
				continue
			}
			want := r.param
			if tr.status == http.StatusNotFound {
				want = "no route"
			}
			ct, body := "", ""
			if r.method == "POST" && strings.HasSuffix(r.path, "infer") {
				ct, body = jsonCT, v2Body(`[1,2,3,4]`)
			} else if r.method == "POST" && strings.HasSuffix(r.path, "predict") {
				ct, body = jsonCT, `{"inputs":[[1,2,3,4]]}`
			} else if strings.HasSuffix(r.path, "/versions") {
				ct, body = "application/octet-stream", pickle
			}
			out = append(out, hostile{
				name:   fmt.Sprintf("traversal %s %s %.24s", r.method, r.path, tr.seg),
				method: r.method, path: strings.Replace(r.path, "{p}", tr.seg, 1),
				ct: ct, body: body, status: tr.status, want: want,
			})
		}
	}
	return out
}

// hardEnv is the seeded server of the hostile-input test.
type hardEnv struct {
	*testEnv
	url  string
	vals *strings.Replacer
}

// newHardEnv starts the real server on a real listener with the small
// limits, and stores the iris dataset, a regression dataset and the model
// of a finished job.
func newHardEnv(t *testing.T) *hardEnv {
	t.Helper()
	env := newTestEnv(t, Config{MaxRequestBytes: hardReqLimit, MaxUploadBytes: hardUploadLimit})
	ds := uploadIris(t, env)
	rds := mustDataset(t, env, `{"name":"r","features":[[1,2],[2,1],[3,3],[4,0]],"targets":[3.5,4,7.25,4.5]}`)
	job := submitJob(t, env, smallJob("iris", ds.ID, 3))
	if got := waitJob(t, env, job.ID); got.Status != jobs.Succeeded || got.ModelVersion == 0 {
		t.Fatalf("seed job: %s version %d (%s)", got.Status, got.ModelVersion, got.Error)
	}
	_, file, err := env.store.ModelFile(context.Background(), "iris", 0)
	if err != nil {
		t.Fatalf("seed model file: %v", err)
	}
	typed := mustTrain(t, "typed")
	typedMeta := importedMeta("typed", typed.model)
	typedMeta.Imported = false
	if _, err := env.store.PutModel(context.Background(), typedMeta, typed.file); err != nil {
		t.Fatalf("seed typed model: %v", err)
	}
	srv := httptest.NewServer(env.h)
	t.Cleanup(srv.Close)
	return &hardEnv{testEnv: env, url: srv.URL,
		vals: strings.NewReplacer(append([]string{"{ds}", ds.ID, "{rds}", rds.ID, "{job}", job.ID, "{model}", "iris", "{typed}", "typed"},
			craftedModelFiles(t, file)...)...)}
}

// send sends one request with its path exactly as written.
func (e *hardEnv) send(t *testing.T, method, path, ct string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	return e.sendFrom(t, method, path, ct, bytes.NewReader(body))
}

// sendChunked sends the body without a Content-Length (chunked), so that
// only the server's reading can find it too large.
func (e *hardEnv) sendChunked(t *testing.T, method, path, ct string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	return e.sendFrom(t, method, path, ct, io.MultiReader(bytes.NewReader(body)))
}

func (e *hardEnv) sendFrom(t *testing.T, method, path, ct string, body io.Reader) (int, http.Header, []byte) {
	t.Helper()
	status, hdr, b, err := e.try(method, path, ct, body)
	if err != nil {
		t.Fatal(err)
	}
	return status, hdr, b
}

// try sends one request; it may be called from any goroutine.
func (e *hardEnv) try(method, path, ct string, body io.Reader) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(method, e.url, body)
	if err != nil {
		return 0, nil, nil, err
	}
	p, q, _ := strings.Cut(path, "?")
	req.URL.Opaque = p
	req.URL.RawQuery = q
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %.80s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %.80s: read the answer: %w", method, path, err)
	}
	return res.StatusCode, res.Header, b, nil
}

// leaks returns what b must not contain: the data directory, Go source
// locations and stack traces.
func leaks(b []byte, dataDir string) string {
	for _, s := range []string{dataDir, "goroutine ", ".go:", "panic"} {
		if bytes.Contains(b, []byte(s)) {
			return s
		}
	}
	return ""
}

func TestHostileInput(t *testing.T) {
	e := newHardEnv(t)
	cases := append(append([]hostile(nil), hostileInputs...), traversalCases()...)
	// The job's checkpoint deletion and record writes finish before the
	// job turns terminal; a second snapshot proves nothing is still
	// settling.
	before := snapshotDir(t, e.dir)
	time.Sleep(50 * time.Millisecond)
	if again := snapshotDir(t, e.dir); !maps.Equal(before, again) {
		t.Fatalf("the data directory is still changing after the seed job finished")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body := e.send(t, tc.method, e.vals.Replace(tc.path), tc.ct, []byte(e.vals.Replace(tc.body)))
			if status != tc.status {
				t.Fatalf("status %d, want %d: %.500s", status, tc.status, body)
			}
			if s := leaks(body, e.dir); s != "" {
				t.Errorf("the answer reveals %q: %.500s", s, body)
			}
			checkNamesProblem(t, hdr, body, tc.status, tc.want)
			if tc.status == http.StatusRequestEntityTooLarge {
				status, hdr, body := e.sendChunked(t, tc.method, e.vals.Replace(tc.path), tc.ct, []byte(e.vals.Replace(tc.body)))
				if status != tc.status {
					t.Fatalf("chunked: status %d, want %d: %.500s", status, tc.status, body)
				}
				checkNamesProblem(t, hdr, body, tc.status, tc.want)
			}
		})
	}
	if status, _, body := e.send(t, "GET", "/healthz", "", nil); status != http.StatusOK {
		t.Fatalf("/healthz after the hostile inputs: %d %s", status, body)
	}
	status, _, body := e.send(t, "POST", "/v1/models/iris/predict", jsonCT, []byte(`{"inputs":[[5.1,3.5,1.4,0.2]]}`))
	if status != http.StatusOK {
		t.Fatalf("predict after the hostile inputs: %d %s", status, body)
	}
	if after := snapshotDir(t, e.dir); !maps.Equal(before, after) {
		t.Errorf("the data directory changed:\nbefore %v\nafter  %v", before, after)
	}
}

// checkNamesProblem checks an error answer: application/problem+json with
// the status and a detail or error entry containing want, or on /v2 the
// protocol's {"error": "..."} containing want.
func checkNamesProblem(t *testing.T, hdr http.Header, body []byte, status int, want string) {
	t.Helper()
	switch ct := hdr.Get("Content-Type"); ct {
	case "application/problem+json":
		var p Problem
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("problem+json that does not decode: %v: %.500s", err, body)
		}
		if p.Status != status || p.Title == "" || p.Type == "" || p.RequestID == "" {
			t.Errorf("incomplete problem: %+v", p)
		}
		if !problemMentions(p, want) {
			t.Errorf("the problem does not mention %q: %.700s", want, body)
		}
	case "application/json":
		var v2 struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(body, &v2); err != nil || v2.Error == "" {
			t.Fatalf("a %d that is neither a problem nor {\"error\"}: %.500s", status, body)
		}
		if !strings.Contains(v2.Error, want) {
			t.Errorf("the error does not mention %q: %s", want, v2.Error)
		}
	default:
		t.Fatalf("error answer with Content-Type %q: %.500s", ct, body)
	}
}

// Exposure. TestAuthOnEveryRoute and
// TestServerFaultsAreGeneric (middleware_test.go) walk the routes for 401s
// and check generic 500s; this adds faults whose errors and panics name
// files under the real data directory and hold the token.

const hardToken = "s3cr3t-Token-9f8e7d"

// brokenDisk is the real store with some reads failing as a broken disk
// would, with errors that name files under the data directory, and one
// that panics with such a name (the job manager keeps the real store).
type brokenDisk struct {
	*store.Store
	dir string
}

func (f brokenDisk) fault(file string) error {
	return fmt.Errorf("read %s: %w", filepath.Join(f.dir, file), syscall.EIO)
}

func (f brokenDisk) ListModels(context.Context) ([]store.ModelName, error) {
	return nil, f.fault("models")
}

func (f brokenDisk) ModelMeta(context.Context, string, int) (store.ModelMeta, error) {
	return store.ModelMeta{}, f.fault("models/iris/v1.meta")
}

func (f brokenDisk) DatasetMeta(context.Context, string) (store.DatasetMeta, error) {
	return store.DatasetMeta{}, f.fault("datasets/x.meta")
}

func (f brokenDisk) ListDatasets(context.Context) ([]store.DatasetMeta, error) {
	panic("unexpected state in " + filepath.Join(f.dir, "datasets"))
}

func (f brokenDisk) Writable() error { return f.fault("probe") }

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestNoLeaks sends good, bad and failing requests with a token configured
// and the server's faults naming files under the data directory: no answer
// reveals the data directory, a stack trace, a Go source location or the
// token; no log line holds the token; server faults are a generic 500
// logged with the request id.
func TestNoLeaks(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := jobs.New(st, jobs.Options{Workers: 1, QueueSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := New(Options{Config: Config{AuthToken: hardToken}, Store: brokenDisk{Store: st, dir: dir}, Jobs: m, Logger: logger})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)

	auth := "Bearer " + hardToken
	tests := []struct {
		method, path, auth, body string
		status                   int
	}{
		{"GET", "/v1/models", auth, "", 500},
		{"GET", "/v1/models/iris", auth, "", 500},
		{"POST", "/v1/models/iris/predict", auth, `{"inputs":[[1,2,3,4]]}`, 500},
		{"POST", "/v2/models/iris/infer", auth, v2Body(`[1,2,3,4]`), 500},
		{"GET", "/v2/models/iris/ready", auth, "", 503},
		{"GET", "/v1/datasets/0b6f2c1e-8d3a-4f5e-9c7b-1a2b3c4d5e6f", auth, "", 500},
		{"GET", "/v1/datasets", auth, "", 500},
		{"POST", "/v1/jobs", auth, `{"model_name":"m","dataset_id":"0b6f2c1e-8d3a-4f5e-9c7b-1a2b3c4d5e6f"}`, 400},
		{"GET", "/readyz", "", "", 503},
		{"GET", "/v2/health/ready", auth, "", 503},
		{"GET", "/v1/jobs", auth, "", 200},
		{"GET", "/v1/models", "Bearer " + hardToken + "x", "", 401},
		{"GET", "/v1/nothing/" + hardToken, auth, "", 404},
		{"POST", "/v1/jobs", auth, `{"model_name":"` + hardToken + `"`, 400},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, hs.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", jsonCT)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Errorf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if s := leaks(body, dir); s != "" {
				t.Errorf("the answer reveals %q: %s", s, body)
			}
			if bytes.Contains(body, []byte(hardToken)) && !strings.Contains(tc.path+tc.body, hardToken) {
				t.Errorf("the answer holds the token: %s", body)
			}
			if tc.status == 500 {
				id := res.Header.Get("X-Request-Id")
				if !bytes.Contains(body, []byte("internal server error")) {
					t.Errorf("a 500 with a specific detail: %s", body)
				}
				if id == "" || !strings.Contains(logs.String(), id) {
					t.Errorf("the 500 (request id %q) is not logged with its request id", id)
				}
			}
		})
	}
	for line := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(line, hardToken) {
			t.Errorf("a log line holds the token: %s", line)
		}
	}
}

// TestPredictWhileModelsChange predicts from many goroutines while other
// goroutines delete the model's versions, import new ones and delete the
// whole model: every answer is 200 or a 404 naming the model, never a
// 5xx or a dropped connection, also under -race.
func TestPredictWhileModelsChange(t *testing.T) {
	e := newHardEnv(t)
	status, _, file := e.send(t, "GET", "/v1/models/iris/versions/1/file", "", nil)
	if status != http.StatusOK {
		t.Fatalf("export: %d", status)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad sync.Map
	var oks, notFound atomic.Int64
	for i := range 16 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				path, body := "/v1/models/iris/predict", `{"inputs":[[5.1,3.5,1.4,0.2]]}`
				switch (i + n) % 3 {
				case 1:
					path, body = "/v2/models/iris/infer", v2Body(`[5.1,3.5,1.4,0.2]`)
				case 2:
					path = "/v1/models/iris/versions/1/predict"
				}
				status, _, b, err := e.try("POST", path, jsonCT, strings.NewReader(body))
				switch {
				case err != nil:
					bad.Store(err.Error(), true)
				case status == http.StatusOK:
					oks.Add(1)
				case status == http.StatusNotFound && bytes.Contains(b, []byte("iris")):
					notFound.Add(1)
				default:
					bad.Store(fmt.Sprintf("%s: %d %s", path, status, b), true)
				}
			}
		})
	}
	wg.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			var status int
			var b []byte
			var err error
			switch n % 4 {
			case 0, 1:
				status, _, b, err = e.try("POST", "/v1/models/iris/versions", "application/octet-stream", bytes.NewReader(file))
			case 2:
				status, _, b, err = e.try("DELETE", "/v1/models/iris/versions/"+strconv.Itoa(1+n%7), "", nil)
			case 3:
				if n%16 == 3 {
					status, _, b, err = e.try("DELETE", "/v1/models/iris", "", nil)
				}
			}
			if err != nil || status >= 500 {
				bad.Store(fmt.Sprintf("model change: %d %s %v", status, b, err), true)
			}
		}
	})
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d predictions answered 200, %d 404", oks.Load(), notFound.Load())
	bad.Range(func(k, _ any) bool {
		t.Errorf("unexpected answer %s", k)
		return true
	})
	if oks.Load() == 0 {
		t.Error("no prediction succeeded")
	}
}

// TestClientAbortIsNotAServerFault: a client that hangs up in the middle
// of sending a body is not the server's fault. Each upload route must log
// no error and record a status below 500 (a 5xx would count in the error
// rate that operators alert on).
func TestClientAbortIsNotAServerFault(t *testing.T) {
	env := newTestEnv(t, Config{})
	logs := &syncBuffer{}
	srv := New(Options{Store: env.store, Jobs: env.jobs, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	routes := []struct{ path, ct, start string }{
		{"/v1/datasets?name=x", "text/csv", "a,y\n1,p\n"},
		{"/v1/datasets", jsonCT, `{"name":"x","features":[[1],`},
		{"/v1/jobs", jsonCT, `{"model_name":"m",`},
		{"/v1/models/m/predict", jsonCT, `{"inputs":[[1,`},
		{"/v1/models/m/versions", "application/octet-stream", "BPDMODEL"},
		{"/v2/models/m/infer", jsonCT, `{"inputs":[`},
	}
	for _, rt := range routes {
		t.Run(rt.path, func(t *testing.T) {
			before := len(logs.String())
			pr, pw := io.Pipe()
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				_, _ = pw.Write([]byte(rt.start))
				time.Sleep(100 * time.Millisecond)
				cancel()
				pw.CloseWithError(context.Canceled)
			}()
			req, _ := http.NewRequestWithContext(ctx, "POST", hs.URL+rt.path, pr)
			req.Header.Set("Content-Type", rt.ct)
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
			// The handler notices the hang-up and logs after the client
			// has gone; wait for its access-log line.
			var line map[string]any
			for deadline := time.Now().Add(5 * time.Second); line == nil; time.Sleep(10 * time.Millisecond) {
				for l := range strings.SplitSeq(logs.String()[before:], "\n") {
					var m map[string]any
					if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "http request" {
						line = m
					}
					if strings.Contains(l, `"level":"ERROR"`) {
						t.Errorf("a client hang-up logged an error: %s", l)
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("no access-log line within 5 s:\n%s", logs.String()[before:])
				}
			}
			if status, _ := line["status"].(float64); status >= 500 {
				t.Errorf("a client hang-up was recorded as status %v", status)
			}
		})
	}
}

// TestNoRouteRevealsPaths walks every route of the seeded server (a
// dataset, a finished job and its model) and calls each with valid
// parameters: no answer, successful or not, holds the data directory, a
// stack trace or a Go source location. Deleting routes run last, so that
// the others see the stored objects.
func TestNoRouteRevealsPaths(t *testing.T) {
	e := newHardEnv(t)
	var routes [][2]string
	err := chi.Walk(e.h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes = append(routes, [2]string{method, route})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortStableFunc(routes, func(a, b [2]string) int {
		return cmpBool(a[0] == "DELETE", b[0] == "DELETE")
	})
	ids := strings.NewReplacer("{name}", "iris", "{version}", "1")
	for _, rt := range routes {
		method, path := rt[0], rt[1]
		switch {
		case strings.Contains(path, "/datasets/{id}"):
			path = strings.Replace(path, "{id}", "{ds}", 1)
		case strings.Contains(path, "{id}"):
			path = strings.Replace(path, "{id}", "{job}", 1)
		}
		path = e.vals.Replace(ids.Replace(path))
		ct, body := "", ""
		switch {
		case method == "POST" && strings.HasSuffix(path, "/infer"):
			ct, body = jsonCT, v2Body(`[5.1,3.5,1.4,0.2]`)
		case method == "POST" && strings.HasSuffix(path, "/predict"):
			ct, body = jsonCT, `{"inputs":[[5.1,3.5,1.4,0.2]]}`
		case method == "POST" && strings.HasSuffix(path, "/jobs"):
			ct, body = jsonCT, e.vals.Replace(irisJob(""))
		case method == "POST" && strings.HasSuffix(path, "/datasets"):
			ct, body = "text/csv", "a,y\n1,p\n2,q\n"
		case method == "POST" && strings.HasSuffix(path, "/versions"):
			ct, body = "application/octet-stream", pickle
		}
		status, _, b := e.send(t, method, path, ct, []byte(body))
		if status >= 500 {
			t.Errorf("%s %s: %d %.300s", method, path, status, b)
		}
		if s := leaks(b, e.dir); s != "" {
			t.Errorf("%s %s: the answer reveals %q: %.300s", method, path, s, b)
		}
	}
	if len(routes) < 30 {
		t.Fatalf("walked %d routes", len(routes))
	}
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// TestHostileTables: hostile tables that are accepted, each with a correct
// and bounded result. They are stored, so they are not in hostileInputs,
// whose cases must leave the data directory as it was.
func TestHostileTables(t *testing.T) {
	if testing.Short() {
		t.Skip("builds uploads of tens of megabytes")
	}
	env := newTestEnv(t, Config{})
	upload := func(t *testing.T, path, ct, body string) (store.DatasetMeta, time.Duration, uint64) {
		t.Helper()
		if len(body) < 1<<20 {
			// Small enough for the contract check to read.
			doRaw(t, env.h, http.MethodPost, path, ct, []byte(body))
		}
		// Measured straight at the handler: the contract check reads the
		// body and would count its own allocations.
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		env.h.ServeHTTP(rec, req)
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		if rec.Code != http.StatusCreated {
			t.Fatalf("status %d: %.500s", rec.Code, rec.Body)
		}
		var m store.DatasetMeta
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		return m, took, after.TotalAlloc - before.TotalAlloc
	}
	t.Run("a million distinct ids are ignored", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("id,x,y\n")
		for i := range 1_000_000 {
			fmt.Fprintf(&b, "user-%d,%d,%c\n", i, i%97, "pq"[i%2])
		}
		m, took, alloc := upload(t, "/v1/datasets?name=ids", "text/csv", b.String())
		id := m.Columns[0]
		if id.Role != table.Ignored || id.Distinct != 1_000_000 || !strings.HasPrefix(id.Reason, "identifier-like") {
			t.Fatalf("id = %+v, want ignored as identifier-like with 1000000 distinct", id)
		}
		if m.Features != 1 || m.Rows != 1_000_000 {
			t.Fatalf("features %d rows %d, want 1 and 1000000", m.Features, m.Rows)
		}
		// The level table of a million ids, with its map, allocates about
		// 220 MB as it grows, and the whole upload about 28 bytes a byte
		// (471 MB for 16.8 MB, measured on the 2-core machine); the stated
		// bound is 40. What the upload holds is reserved from the memory
		// budget as it grows (levelBytes a level), so a server refuses
		// (503) what it cannot hold.
		if limit := uint64(40 * b.Len()); alloc > limit {
			t.Errorf("allocated %d bytes for a %d-byte upload, want at most %d", alloc, b.Len(), limit)
		}
		t.Logf("%d bytes in %v, %d bytes allocated", b.Len(), took, alloc)
	})
	t.Run("a million distinct values declared categorical", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("id,x,y\n")
		for i := range 1_000_000 {
			fmt.Fprintf(&b, "user-%d,%d,%c\n", i, i%97, "pq"[i%2])
		}
		m, took, alloc := upload(t, "/v1/datasets?name=ids&categorical=id", "text/csv", b.String())
		if id := m.Columns[0]; id.Role != table.Feature || id.Type != table.Category || id.Distinct != 1_000_000 || len(id.TopLevels) != 10 {
			t.Fatalf("id = %+v, want a category feature of 1000000 levels, 10 listed", id)
		}
		// Bounded as the ignored ids above (the level table is the same);
		// the top-K rule of preprocessing caps what training encodes.
		if limit := uint64(40 * b.Len()); alloc > limit {
			t.Errorf("allocated %d bytes for a %d-byte upload, want at most %d", alloc, b.Len(), limit)
		}
		t.Logf("%d bytes in %v, %d bytes allocated", b.Len(), took, alloc)
	})
	t.Run("a 1 MB cell in a category", func(t *testing.T) {
		big := strings.Repeat("7", 1<<20)
		m, _, _ := upload(t, "/v1/datasets?name=big&categorical=a", "text/csv", "a,y\n"+big+",p\n2,q\n")
		if a := m.Columns[0]; a.Type != table.Category || a.Distinct != 2 {
			t.Fatalf("a = %+v", a)
		}
	})
	t.Run("mixed types in one column", func(t *testing.T) {
		m, _, _ := upload(t, "/v1/datasets?name=mixed", "text/csv", "m,y\n1,p\n1.0,q\nx,p\ny,q\n2024-01-01,p\n")
		if c := m.Columns[0]; c.Type != table.Category || c.Distinct != 4 || !m.Typed {
			t.Fatalf("m = %+v, want a category of 4 levels (1 and 1.0 are one)", c)
		}
	})
	t.Run("dates at the ends of the range", func(t *testing.T) {
		m, _, _ := upload(t, "/v1/datasets?name=dates", "text/csv", "w,y\n0001-01-01,p\n9999-12-31T23:59:59.999999999Z,q\n2024-03-01,p\n")
		if w := m.Columns[0]; w.Type != table.Datetime || w.First.Year() != 1 || w.Last.Year() != 9999 {
			t.Fatalf("w = %+v", w)
		}
	})
	t.Run("na_values that match a whole column", func(t *testing.T) {
		m, _, _ := upload(t, "/v1/datasets?name=na&na_values=x", "text/csv", "a,b,y\n1,x,p\n2,x,q\n")
		if b := m.Columns[1]; b.Role != table.Ignored || b.Missing != 2 || m.Features != 1 {
			t.Fatalf("b = %+v features %d, want b ignored with 2 missing", b, m.Features)
		}
	})
	t.Run("a typed table reads back as it was stored", func(t *testing.T) {
		m, _, _ := upload(t, "/v1/datasets?name=typed", "text/csv",
			"bill,island,date,y\n39.1,Torgersen,2007-11-11,Adelie\nNA,Biscoe,2007-11-16,Gentoo\n40.3,Torgersen,,Adelie\n41,Dream,2008-11-09,\n")
		if !m.Typed || m.Rows != 3 || m.DroppedRows != 1 || m.Columns[0].Missing != 1 || m.Columns[2].Type != table.Datetime {
			t.Fatalf("%+v", m)
		}
		res := doJSON(t, env.h, http.MethodGet, "/v1/datasets/"+m.ID, nil)
		var got store.DatasetMeta
		res.JSON(t, &got)
		if !reflect.DeepEqual(got.Columns, m.Columns) || !slices.Equal(got.Warnings, m.Warnings) {
			t.Fatalf("GET gives columns %+v warnings %q, the upload %+v %q", got.Columns, got.Warnings, m.Columns, m.Warnings)
		}
	})
	t.Run("JSON records", func(t *testing.T) {
		m, _, _ := upload(t, "/v1/datasets?name=rec&target=species", "application/json",
			`[{"bill":39.1,"island":"Torgersen","species":"Adelie"},{"bill":null,"island":"Biscoe","species":"Gentoo"},{"bill":40.3,"species":"Adelie"}]`)
		if m.Rows != 3 || !m.Typed || m.Task != "binary" || m.Columns[1].Missing != 1 {
			t.Fatalf("%+v", m)
		}
	})
	t.Run("10,000 columns", func(t *testing.T) {
		const cols, rows = 10_000, 20
		var b strings.Builder
		for j := range cols {
			fmt.Fprintf(&b, "c%d,", j)
		}
		b.WriteString("y\n")
		for i := range rows {
			for j := range cols {
				fmt.Fprintf(&b, "%d,", (i+j)%7)
			}
			fmt.Fprintf(&b, "%c\n", "pq"[i%2])
		}
		m, took, alloc := upload(t, "/v1/datasets?name=wide", "text/csv", b.String())
		if len(m.Columns) != cols+1 || m.Features != cols || m.Columns[cols].Role != table.Target {
			t.Fatalf("%d columns, %d features", len(m.Columns), m.Features)
		}
		if c := m.Columns[3]; c.Type != table.Number || *c.Min != 0 || *c.Max != 6 || c.Distinct != 7 {
			t.Fatalf("c3 = %+v, want numbers 0 to 6 with 7 distinct", c)
		}
		// Stated bounds: 10 seconds (about 0.2 s on a quiet 2-core
		// machine) and 64 MB allocated for a 400 KB table.
		if took > 10*time.Second || alloc > 64<<20 {
			t.Errorf("took %v and allocated %d bytes, want at most 10s and 64 MiB", took, alloc)
		}
		t.Logf("%d bytes in %v, %d bytes allocated", b.Len(), took, alloc)
	})
	t.Run("header=false, semicolons and decimal commas", func(t *testing.T) {
		m, _, _ := upload(t, "/v1/datasets?name=eu&header=false&decimal=,", "text/csv", "1,5;2;p\n3,25;4;q\n")
		if m.Rows != 2 || !slices.Equal(m.FeatureNames, []string{"c1", "c2"}) || *m.Columns[0].Max != 3.25 {
			t.Fatalf("rows %d features %q c1 %+v", m.Rows, m.FeatureNames, m.Columns[0])
		}
	})
	t.Run("tab-separated, a dropped row and an ignored column", func(t *testing.T) {
		m, _, _ := upload(t, "/v1/datasets?name=tsv&ignore=notes", "text/tab-separated-values", "a\tnotes\ty\n1\tx\tp\n2\ty\t\n3\tz\tq\n")
		if m.Rows != 2 || m.DroppedRows != 1 || !slices.Equal(m.FeatureNames, []string{"a"}) || m.Columns[1].Role != table.Ignored {
			t.Fatalf("rows %d dropped %d features %q columns %+v", m.Rows, m.DroppedRows, m.FeatureNames, m.Columns)
		}
	})
}
