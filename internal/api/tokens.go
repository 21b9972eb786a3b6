package api

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
)

// Scope is what a token may do. Every route lists the scopes allowed on it
// (routes in server.go); api/openapi.yaml states the same list on each
// operation as x-backpropd-scopes.
type Scope string

// The scopes, from the most to the least privileged.
const (
	// ScopeAdmin may do everything.
	ScopeAdmin Scope = "admin"
	// ScopeTrain may upload, read and delete datasets, queue, follow and
	// end jobs, and read models (their metadata and files).
	ScopeTrain Scope = "train"
	// ScopePredict may ask for predictions and read model metadata.
	ScopePredict Scope = "predict"
	// ScopeRead may send GET (and HEAD) requests, and nothing else.
	ScopeRead Scope = "read"
)

// Scopes lists every scope.
var Scopes = []Scope{ScopeAdmin, ScopeTrain, ScopePredict, ScopeRead}

// ParseScope returns the scope named s.
func ParseScope(s string) (Scope, error) {
	for _, sc := range Scopes {
		if string(sc) == s {
			return sc, nil
		}
	}
	return "", fmt.Errorf("unknown scope %q: want admin, train, predict or read", s)
}

// Token is a bearer token the server accepts and the scope it grants.
type Token struct {
	Value string
	Scope Scope
}

// ParseTokens parses a tokens file: one "<scope> <token>" per line, the
// scope one of Scopes and the token any run of printable characters
// without whitespace; blank lines and lines starting with # are ignored.
// Errors name the line (name:line), never the token. It refuses an unknown
// scope, a line without exactly a scope and a token, a token with control
// characters, a token given twice and a file without a token.
func ParseTokens(name string, data []byte) ([]Token, error) {
	var out []Token
	seen := map[string]int{}
	for i, line := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		text := strings.TrimSpace(string(line))
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		switch {
		case len(fields) == 1:
			return nil, fmt.Errorf("%s:%d: want \"<scope> <token>\", got a scope or a token alone (the token is empty)", name, n)
		case len(fields) > 2:
			return nil, fmt.Errorf("%s:%d: want \"<scope> <token>\", got %d words: the token must not contain whitespace", name, n, len(fields))
		}
		scope, err := ParseScope(fields[0])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		tok := fields[1]
		if strings.IndexFunc(tok, unicode.IsControl) >= 0 {
			return nil, fmt.Errorf("%s:%d: the token holds a control character", name, n)
		}
		if first, dup := seen[tok]; dup {
			return nil, fmt.Errorf("%s:%d: duplicate token, the same as on line %d: each token has one scope", name, n, first)
		}
		seen[tok] = n
		out = append(out, Token{Value: tok, Scope: scope})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no token: want lines of \"<scope> <token>\"", name)
	}
	return out, nil
}
