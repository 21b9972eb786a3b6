package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

type ctxKey int

const requestIDKey ctxKey = iota

// RequestID returns the request id that the request id middleware put into
// ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// validRequestID accepts an incoming X-Request-Id only when it is short and
// made of characters that are safe to log and echo.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestIDMiddleware takes a sane incoming X-Request-Id or makes one, puts
// it into the request context and echoes it in the response, which also
// gets X-Content-Type-Options: nosniff.
func requestIDMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		// No response of this API is meant to be sniffed into HTML.
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// accessLog writes one log line per request: method, route pattern (never
// the raw path, which may hold ids and junk), status, bytes, duration in
// milliseconds and request id.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		defer func() {
			route := ""
			if rc := chi.RouteContext(r.Context()); rc != nil {
				route = rc.RoutePattern()
			}
			if route == "" {
				route = "unmatched"
			}
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			s.logger.LogAttrs(r.Context(), slog.LevelInfo, "http request",
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Int("bytes", ww.BytesWritten()),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.String("request_id", RequestID(r.Context())),
			)
		}()
		next.ServeHTTP(ww, r)
	})
}

// recoverer turns a handler panic into a logged 500 instead of a dropped
// connection. A panic is a bug; the client sees only a generic error, in
// its surface's format.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger.ErrorContext(r.Context(), "handler panic",
					"request_id", RequestID(r.Context()), "method", r.Method,
					"panic", s.redact(fmt.Sprint(v)), "stack", s.redact(string(debug.Stack())))
				encoderFor(r)(w, r, http.StatusInternalServerError, "internal server error", nil)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// redact removes the token from text bound for the log: whatever a bug
// puts into a panic or an error, the token never reaches a log line.
func (s *Server) redact(text string) string {
	if s.cfg.AuthToken == "" {
		return text
	}
	return strings.ReplaceAll(text, s.cfg.AuthToken, "[REDACTED]")
}

// requireToken answers 401 with WWW-Authenticate: Bearer unless the request
// carries "Authorization: Bearer <token>". Tokens are compared through
// their SHA-256 digests with subtle.ConstantTimeCompare, so neither the
// token's bytes nor its length leak through timing. With no token
// configured, it passes everything. The 401 goes through the one error
// path: a problem on /v1, the protocol's error object on /v2.
func (s *Server) requireToken(next http.Handler) http.Handler {
	if s.cfg.AuthToken == "" {
		return next
	}
	want := sha256.Sum256([]byte(s.cfg.AuthToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="backpropd"`)
			detail := "missing bearer token: send Authorization: Bearer <token>"
			if r.Header.Get("Authorization") != "" {
				detail = "invalid bearer token"
			}
			s.writeError(w, r, &Error{Status: http.StatusUnauthorized, Detail: detail})
			return
		}
		next.ServeHTTP(w, r)
	})
}
