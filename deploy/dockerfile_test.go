package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// instruction is one parsed Dockerfile instruction.
type instruction struct {
	cmd   string   // lower case: "from", "run", ...
	args  []string // arguments, JSON form or split on white space
	flags []string // --chown=..., --interval=...
	json  bool     // exec (JSON array) form
	line  int
}

// stage is the instructions from one FROM to the next.
type stage struct {
	from         instruction
	instructions []instruction
}

func (s stage) find(cmd string) []instruction {
	var out []instruction
	for _, in := range s.instructions {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func toInstruction(n *parser.Node) instruction {
	in := instruction{cmd: strings.ToLower(n.Value), flags: n.Flags, json: n.Attributes["json"], line: n.StartLine}
	for a := n.Next; a != nil; a = a.Next {
		in.args = append(in.args, a.Value)
	}
	return in
}

// parseDockerfile parses with BuildKit's own Dockerfile parser, the one
// `docker build` uses, and groups the instructions into stages.
func parseDockerfile(data []byte) (metaArgs []instruction, stages []stage, err error) {
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, nil, err
	}
	var warnings []error
	for _, w := range res.Warnings {
		warnings = append(warnings, fmt.Errorf("line %d: %s", w.Location.Start.Line, w.Short))
	}
	if err := errors.Join(warnings...); err != nil {
		return nil, nil, err
	}
	for _, n := range res.AST.Children {
		in := toInstruction(n)
		switch {
		case in.cmd == "from":
			stages = append(stages, stage{from: in})
		case len(stages) == 0:
			metaArgs = append(metaArgs, in)
		default:
			stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, in)
		}
	}
	return metaArgs, stages, nil
}

// argDefaults maps ARG names to their defaults.
func argDefaults(ins []instruction) map[string]string {
	m := map[string]string{}
	for _, in := range ins {
		if in.cmd != "arg" {
			continue
		}
		for _, a := range in.args {
			k, v, _ := strings.Cut(a, "=")
			m[k] = v
		}
	}
	return m
}

// envOf maps a stage's ENV names to values. The parser gives each
// NAME=value pair as three arguments: name, value, "=".
func envOf(s stage) map[string]string {
	m := map[string]string{}
	for _, in := range s.find("env") {
		for i := 0; i+2 < len(in.args); i += 3 {
			m[in.args[i]] = in.args[i+1]
		}
	}
	return m
}

// dockerfileProblems returns what is wrong with a Dockerfile, measured
// against what the image must be: a multi-stage build from tagged base
// images without registry hosts, the OpenBLAS build by default and the static
// one by VARIANT, and a runtime stage with a numeric non-root USER, an
// exec-form HEALTHCHECK running the binary's healthcheck subcommand, /data as
// a volume the user owns, port 8080, and no token.
func dockerfileProblems(data []byte, rootfsScript string) ([]string, error) {
	metaArgs, stages, err := parseDockerfile(data)
	if err != nil {
		return nil, err
	}
	var problems []string
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(stages) < 2 {
		problem("want a multi-stage build, have %d stage(s)", len(stages))
		return problems, nil
	}

	meta := argDefaults(metaArgs)
	for _, s := range stages {
		image := s.from.args[0]
		if v, ok := strings.CutPrefix(image, "${"); ok {
			image = meta[strings.TrimSuffix(v, "}")]
		}
		if image == "scratch" {
			continue
		}
		// [host[:port]/]path[:tag][@digest]: the tag follows the last colon
		// after the last slash; a host is a first component with a dot or a
		// port in it.
		ref, _, _ := strings.Cut(image, "@")
		name, tag := ref, ""
		if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
			name, tag = ref[:i], ref[i+1:]
		}
		if tag == "" || tag == "latest" {
			problem("line %d: FROM %s: want a tag other than latest", s.from.line, image)
		}
		if first, _, ok := strings.Cut(name, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
			problem("line %d: FROM %s names a registry host", s.from.line, image)
		}
	}

	build := stages[0]
	if v := argDefaults(build.instructions)["VARIANT"]; v != "openblas" {
		problem("ARG VARIANT default %q, want openblas", v)
	}
	var run string
	for _, r := range build.find("run") {
		run += strings.Join(r.args, " ") + "\n"
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`libopenblas-dev`),
		regexp.MustCompile(`openblas\)\s+CGO_ENABLED=1 go build [^;]*-tags openblas`),
		regexp.MustCompile(`static\)\s+CGO_ENABLED=0 go build`),
		regexp.MustCompile(`deploy/docker/rootfs\.sh /out/backpropd /rootfs`),
	} {
		if !want.MatchString(run) {
			problem("build stage: no RUN matches %s", want)
		}
	}

	final := stages[len(stages)-1]
	entry := final.find("entrypoint")
	if len(entry) != 1 || !entry[0].json || len(entry[0].args) != 1 {
		problem("want one exec-form ENTRYPOINT naming the binary, have %+v", entry)
		return problems, nil
	}
	binary := entry[0].args[0]

	var user string
	if users := final.find("user"); len(users) > 0 {
		user = users[len(users)-1].args[0]
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		problem("USER %q: want a numeric uid other than 0 (Kubernetes' runAsNonRoot verifies only numbers)", user)
	}

	hcs := final.find("healthcheck")
	switch {
	case len(hcs) != 1 || len(hcs[0].args) == 0 || hcs[0].args[0] != "CMD":
		problem("want one HEALTHCHECK CMD, have %+v", hcs)
	case !hcs[0].json:
		problem("HEALTHCHECK CMD in shell form needs /bin/sh, which the image does not have")
	case !slices.Equal(hcs[0].args[1:], []string{binary, "healthcheck"}):
		problem("HEALTHCHECK CMD %q, want %q", hcs[0].args[1:], []string{binary, "healthcheck"})
	}
	for _, hc := range hcs {
		for _, f := range hc.flags {
			name, _, _ := strings.Cut(f, "=")
			if !slices.Contains([]string{"--interval", "--timeout", "--start-period", "--start-interval", "--retries"}, name) {
				problem("HEALTHCHECK flag %s: unknown to docker", f)
			}
		}
	}

	var vols []string
	for _, v := range final.find("volume") {
		vols = append(vols, v.args...)
	}
	if !slices.Contains(vols, "/data") {
		problem("VOLUME %v: want /data", vols)
	}
	// The root comes whole from the build stage, where rootfs.sh gives /data
	// to the user; COPY --from keeps owners unless --chown overrides them.
	var rootCopied bool
	for _, c := range final.find("copy") {
		if slices.Equal(c.args, []string{"/rootfs/", "/"}) && slices.Contains(c.flags, "--from=build") {
			rootCopied = true
			for _, f := range c.flags {
				if strings.HasPrefix(f, "--chown") {
					problem("COPY %s %s: would give /data and the binary one owner; /data must be the user's, the rest root's", f, strings.Join(c.args, " "))
				}
			}
		}
	}
	if !rootCopied {
		problem("final stage: no COPY --from=build /rootfs/ /")
	}
	if user != "" && !strings.Contains(rootfsScript, "uid="+uid+"\n") {
		problem("USER %s, but deploy/docker/rootfs.sh does not give /data to uid %s", user, uid)
	}

	var ports []string
	for _, e := range final.find("expose") {
		ports = append(ports, e.args...)
	}
	if !slices.Contains(ports, "8080") && !slices.Contains(ports, "8080/tcp") {
		problem("EXPOSE %v: want 8080", ports)
	}
	env := envOf(final)
	if env["BACKPROPD_ADDR"] != ":8080" || env["BACKPROPD_DATA_DIR"] != "/data" {
		problem("ENV %v: want BACKPROPD_ADDR=:8080 and BACKPROPD_DATA_DIR=/data", env)
	}
	if _, ok := env["BACKPROPD_AUTH_TOKEN"]; ok {
		problem("the image sets BACKPROPD_AUTH_TOKEN: a token baked into an image is no secret")
	}
	return problems, nil
}

func TestDockerfile(t *testing.T) {
	problems, err := dockerfileProblems(mustRead(t, "../Dockerfile"), string(mustRead(t, "docker/rootfs.sh")))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, p := range problems {
		t.Errorf("Dockerfile: %s", p)
	}
}

// TestDockerfileProblemsCatch proves each check above fails when the
// Dockerfile breaks the property it guards.
func TestDockerfileProblemsCatch(t *testing.T) {
	orig := string(mustRead(t, "../Dockerfile"))
	rootfs := string(mustRead(t, "docker/rootfs.sh"))
	tests := []struct {
		name      string
		old, new  string
		wantInMsg string
	}{
		{"root user", "USER 65532:65532", "USER root", "USER"},
		{"no user", "USER 65532:65532\n", "\n", "USER"},
		{"shell health check", `CMD ["/usr/local/bin/backpropd", "healthcheck"]`, `CMD /usr/local/bin/backpropd healthcheck`, "shell form"},
		{"curl health check", `CMD ["/usr/local/bin/backpropd", "healthcheck"]`, `CMD ["curl", "-f", "http://localhost:8080/healthz"]`, "HEALTHCHECK CMD"},
		{"no volume", `VOLUME ["/data"]`, `VOLUME ["/var/lib/backpropd"]`, "VOLUME"},
		{"root copied with one owner", "COPY --from=build /rootfs/ /", "COPY --from=build --chown=65532:65532 /rootfs/ /", "--chown"},
		{"user other than the volume's owner", "USER 65532:65532", "USER 1000:1000", "uid 1000"},
		{"other port", "EXPOSE 8080", "EXPOSE 9090", "EXPOSE"},
		{"baked token", "BACKPROPD_DATA_DIR=/data", "BACKPROPD_DATA_DIR=/data BACKPROPD_AUTH_TOKEN=x", "BACKPROPD_AUTH_TOKEN"},
		{"latest base", "ARG GO_IMAGE=golang:1.26-bookworm", "ARG GO_IMAGE=golang:latest", "latest"},
		{"registry host", "ARG GO_IMAGE=golang:1.26-bookworm", "ARG GO_IMAGE=registry.example:5000/golang:1.26-bookworm", "registry host"},
		{"static by default", "ARG VARIANT=openblas", "ARG VARIANT=static", "VARIANT"},
		{"openblas tag dropped", "-tags openblas,netgo,osusergo", "-tags netgo,osusergo", "-tags openblas"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(orig, tt.old) {
				t.Fatalf("Dockerfile has no %q any more: update this test", tt.old)
			}
			problems, err := dockerfileProblems([]byte(strings.Replace(orig, tt.old, tt.new, 1)), rootfs)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			joined := strings.Join(problems, "\n")
			if !strings.Contains(joined, tt.wantInMsg) {
				t.Errorf("problems %q: want one naming %q", problems, tt.wantInMsg)
			}
		})
	}
}

// TestDockerignoreKeepsBuildInputs applies .dockerignore as `docker build`
// does and checks that every file the server build reads is in the build
// context, and that the repository's history and local data are not.
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	root := repoRoot(t)
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	excluded := func(rel string) bool {
		ex, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil {
			t.Fatalf(".dockerignore on %s: %v", rel, err)
		}
		return ex
	}

	for _, rel := range []string{"go.mod", "go.sum", "deploy/docker/rootfs.sh"} {
		if excluded(rel) {
			t.Errorf("%s is excluded from the build context, and the Dockerfile needs it", rel)
		}
	}
	for _, rel := range []string{".git/config", "data/models/x", "deploy/kubernetes/secret.yaml", "backpropd"} {
		if !excluded(rel) {
			t.Errorf("%s is in the build context; want it excluded", rel)
		}
	}

	if _, err := os.Stat(filepath.Join(root, "cmd", "server")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cmd/server: %v", err)
		}
		t.Skipf("cmd/server not there yet: %v", err)
	}
	// Every source and embedded file of every package in the server's
	// import graph, under both builds.
	for _, tags := range []string{"", "openblas"} {
		args := []string{"list", "-deps", "-f",
			`{{if and .Module .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}
{{end}}{{range .CgoFiles}}{{$d}}/{{.}}
{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}
{{end}}{{end}}`}
		if tags != "" {
			args = append(args, "-tags", tags)
		}
		cmd := exec.Command("go", append(args, "./cmd/server")...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -tags %q ./cmd/server: %v", tags, err)
		}
		files := strings.Fields(string(out))
		if len(files) == 0 {
			t.Fatalf("go list -tags %q: no file of the main module", tags)
		}
		for _, abs := range files {
			rel, err := filepath.Rel(root, abs)
			if err != nil {
				t.Fatal(err)
			}
			if excluded(rel) {
				t.Errorf("tags %q: %s is needed by ./cmd/server but excluded by .dockerignore", tags, rel)
			}
		}
	}
}

// buildCommand matches a variant's build command, up to its output path:
// `openblas) CGO_ENABLED=1 go build ... -o <path> ./cmd/server`.
var buildCommand = regexp.MustCompile(`(static|openblas)\)\s+(CGO_ENABLED=\d go build(?:\s+\\\s*|\s+)(?:.*?))\s+-o\s+\S+\s+\./cmd/server`)

// buildCommands maps each variant to its build command, with line
// continuations and runs of blanks folded to one space.
func buildCommands(text string) map[string]string {
	text = regexp.MustCompile(`\\\n\s*`).ReplaceAllString(text, " ")
	m := map[string]string{}
	for _, sub := range buildCommand.FindAllStringSubmatch(text, -1) {
		m[sub[1]] = strings.Join(strings.Fields(sub[2]), " ")
	}
	return m
}

// TestCIBuildsWhatTheImageBuilds holds .ci/steps/50-deploy.sh, which runs the
// image's root without an engine, to the Dockerfile's build commands, so that
// CI keeps checking the binary the image really holds.
func TestCIBuildsWhatTheImageBuilds(t *testing.T) {
	image := buildCommands(string(mustRead(t, "../Dockerfile")))
	ci := buildCommands(string(mustRead(t, "../.ci/steps/50-deploy.sh")))
	for _, variant := range []string{"static", "openblas"} {
		if image[variant] == "" {
			t.Errorf("Dockerfile: no build command for %s", variant)
			continue
		}
		if ci[variant] != image[variant] {
			t.Errorf("%s build: the image runs\n\t%s\nbut .ci/steps/50-deploy.sh runs\n\t%s", variant, image[variant], ci[variant])
		}
	}
}
