// Command baseline is the bare net/http server that bench/predict_load
// compares backpropd's predict route with. POST /predict decodes
// {"inputs": [[...]]} with encoding/json and encodes a response shaped like
// backpropd's answer for a classifier with -classes classes (model name and
// version, one label per row, probabilities and classes), so it does the
// HTTP and JSON work of a prediction and nothing else: no routing library,
// no middleware, no model.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

type request struct {
	Inputs [][]float64 `json:"inputs"`
}

type response struct {
	ModelName     string      `json:"model_name"`
	ModelVersion  int         `json:"model_version"`
	Predictions   []string    `json:"predictions"`
	Probabilities [][]float64 `json:"probabilities"`
	Classes       []string    `json:"classes"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	classes := flag.Int("classes", 3, "classes in the response")
	flag.Parse()

	names := make([]string, *classes)
	for i := range names {
		names[i] = "class_" + strconv.Itoa(i)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /predict", func(w http.ResponseWriter, r *http.Request) {
		var req request
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20))
		if err := dec.Decode(&req); err != nil || len(req.Inputs) == 0 {
			http.Error(w, fmt.Sprintf(`{"error":%q}`, fmt.Sprint("bad body: ", err)), http.StatusBadRequest)
			return
		}
		resp := response{ModelName: "baseline", ModelVersion: 1, Classes: names}
		for range req.Inputs {
			p := make([]float64, len(names))
			for j := range p {
				p[j] = 1 / float64(len(p))
			}
			resp.Probabilities = append(resp.Probabilities, p)
			resp.Predictions = append(resp.Predictions, names[0])
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	})
	srv := &http.Server{
		Addr:              *addr,
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
