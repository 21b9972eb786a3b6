// Command e2e measures CSV ingest end to end through the real server: it
// starts each server binary given on loopback with a temporary data
// directory, uploads a CSV file to POST /v1/datasets a number of times
// (the servers' uploads interleaved, so that load from elsewhere on the
// machine falls on all of them alike), and prints, per server, the MB/s
// (bytes of CSV over the wall time of the request, to the 201), best and
// median, and the server's peak resident size (VmHWM) against the
// dataset's numeric size (rows × columns × 8 bytes), with the verdict
// against the target rate.
//
//	go run ./bench/ingest/e2e -csv fashion.csv -n 5 -target 100 new=./backpropd old=./backpropd-main
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	csvPath := flag.String("csv", "", "CSV file to upload")
	query := flag.String("query", "name=bench&target=label", "query of the upload")
	n := flag.Int("n", 5, "uploads per server")
	target := flag.Float64("target", 100, "target rate, MB/s end to end")
	flag.Parse()
	if *csvPath == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: e2e -csv file [-n 5] [-query q] [-target MB/s] label=server-binary ...")
		os.Exit(2)
	}
	if err := run(*csvPath, *query, *n, *target, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
}

type server struct {
	label, bin, base, dir string
	cmd                   *exec.Cmd
	rates                 []float64
	cpu                   []float64 // the server's CPU seconds per upload
	peak                  int64     // bytes, the highest VmHWM seen
	rows, cols            int
}

func run(csvPath, query string, n int, target float64, bins []string) error {
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for _, arg := range bins {
		label, bin, ok := strings.Cut(arg, "=")
		if !ok {
			label, bin = filepath.Base(arg), arg
		}
		s := &server{label: label, bin: bin}
		if err := s.start(); err != nil {
			return fmt.Errorf("start %s: %w", label, err)
		}
		servers = append(servers, s)
	}
	st, err := os.Stat(csvPath)
	if err != nil {
		return err
	}
	for i := range n {
		for _, s := range servers {
			secs, err := s.upload(csvPath, st.Size(), query)
			if err != nil {
				return fmt.Errorf("%s upload %d: %w", s.label, i+1, err)
			}
			s.rates = append(s.rates, float64(st.Size())/1e6/secs)
		}
	}
	fmt.Printf("file: %s, %.1f MB; %d uploads per server\n", csvPath, float64(st.Size())/1e6, n)
	for _, s := range servers {
		r := slices.Clone(s.rates)
		slices.Sort(r)
		best, median := r[len(r)-1], r[len(r)/2]
		numeric := float64(s.rows*s.cols) * 8
		verdict := "target met"
		if best < target {
			verdict = fmt.Sprintf("target missed by %.1f MB/s (%.0f%%)", target-best, 100*(target-best)/target)
		}
		cpu := slices.Clone(s.cpu)
		slices.Sort(cpu)
		fmt.Printf("%s: best %.1f MB/s, median %.1f MB/s (all: %s); server CPU per upload %.2f s (median; %.0f MB/s of CPU); peak RSS %.0f MB, %.2f× the numeric size (%.0f MB); %s of %.0f MB/s\n",
			s.label, best, median, rateList(s.rates), cpu[len(cpu)/2], float64(st.Size())/1e6/cpu[len(cpu)/2],
			float64(s.peak)/1e6, float64(s.peak)/numeric, numeric/1e6, verdict, target)
	}
	return nil
}

func rateList(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strconv.FormatFloat(r, 'f', 1, 64)
	}
	return strings.Join(parts, " ")
}

func (s *server) start() error {
	dir, err := os.MkdirTemp("", "ingest-e2e")
	if err != nil {
		return err
	}
	s.dir = dir
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	log, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return err
	}
	s.cmd = exec.Command(s.bin, "--addr", addr, "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn")
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.base = "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(s.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("no answer on %s/healthz (log in %s)", s.base, dir)
}

func (s *server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(os.Interrupt)
		_ = s.cmd.Wait()
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// upload streams the file to the server, times the request to its answer,
// and deletes the dataset again so that the disk does not fill.
func (s *server) upload(path string, size int64, query string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	req, err := http.NewRequest(http.MethodPost, s.base+"/v1/datasets?"+query, bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return 0, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "text/csv")
	cpu0, _ := cpuSeconds(s.cmd.Process.Pid)
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	secs := time.Since(t0).Seconds()
	if cpu1, err := cpuSeconds(s.cmd.Process.Pid); err == nil {
		s.cpu = append(s.cpu, cpu1-cpu0)
	}
	if resp.StatusCode != http.StatusCreated {
		return 0, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var meta struct {
		ID          string   `json:"id"`
		Rows        int      `json:"rows"`
		Features    int      `json:"features"`
		TargetNames []string `json:"target_names"`
	}
	if err := json.Unmarshal(b, &meta); err != nil || meta.ID == "" {
		return 0, fmt.Errorf("answer without an id: %s", b)
	}
	s.rows, s.cols = meta.Rows, meta.Features+len(meta.TargetNames)
	if hwm, err := vmHWM(s.cmd.Process.Pid); err == nil {
		s.peak = max(s.peak, hwm)
	}
	del, err := http.NewRequest(http.MethodDelete, s.base+"/v1/datasets/"+meta.ID, nil)
	if err != nil {
		return 0, err
	}
	if resp, err := http.DefaultClient.Do(del); err == nil {
		resp.Body.Close()
	}
	return secs, nil
}

// cpuSeconds is the CPU time, user and system, a process has used: fields
// 14 and 15 of /proc/<pid>/stat, in clock ticks of 1/100 s (Linux's
// USER_HZ on every architecture Go runs on).
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad /proc/%d/stat: %q", pid, b)
	}
	return (utime + stime) / 100, nil
}

// vmHWM is a process's peak resident size, in bytes.
func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
