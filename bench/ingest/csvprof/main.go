// Command csvprof runs internal/ingest's CSV parser alone on a file, with no
// HTTP and no store, and prints MB/s, bytes allocated and the peak Go heap,
// optionally writing a CPU profile. It separates the parser's own cost from
// the server's in the ingest figures of bench/predict_load.
//
//	go run ./bench/ingest/csvprof -target label -cpuprofile cpu.prof fashion.csv
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/backpropd/backpropd/internal/ingest"
)

func main() {
	target := flag.String("target", "label", "target column(s), comma-separated")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the parse to this file")
	parts := flag.Bool("parts", true, "leave the numbers in the blocks they were parsed into, as the server does (false: copy them into one slice)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: csvprof [-target col] [-cpuprofile file] data.csv")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *target, *cpuProfile, *parts); err != nil {
		fmt.Fprintln(os.Stderr, "csvprof:", err)
		os.Exit(1)
	}
}

func run(path, target, cpuProfile string, parts bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if cpuProfile != "" {
		pf, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	// Sample the heap while parsing: the peak, not the end state, is what
	// a server must have room for.
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	t0 := time.Now()
	d, err := ingest.ReadCSV(context.Background(), f, ingest.CSVOptions{
		Name: "csvprof", Targets: strings.Split(target, ","), XParts: parts,
	})
	secs := time.Since(t0).Seconds()
	close(stop)
	<-sampled
	if err != nil {
		return err
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	numeric := float64(d.Meta.Rows*(d.Meta.Features+len(d.Meta.TargetNames))) * 8
	fmt.Printf("%s: %d rows × %d features, %.1f MB in %.2f s: %.1f MB/s\n",
		path, d.Meta.Rows, d.Meta.Features, float64(st.Size())/1e6, secs, float64(st.Size())/1e6/secs)
	fmt.Printf("allocated %.0f MB in %d allocations; peak heap in use %.0f MB (%.2f× the numeric size, %.0f MB)\n",
		float64(after.TotalAlloc-before.TotalAlloc)/1e6, after.Mallocs-before.Mallocs,
		float64(peak.Load())/1e6, float64(peak.Load())/numeric, numeric/1e6)
	return nil
}
