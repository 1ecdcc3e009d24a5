// go-server is a small HTTP service that shuts down the way most production Go services do:
// on SIGTERM it calls http.Server.Shutdown, which closes the listener at once, closes idle
// keep-alive connections and waits (at most DRAIN_SECONDS) for in-flight requests.
//
// That is correct on its own, and still drops requests behind an AWS ALB unless the pod also
// has a preStop sleep: see README.md (aws-load-balancer-controller #1719, #1064).
//
// GET / (any path) answers {"pod", "version", "path"}; ?delay=2s makes it slow. /healthz is the
// ALB health check; /ready (the readinessProbe) turns 503 once SIGTERM arrived.
//
// Environment: PORT (8080), POD_NAME, VERSION, DRAIN_SECONDS (5), KEEPALIVE_SECONDS (75).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	if err := run(log); err != nil {
		log.Error("exit", "error", err.Error())
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	port := getenv("PORT", "8080")
	pod, version := os.Getenv("POD_NAME"), os.Getenv("VERSION")
	drain, err := seconds("DRAIN_SECONDS", 5)
	if err != nil {
		return err
	}
	keepAlive, err := seconds("KEEPALIVE_SECONDS", 75)
	if err != nil {
		return err
	}

	var terminating atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if terminating.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "terminating"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		// ?delay=2s: a slow request, to watch the drain finish it
		if d, err := time.ParseDuration(r.URL.Query().Get("delay")); err == nil {
			log.Info("slow request", "path", r.URL.Path, "delay", d.String())
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		writeJSON(w, http.StatusOK, hello{Pod: pod, Version: version, Path: r.URL.Path})
	})

	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// Longer than the ALB's idle timeout (60 s), as AWS recommends: otherwise the app may
		// close a keep-alive connection just as the ALB sends a request on it (a 502).
		IdleTimeout: keepAlive,
	}
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return err
	}
	log.Info("start", "addr", ln.Addr().String(), "pod", pod, "version", version,
		"drain_seconds", drain.Seconds(), "keepalive_seconds", keepAlive.Seconds())

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	select {
	case err := <-serveErr:
		return err
	case s := <-sig:
		terminating.Store(true)
		log.Info("sigterm", "signal", s.String())
	}

	// Shutdown: stop accepting now, close idle connections, wait for in-flight requests.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	err = srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		srv.Close() // drain timeout: cut the requests still running
	}
	log.Info("shutdown done", "drained", err == nil, "elapsed_seconds", time.Since(start).Seconds())
	return err
}

// hello is the answer of every other path; the testbed's load generator reads "pod".
type hello struct {
	Pod     string `json:"pod"`
	Version string `json:"version"`
	Path    string `json:"path"`
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func seconds(key string, def float64) (time.Duration, error) {
	v, err := strconv.ParseFloat(getenv(key, strconv.FormatFloat(def, 'f', -1, 64)), 64)
	if err != nil || v < 0 {
		return 0, errors.New(key + ": want a number of seconds, got " + strconv.Quote(os.Getenv(key)))
	}
	return time.Duration(v * float64(time.Second)), nil
}
