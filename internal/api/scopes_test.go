package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// scopeTokens is one token per scope, for the tests below.
var scopeTokens = map[Scope]string{
	ScopeAdmin:   "tok-admin-3f9a",
	ScopeTrain:   "tok-train-81c2",
	ScopePredict: "tok-predict-5d07",
	ScopeRead:    "tok-read-e46b",
}

func scopedConfig() Config {
	var c Config
	for _, sc := range Scopes {
		c.Tokens = append(c.Tokens, Token{Value: scopeTokens[sc], Scope: sc})
	}
	return c
}

// specScopes returns an operation's x-backpropd-scopes, and whether it has
// the extension.
func specScopes(tb testing.TB, op *openapi3.Operation) ([]Scope, bool) {
	tb.Helper()
	v, ok := op.Extensions["x-backpropd-scopes"]
	if !ok {
		return nil, false
	}
	list, ok := v.([]any)
	if !ok {
		tb.Fatalf("%s: x-backpropd-scopes is %T, want a list", op.OperationID, v)
	}
	var out []Scope
	for _, e := range list {
		s, _ := e.(string)
		sc, err := ParseScope(s)
		if err != nil {
			tb.Fatalf("%s: x-backpropd-scopes: %v", op.OperationID, err)
		}
		out = append(out, sc)
	}
	return out, true
}

// TestSpecScopesMatchRouteTable: the route table (routes in server.go),
// which the router is built from, and api/openapi.yaml say the same: the
// same operations; an open route is `security: []` without scopes; every
// other operation lists exactly the table's scopes in x-backpropd-scopes,
// and declares a 403 exactly when some scope is not allowed.
func TestSpecScopesMatchRouteTable(t *testing.T) {
	doc, _ := loadSpec(t)
	srv := New(Options{})
	inTable := map[string]bool{}
	for _, rt := range srv.routes() {
		key := rt.method + " " + rt.path
		inTable[key] = true
		item := doc.Paths.Value(rt.path)
		if item == nil || item.GetOperation(rt.method) == nil {
			t.Errorf("%s: in the route table, not in api/openapi.yaml", key)
			continue
		}
		op := item.GetOperation(rt.method)
		got, has := specScopes(t, op)
		if rt.scopes == nil {
			if has {
				t.Errorf("%s: open in the route table, but the spec lists scopes %v", key, got)
			}
			if op.Security == nil || len(*op.Security) != 0 {
				t.Errorf("%s: open in the route table, but the spec does not say security: []", key)
			}
			continue
		}
		if !slices.Equal(got, rt.scopes) {
			t.Errorf("%s: the spec lists scopes %v, the route table %v", key, got, rt.scopes)
		}
		if op.Security != nil && len(*op.Security) == 0 {
			t.Errorf("%s: needs a token, but the spec says security: []", key)
		}
		declares403 := op.Responses.Value("403") != nil
		if want := len(rt.scopes) < len(Scopes); declares403 != want {
			t.Errorf("%s: declares 403 %v, want %v (scopes %v)", key, declares403, want, rt.scopes)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !inTable[method+" "+path] {
				t.Errorf("%s %s: in api/openapi.yaml, not in the route table", method, path)
			}
		}
	}
	if len(inTable) < 30 {
		t.Fatalf("the route table has %d routes; the walk is broken", len(inTable))
	}
}

// TestEveryOperationWithEveryScope reads api/openapi.yaml and calls each
// operation through the real router with a token of each scope: a scope
// the operation's x-backpropd-scopes lists gets past the scope check (any
// answer but 403 and 401), any other gets 403 in its surface's format,
// naming the scopes needed, with WWW-Authenticate: Bearer
// error="insufficient_scope".
func TestEveryOperationWithEveryScope(t *testing.T) {
	doc, _ := loadSpec(t)
	env := newTestEnv(t, scopedConfig())
	ds := uploadIris(t, env, "Authorization", "Bearer "+scopeTokens[ScopeAdmin])
	fill := strings.NewReplacer("{id}", ds.ID, "{name}", "iris", "{version}", "1")
	n := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			allowed, has := specScopes(t, op)
			if !has {
				continue
			}
			// Admin last: what it is allowed to delete stays for the others.
			for _, sc := range []Scope{ScopeRead, ScopePredict, ScopeTrain, ScopeAdmin} {
				n++
				t.Run(fmt.Sprintf("%s %s as %s", method, path, sc), func(t *testing.T) {
					res := doRaw(t, env.h, method, fill.Replace(path), "", nil, "Authorization", "Bearer "+scopeTokens[sc])
					if slices.Contains(allowed, sc) {
						if res.Status == http.StatusForbidden || res.Status == http.StatusUnauthorized {
							t.Fatalf("allowed scope got %d: %s", res.Status, res.Body)
						}
						return
					}
					if res.Status != http.StatusForbidden {
						t.Fatalf("status %d, want 403 (the spec allows only %v): %s", res.Status, allowed, res.Body)
					}
					detail := res.SurfaceError(t, path)
					for _, need := range allowed {
						if !strings.Contains(detail, string(need)) {
							t.Errorf("detail %q does not name the scope %s", detail, need)
						}
					}
					if !strings.Contains(detail, string(sc)) {
						t.Errorf("detail %q does not name the token's scope %s", detail, sc)
					}
					if h := res.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_scope"`) {
						t.Errorf("WWW-Authenticate %q, want error=\"insufficient_scope\"", h)
					}
				})
			}
		}
	}
	if n < 4*30 {
		t.Fatalf("made %d calls; the spec walk is broken", n)
	}
}

// TestPredictScopeCannotDeleteModels: a predict-only token predicts and
// reads metadata, but its deletes and imports are refused and change
// nothing: the model and its version are still there.
func TestPredictScopeCannotDeleteModels(t *testing.T) {
	e := newModelEnv(t)
	e.srv = New(Options{Config: scopedConfig(), Store: e.store, Jobs: e.jobs, Observer: e.obs})
	e.h = e.srv.Handler()
	e.putModel("iris", mustTrain(t, "classifier"))
	predict := []string{"Authorization", "Bearer " + scopeTokens[ScopePredict]}
	for _, tc := range []struct {
		method, path, ct, body string
		want                   int
	}{
		{http.MethodDelete, "/v1/models/iris", "", "", http.StatusForbidden},
		{http.MethodDelete, "/v1/models/iris/versions/1", "", "", http.StatusForbidden},
		{http.MethodPost, "/v1/models/iris/versions", "application/octet-stream", "x", http.StatusForbidden},
		{http.MethodGet, "/v1/models/iris/versions/1/file", "", "", http.StatusForbidden},
		{http.MethodGet, "/v1/models/iris", "", "", http.StatusOK},
		// Iris measurements of a setosa, from examples/iris.csv.
		{http.MethodPost, "/v1/models/iris/predict", "application/json", `{"inputs":[[5.1,3.5,1.4,0.2]]}`, http.StatusOK},
	} {
		var body []byte
		if tc.body != "" {
			body = []byte(tc.body)
		}
		res := doRaw(t, e.h, tc.method, tc.path, tc.ct, body, predict...)
		if res.Status != tc.want {
			t.Errorf("%s %s as predict: %d, want %d: %s", tc.method, tc.path, res.Status, tc.want, res.Body)
		}
	}
	if _, err := e.store.ModelMeta(context.Background(), "iris", 1); err != nil {
		t.Fatalf("iris version 1 after the refused deletes: %v", err)
	}
	versions, err := e.store.ModelVersions(context.Background(), "iris")
	if err != nil || len(versions.Versions) != 1 {
		t.Fatalf("iris versions after the refused import: %+v, %v; want the one version", versions, err)
	}
	admin := []string{"Authorization", "Bearer " + scopeTokens[ScopeAdmin]}
	if res := doRaw(t, e.h, http.MethodDelete, "/v1/models/iris", "", nil, admin...); res.Status != http.StatusNoContent {
		t.Fatalf("DELETE as admin: %d, want 204: %s", res.Status, res.Body)
	}
}

// TestAuthTokenIsAdmin: Config.AuthToken (--auth-token) is a token of
// scope admin, beside the scoped tokens.
func TestAuthTokenIsAdmin(t *testing.T) {
	cfg := scopedConfig()
	cfg.AuthToken = "the-single-token-77aa"
	e := newModelEnv(t)
	h := New(Options{Config: cfg, Store: e.store, Jobs: e.jobs}).Handler()
	e.putModel("iris", mustTrain(t, "classifier"))
	for _, tok := range []string{cfg.AuthToken, scopeTokens[ScopeAdmin]} {
		res := doRaw(t, h, http.MethodDelete, "/v1/models/iris/versions/1", "", nil, "Authorization", "Bearer "+tok)
		if res.Status == http.StatusForbidden || res.Status == http.StatusUnauthorized {
			t.Errorf("DELETE with %q: %d, want past authorization", tok, res.Status)
		}
		e.putModel("iris", mustTrain(t, "classifier"))
	}
}

// TestUnauthenticatedConnectionIsClosed sends a request without a valid
// token and with a body that would take 100,000 seconds at 1 byte/s, over
// a real connection to a server with the production read timeout (10
// minutes, cmd/server): the server answers 401 with Connection: close and
// closes the socket within a second, without waiting for the body. So do
// the router's own 404 and 405 to a request with a body. With a
// valid token the same request is still waiting for its body after that
// second, which shows the measurement can fail.
func TestUnauthenticatedConnectionIsClosed(t *testing.T) {
	env := newTestEnv(t, scopedConfig())
	hs := httptest.NewUnstartedServer(env.h)
	hs.Config.ReadTimeout = 10 * time.Minute
	hs.Start()
	defer hs.Close()
	const promptly = time.Second
	tests := []struct {
		name, method, path, auth string
		want                     int // 0: no answer, the server waits for the body
	}{
		{"no token, /v1", "POST", "/v1/datasets?name=slow", "", http.StatusUnauthorized},
		{"wrong token, /v1", "POST", "/v1/datasets?name=slow", "Bearer nope", http.StatusUnauthorized},
		{"no token, /v2", "POST", "/v2/models/iris/infer", "", http.StatusUnauthorized},
		{"no token, unknown /v1 route", "POST", "/v1/nothing-here", "", http.StatusUnauthorized},
		{"no token, /openapi.yaml", "GET", "/openapi.yaml", "", http.StatusUnauthorized},
		// Routes that need no token: nothing reads a body the router refuses.
		{"unknown route", "POST", "/nothing-here", "", http.StatusNotFound},
		{"wrong method on an open route", "POST", "/healthz", "", http.StatusMethodNotAllowed},
		{"valid token", "POST", "/v1/datasets?name=slow", "Bearer " + scopeTokens[ScopeTrain], 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", hs.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			hdr := tc.method + " " + tc.path + " HTTP/1.1\r\nHost: test\r\nContent-Type: text/csv\r\nContent-Length: 100000\r\n"
			if tc.auth != "" {
				hdr += "Authorization: " + tc.auth + "\r\n"
			}
			if _, err := c.Write([]byte(hdr + "\r\na")); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			go func() { // the slow body
				tick := time.NewTicker(time.Second)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						if _, err := c.Write([]byte("b")); err != nil {
							return
						}
					}
				}
			}()
			_ = c.SetReadDeadline(start.Add(promptly))
			br := bufio.NewReader(c)
			res, err := http.ReadResponse(br, nil)
			if tc.want == 0 {
				if err == nil {
					t.Fatalf("with a valid token: answered %d before the body was sent", res.StatusCode)
				}
				if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
					t.Fatalf("with a valid token: %v, want the read to time out while the server waits for the body", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("no answer within %v: %v", promptly, err)
			}
			// res.Close is the answer's Connection: close.
			if res.StatusCode != tc.want || !res.Close {
				t.Fatalf("%d, Connection: close %v; want %d and close", res.StatusCode, res.Close, tc.want)
			}
			if _, err := io.Copy(io.Discard, res.Body); err != nil {
				t.Fatalf("read the %d: %v", res.StatusCode, err)
			}
			if _, err := br.ReadByte(); err == nil || isTimeout(err) {
				t.Fatalf("after the answer the socket was still open %v after the request (read: %v)", time.Since(start), err)
			}
			if d := time.Since(start); d > promptly {
				t.Fatalf("closed after %v, want within %v", d, promptly)
			}
		})
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestParseTokens holds the tokens file format: "<scope> <token>" lines,
// # comments and blank lines; each refusal names the line.
func TestParseTokens(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    []Token
		wantErr string
	}{
		{name: "scopes, comments and blank lines",
			data: "# serving\npredict  tok-p\n\n  read\ttok-r  \r\nadmin tok-a\ntrain tok-t\n",
			want: []Token{{"tok-p", ScopePredict}, {"tok-r", ScopeRead}, {"tok-a", ScopeAdmin}, {"tok-t", ScopeTrain}}},
		{name: "no final newline", data: "admin tok-a", want: []Token{{"tok-a", ScopeAdmin}}},
		{name: "unknown scope", data: "admin a\nwrite tok-w\n", wantErr: `tokens:2: unknown scope "write"`},
		{name: "scope case", data: "Admin tok-a\n", wantErr: `tokens:1: unknown scope "Admin"`},
		{name: "duplicate token", data: "admin tok-x\n#\npredict tok-x\n", wantErr: "tokens:3: duplicate token, the same as on line 1"},
		{name: "empty token", data: "read a\npredict\n", wantErr: "tokens:2: want \"<scope> <token>\""},
		{name: "token with whitespace", data: "predict tok-1 en\n", wantErr: "tokens:1: want \"<scope> <token>\", got 3 words: the token must not contain whitespace"},
		{name: "control character", data: "read tok\x7f\n", wantErr: "tokens:1: the token holds a control character"},
		{name: "only comments", data: "# none yet\n\n", wantErr: "tokens: no token"},
		{name: "empty", data: "", wantErr: "tokens: no token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTokens("tokens", []byte(tc.data))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseTokens = %v, %v; want an error with %q", got, err, tc.wantErr)
				}
				for _, w := range strings.Fields(tc.data) {
					if strings.HasPrefix(w, "tok-") && strings.Contains(err.Error(), w) {
						t.Errorf("the error %q holds the token %q", err, w)
					}
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("ParseTokens = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
