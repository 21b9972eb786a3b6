package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/getkin/kin-openapi/openapi3"

	apispec "github.com/backpropd/backpropd/api"
)

// docSection returns the text of doc between the markers
// "<!-- section: name -->" and "<!-- end: name -->".
func docSection(t *testing.T, file, name string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "<!-- section: "+name+" -->")
	end := strings.Index(doc, "<!-- end: "+name+" -->")
	if start < 0 || end < start {
		t.Fatalf("%s has no %s section", file, name)
	}
	return doc[start:end]
}

// defaultsRow is one row of the README's job-defaults table.
type defaultsRow struct {
	setting, field string
	want           any // the first `…` of the default column, as JSON
}

var backticked = regexp.MustCompile("`([^`]*)`")

func parseDefaultsTable(t *testing.T, section string) []defaultsRow {
	t.Helper()
	var rows []defaultsRow
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 3 {
			t.Fatalf("job-defaults row %q: %d cells, want 3", line, len(cells))
		}
		if cells[0] == "setting" {
			continue // the header
		}
		field := backticked.FindStringSubmatch(cells[1])
		value := backticked.FindStringSubmatch(cells[2])
		if field == nil || value == nil {
			t.Fatalf("job-defaults row %q: want a `field` and a `default`", line)
		}
		var want any
		if err := json.Unmarshal([]byte(value[1]), &want); err != nil {
			t.Fatalf("job-defaults row %q: the default %s is not JSON: %v", line, value[1], err)
		}
		rows = append(rows, defaultsRow{setting: cells[0], field: field[1], want: want})
	}
	return rows
}

// jsonAt follows a dotted path through decoded JSON; a missing key is nil,
// as the JSON null the table writes for an absent option.
func jsonAt(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// TestJobDefaultsTable holds the README's job-defaults table to what the
// server resolves: it submits a job that gives only model_name and
// dataset_id, and one that also holds out validation data, and compares
// each row with the spec the server echoes. Changing a default in the
// engine or the job manager without the table fails here.
func TestJobDefaultsTable(t *testing.T) {
	rows := parseDefaultsTable(t, docSection(t, "../../README.md", "job-defaults"))
	// The settings the front page promises.
	for _, field := range []string{"training.epochs", "network.hidden", "training.optimizer.name",
		"training.optimizer.learning_rate", "training.batch_size", "validation", "training.early_stopping"} {
		found := false
		for _, r := range rows {
			found = found || r.field == field
		}
		if !found {
			t.Errorf("the job-defaults table has no row for %s", field)
		}
	}

	m, base, _ := startServer(t, t.TempDir())
	defer m.Close()
	c := client{t, base}
	csv, err := os.ReadFile("../../examples/iris.csv")
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := c.do(http.MethodPost, "/v1/datasets?name=iris&target=species", "text/csv", csv)
	if status != http.StatusCreated {
		t.Fatalf("upload: %d %s", status, body)
	}
	var ds struct{ ID string }
	if err := json.Unmarshal(body, &ds); err != nil {
		t.Fatal(err)
	}
	spec := func(req map[string]any) any {
		var job struct{ Spec any }
		c.json(http.MethodPost, "/v1/jobs", req, http.StatusAccepted, &job)
		return job.Spec
	}
	plain := spec(map[string]any{"model_name": "defaults", "dataset_id": ds.ID})
	withVal := spec(map[string]any{"model_name": "defaults", "dataset_id": ds.ID, "validation": map[string]any{"fraction": 0.2}})

	for _, r := range rows {
		got := jsonAt(plain, r.field)
		if strings.Contains(r.setting, "with validation data") {
			got = jsonAt(withVal, r.field)
		}
		if !reflect.DeepEqual(got, r.want) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(r.want)
			t.Errorf("README job defaults, %s: the table says %s = %s, the server resolved %s", r.setting, r.field, w, g)
		}
	}
}

// mdLink matches a markdown link's target.
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// headingAnchors returns the anchors GitHub makes of a markdown file's
// headings: lower case, punctuation dropped, spaces as hyphens.
func headingAnchors(doc string) map[string]bool {
	anchors := map[string]bool{}
	fence := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
		}
		if fence || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		anchors[b.String()] = true
	}
	return anchors
}

// TestDocLinks checks every relative link of README.md, CHANGELOG.md and
// docs/*.md: the file must exist, and a #fragment into a markdown file
// must name one of its headings.
func TestDocLinks(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md", "../../CHANGELOG.md")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		// Links in code blocks are not links.
		var text strings.Builder
		fence := false
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "```") {
				fence = !fence
				continue
			}
			if !fence {
				text.WriteString(line + "\n")
			}
		}
		for _, m := range mdLink.FindAllStringSubmatch(text.String(), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if err := checkLink(file, target); err != nil {
				t.Errorf("%s: link %s: %v", strings.TrimPrefix(file, "../../"), target, err)
			}
		}
	}
}

func checkLink(from, target string) error {
	path, frag, _ := strings.Cut(target, "#")
	dest := from
	if path != "" {
		dest = filepath.Join(filepath.Dir(from), path)
		if _, err := os.Stat(dest); err != nil {
			return fmt.Errorf("no such file %s", strings.TrimPrefix(dest, "../../"))
		}
	}
	if frag == "" || !strings.HasSuffix(dest, ".md") {
		return nil
	}
	b, err := os.ReadFile(dest)
	if err != nil {
		return err
	}
	if !headingAnchors(string(b))[frag] {
		return fmt.Errorf("%s has no heading #%s", strings.TrimPrefix(dest, "../../"), frag)
	}
	return nil
}

// routeCell matches one route of the route table in docs/api.md: a method
// and a path, in backticks.
var routeCell = regexp.MustCompile("`(GET|HEAD|POST|PUT|PATCH|DELETE) (/[^` ]*)`")

// docRoutes returns the routes the first column of docs/api.md's route
// table names, as "METHOD /path".
func docRoutes(t *testing.T, section string) map[string]bool {
	t.Helper()
	routes := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " | ")
		for _, m := range routeCell.FindAllStringSubmatch(first, -1) {
			routes[m[1]+" "+m[2]] = true
		}
	}
	return routes
}

// TestAPIDocListsEveryRoute holds the route table of docs/api.md to
// api/openapi.yaml, which internal/api's tests hold to the router: every
// operation of the spec must be in the table, written out as `METHOD /path`,
// and the table must name no route the spec lacks.
func TestAPIDocListsEveryRoute(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(apispec.OpenAPI)
	if err != nil {
		t.Fatalf("load api/openapi.yaml: %v", err)
	}
	spec := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			spec[method+" "+path] = true
		}
	}
	if len(spec) < 30 {
		t.Fatalf("api/openapi.yaml has %d operations; the loader read too few", len(spec))
	}
	documented := docRoutes(t, docSection(t, "../../docs/api.md", "routes"))
	for _, r := range slices.Sorted(maps.Keys(spec)) {
		if !documented[r] {
			t.Errorf("docs/api.md's route table lacks `%s`, which api/openapi.yaml has", r)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(documented)) {
		if !spec[r] {
			t.Errorf("docs/api.md's route table names `%s`, which api/openapi.yaml lacks", r)
		}
	}
}

func TestDocRoutes(t *testing.T) {
	section := "| route | |\n|---|---|\n" +
		"| `GET /healthz`, `HEAD /healthz` | 200 `{\"status\":\"ok\"}` |\n" +
		"| `GET /v1/jobs` | see `POST /v1/jobs` |\n" +
		"not a row `DELETE /v1/jobs`\n"
	got := docRoutes(t, section)
	want := map[string]bool{"GET /healthz": true, "HEAD /healthz": true, "GET /v1/jobs": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("docRoutes = %v, want %v (only the first column of table rows counts)", got, want)
	}
}
