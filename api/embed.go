// Package api embeds backpropd's OpenAPI contract, api/openapi.yaml, so the
// server can serve it at /openapi.yaml and tests can hold the handlers to
// it.
package api

import _ "embed"

// OpenAPI is the text of api/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
