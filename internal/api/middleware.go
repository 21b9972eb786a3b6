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
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	scopeKey            // the Scope of the request's token
)

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
//
// The record goes to the logger's handler directly, as slog.Logger.LogAttrs
// would send it but without the caller's program counter: the handlers
// cmd/server builds do not print the source, and finding it cost every
// request a stack walk. The end time is the record's time and the end of the
// duration, read once.
func (s *Server) accessLog(next http.Handler) http.Handler {
	h := s.logger.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		defer func() {
			ctx := r.Context()
			if !h.Enabled(ctx, slog.LevelInfo) {
				return
			}
			route := ""
			if rc := chi.RouteContext(ctx); rc != nil {
				route = rc.RoutePattern()
			}
			if route == "" {
				route = "unmatched"
			}
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			end := time.Now()
			rec := slog.NewRecord(end, slog.LevelInfo, "http request", 0)
			rec.AddAttrs(
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Int("bytes", ww.BytesWritten()),
				slog.Float64("duration_ms", float64(end.Sub(start).Microseconds())/1000),
				slog.String("request_id", RequestID(ctx)),
			)
			_ = h.Handle(ctx, rec)
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

// redact removes the tokens from text bound for the log: whatever a bug
// puts into a panic or an error, no token reaches a log line.
func (s *Server) redact(text string) string {
	for _, t := range s.tokens {
		text = strings.ReplaceAll(text, t.Value, "[REDACTED]")
	}
	return text
}

// tokenDigest is a configured token's SHA-256 digest and its scope.
type tokenDigest struct {
	sum   [sha256.Size]byte
	scope Scope
}

// scopeOf returns the scope of the token the request carries in
// "Authorization: Bearer <token>". Tokens are compared through their
// SHA-256 digests with subtle.ConstantTimeCompare, and every configured
// token is compared, so neither a token's bytes, its length nor which
// token matched leak through timing.
func scopeOf(r *http.Request, tokens []tokenDigest) (Scope, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := -1
	for i := range tokens {
		if subtle.ConstantTimeCompare(got[:], tokens[i].sum[:]) == 1 {
			match = i
		}
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || match < 0 {
		return "", false
	}
	return tokens[match].scope, true
}

// requireToken answers 401 with WWW-Authenticate: Bearer unless the request
// carries one of the configured tokens (scopeOf), and puts the token's
// scope into the request context for the routes' scope checks (allow).
// With no token configured, it passes everything. The 401 goes through the
// one error path: a problem on /v1, the protocol's error object on /v2.
//
// A request without a valid token gets its 401 and its connection closed,
// and its body is never read: net/http would otherwise read up to 256 KB
// of an unread body after the handler, to reuse the connection, and a
// client trickling a body without a token would hold the connection until
// the server's read timeout (closeUnread, endRead).
func (s *Server) requireToken(next http.Handler) http.Handler {
	if len(s.tokens) == 0 {
		return next
	}
	digests := make([]tokenDigest, len(s.tokens))
	for i, t := range s.tokens {
		digests[i] = tokenDigest{sum: sha256.Sum256([]byte(t.Value)), scope: t.Scope}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scope, ok := scopeOf(r, digests)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="backpropd"`)
			detail := "missing bearer token: send Authorization: Bearer <token>"
			if r.Header.Get("Authorization") != "" {
				detail = "invalid bearer token"
			}
			closeUnread(w)
			s.writeError(w, r, &Error{Status: http.StatusUnauthorized, Detail: detail})
			endRead(w)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), scopeKey, scope)))
	})
}

// closeUnread marks the answer as the connection's last: the request body
// will not be read, so the connection cannot carry another request. Call
// endRead once the answer is written.
func closeUnread(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
}

// endRead ends reading from the connection: after the handler, net/http
// would otherwise read up to 256 KB of the unread body before closing, at
// whatever pace the client sends it. The answer is still sent, with its
// Content-Length, when the handler returns.
func endRead(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}

// allow wraps a route's handler with its scope check: a token whose scope
// is not in scopes gets 403 naming the scopes the route needs. With no
// token configured there are no scopes and nothing to check.
func (s *Server) allow(rt route, h http.Handler) http.Handler {
	if len(s.tokens) == 0 || rt.scopes == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scope, _ := r.Context().Value(scopeKey).(Scope)
		if !slices.Contains(rt.scopes, scope) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="backpropd", error="insufficient_scope", scope="%s"`, joinScopes(rt.scopes, " ")))
			s.writeError(w, r, forbidden(fmt.Sprintf("the token's scope %q does not allow %s %s: it needs %s",
				scope, rt.method, rt.path, needs(rt.scopes))))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// needs says which scopes a route needs, for a 403's detail.
func needs(scopes []Scope) string {
	if len(scopes) == 1 {
		return "scope " + string(scopes[0])
	}
	return "one of the scopes " + joinScopes(scopes, ", ")
}

func joinScopes(scopes []Scope, sep string) string {
	s := make([]string, len(scopes))
	for i, sc := range scopes {
		s[i] = string(sc)
	}
	return strings.Join(s, sep)
}

// limiter is a counting semaphore that refuses instead of waiting: a
// request beyond the limit is answered at once, so that a flood of
// requests costs the server an answer each, not a goroutine and buffers
// held while it waits.
type limiter struct {
	slots chan struct{}
}

func newLimiter(n int) *limiter { return &limiter{slots: make(chan struct{}, n)} }

// tryAcquire takes a slot, or reports false when all are taken.
func (l *limiter) tryAcquire() bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// release gives back a slot tryAcquire took.
func (l *limiter) release() { <-l.slots }

// inUse is how many slots are taken.
func (l *limiter) inUse() int { return len(l.slots) }

// unlimited reports the paths that limitRequests lets through: the health
// routes and /metrics, which probes and scrapers must reach however busy
// the server is, and event streams, which last as long as a job trains
// and count against Config.MaxEventStreams instead (jobEvents).
func unlimited(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready":
		return true
	}
	return isEventStream(path)
}

// isEventStream reports a path of the form /v1/jobs/{id}/events.
func isEventStream(path string) bool {
	id, ok := strings.CutPrefix(path, "/v1/jobs/")
	if !ok {
		return false
	}
	id, ok = strings.CutSuffix(id, "/events")
	return ok && id != "" && !strings.Contains(id, "/")
}

// limitRequests answers 503 with Retry-After, in the format of the
// request's surface, to a request that finds Config.MaxConcurrentRequests
// requests already in flight (paths that unlimited names do not count).
// The refused request's body is never read, and its connection is closed.
func (s *Server) limitRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if unlimited(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		if !s.requests.tryAcquire() {
			closeUnread(w)
			s.writeError(w, r, &Error{Status: http.StatusServiceUnavailable, RetryAfter: 1,
				Detail: fmt.Sprintf("the server is serving its maximum of %d requests at once (--max-concurrent-requests); retry later",
					s.cfg.MaxConcurrentRequests)})
			endRead(w)
			return
		}
		defer s.requests.release()
		next.ServeHTTP(w, r)
	})
}

// acquireStream takes one of the Config.MaxEventStreams event stream
// slots, or returns the 503 for a stream beyond them.
func (s *Server) acquireStream() (release func(), err error) {
	if !s.streams.tryAcquire() {
		return nil, &Error{Status: http.StatusServiceUnavailable, RetryAfter: 5,
			Detail: fmt.Sprintf("the server has its maximum of %d event streams open (--max-event-streams); retry later, or follow the job with GET /v1/jobs/{id}",
				s.cfg.MaxEventStreams)}
	}
	return s.streams.release, nil
}
