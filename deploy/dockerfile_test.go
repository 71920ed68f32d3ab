package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	sigsyaml "sigs.k8s.io/yaml"
)

// dockerfile is the repository's Dockerfile as BuildKit's own parser reads
// it, with its build-time lint rules applied (what `docker build --check`
// reports).
type dockerfile struct {
	stages   map[string]instructions.Stage
	order    []string
	metaArgs map[string]string
}

func parseDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := parser.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile: %s", w.Short)
	}
	lint := linter.New(&linter.Config{
		Warn: func(rule, _, _, msg string, loc []parser.Range) {
			t.Errorf("Dockerfile lint %s: %s (%v)", rule, msg, loc)
		},
	})
	stages, metaArgs, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	d := &dockerfile{stages: map[string]instructions.Stage{}, metaArgs: map[string]string{}}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if kv.Value != nil {
				d.metaArgs[kv.Key] = *kv.Value
			} else {
				d.metaArgs[kv.Key] = ""
			}
		}
	}
	for i, s := range stages {
		name := s.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i)
		}
		d.stages[name] = s
		d.order = append(d.order, name)
	}
	return d
}

// expand substitutes the global ARG defaults (and BuildKit's automatic
// platform args) the way FROM lines see them.
func (d *dockerfile) expand(s string, extra map[string]string) string {
	return os.Expand(s, func(k string) string {
		if v, ok := extra[k]; ok {
			return v
		}
		return d.metaArgs[k]
	})
}

func commands[T instructions.Command](s instructions.Stage) []T {
	var out []T
	for _, c := range s.Commands {
		if v, ok := c.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func TestDockerfile(t *testing.T) {
	d := parseDockerfile(t)
	final := d.stages[d.order[len(d.order)-1]]

	// The binary comes from the stage BINARY names: both must exist and
	// yield /out/rocketmq_exporter.
	binStage, ok := d.stages["binary"]
	if !ok {
		t.Fatal(`no stage "binary"`)
	}
	for _, choice := range []string{"source", "prebuilt"} {
		if base := d.expand(binStage.BaseName, map[string]string{"BINARY": choice}); base != choice {
			t.Errorf("with BINARY=%s the binary stage is FROM %q", choice, base)
		}
		if _, ok := d.stages[choice]; !ok {
			t.Errorf("no stage %q for BINARY=%s", choice, choice)
		}
	}
	if d.metaArgs["BINARY"] != "source" {
		t.Errorf("BINARY defaults to %q; a plain `docker build .` should compile", d.metaArgs["BINARY"])
	}

	// source: a static build of the exporter's command, with the Go version
	// of go.mod.
	src := d.stages["source"]
	runs := commands[*instructions.RunCommand](src)
	var build string
	for _, r := range runs {
		if line := strings.Join(r.CmdLine, " "); strings.Contains(line, "go build") {
			build = line
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-tags netgo,osusergo", "./cmd/rocketmq_exporter", "-o /out/rocketmq_exporter", "github.com/prometheus/common/version.Version"} {
		if !strings.Contains(build, want) {
			t.Errorf("source stage go build %q lacks %q", build, want)
		}
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "cmd", "rocketmq_exporter", "main.go")); err != nil {
		t.Error(err)
	}
	goImage := d.expand(src.BaseName, nil)
	if tag := goImage[strings.LastIndex(goImage, ":")+1:]; !strings.HasPrefix(goDirective(t), tag) {
		t.Errorf("build image %s does not match go.mod's go %s", goImage, goDirective(t))
	}

	// prebuilt: promu's layout, .build/<os>-<arch>/<binary name of .promu.yml>.
	copies := commands[*instructions.CopyCommand](d.stages["prebuilt"])
	if len(copies) != 1 || len(copies[0].SourcePaths) != 1 {
		t.Fatal("prebuilt stage: want one COPY of the promu binary")
	}
	promuName := promuBinary(t)
	srcPath := d.expand(copies[0].SourcePaths[0], map[string]string{"TARGETOS": "linux", "TARGETARCH": "amd64"})
	if srcPath != ".build/linux-amd64/"+promuName || copies[0].DestPath != "/out/rocketmq_exporter" {
		t.Errorf("prebuilt stage copies %s to %s; promu crossbuild writes .build/linux-amd64/%s", srcPath, copies[0].DestPath, promuName)
	}

	// final: the binary as entrypoint, a numeric non-root user, the
	// exporter's port.
	var entry string
	for _, e := range commands[*instructions.EntrypointCommand](final) {
		if e.PrependShell || len(e.CmdLine) != 1 {
			t.Errorf("ENTRYPOINT %q: use the exec form with the binary alone, so flags pass through", e.CmdLine)
			continue
		}
		entry = e.CmdLine[0]
	}
	copied := false
	for _, c := range commands[*instructions.CopyCommand](final) {
		if c.From == "binary" && c.DestPath == entry {
			copied = true
		}
	}
	if entry == "" || !copied {
		t.Errorf("final stage: ENTRYPOINT %q is not the binary copied from the binary stage", entry)
	}
	users := commands[*instructions.UserCommand](final)
	if len(users) == 0 {
		t.Fatal("final stage: no USER: the exporter would run as root")
	}
	user := users[len(users)-1].User
	uid, gid, _ := strings.Cut(user, ":")
	for _, id := range []string{uid, gid} {
		if id == "" {
			continue
		}
		if n, err := strconv.Atoi(id); err != nil || n == 0 {
			t.Errorf("USER %q: want numeric non-zero ids (runAsNonRoot can only verify numbers)", user)
		}
	}
	var exposed []string
	for _, e := range commands[*instructions.ExposeCommand](final) {
		exposed = append(exposed, e.Ports...)
	}
	if len(exposed) != 1 || strings.TrimSuffix(exposed[0], "/tcp") != strconv.Itoa(bin.defaultPort) {
		t.Errorf("EXPOSE %v, the exporter listens on %d", exposed, bin.defaultPort)
	}

	// The manifests run the image as this user.
	if uid != "65534" {
		t.Errorf("USER %s: the manifests' runAsUser is 65534", uid)
	}
}

func goDirective(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod: no go directive")
	}
	return string(m[1])
}

func promuBinary(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, ".promu.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Build struct {
			Binaries []struct {
				Name string `json:"name"`
				Path string `json:"path"`
			} `json:"binaries"`
		} `json:"build"`
	}
	if err := sigsyaml.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Build.Binaries) != 1 || p.Build.Binaries[0].Path != "./cmd/rocketmq_exporter" {
		t.Fatalf(".promu.yml binaries %+v", p.Build.Binaries)
	}
	return p.Build.Binaries[0].Name
}

// TestDockerignore evaluates .dockerignore with the matcher BuildKit uses:
// everything `go build ./cmd/rocketmq_exporter` reads must reach the build
// context, and so must promu's binaries for BINARY=prebuilt.
func TestDockerignore(t *testing.T) {
	f, err := os.Open(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	// A path is left out if it or a parent matches, unless a later "!"
	// pattern takes it back: BuildKit's rule.
	excluded := func(p string) bool {
		ok, err := pm.MatchesOrParentMatches(p)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	need := append([]string{"go.mod", "go.sum", "Dockerfile"}, buildInputs(t)...)
	for _, p := range need {
		if excluded(p) {
			t.Errorf(".dockerignore excludes %s, which the build needs", p)
		}
	}
	for _, p := range []string{".build/linux-amd64/rocketmq_exporter", ".build/linux-arm64/rocketmq_exporter"} {
		if excluded(p) {
			t.Errorf(".dockerignore excludes %s (BINARY=prebuilt)", p)
		}
	}
	for _, p := range []string{".git/HEAD", ".build/cache/x", "deploy/go.mod", "rocketmq_exporter"} {
		if !excluded(p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}
}

// buildInputs lists the repository files `go build ./cmd/rocketmq_exporter`
// reads (Go and embedded files of the main module's packages).
func buildInputs(t *testing.T) []string {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), "go", "list", "-deps", "-json=Dir,Module,GoFiles,EmbedFiles,Standard", "./cmd/rocketmq_exporter")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			Dir        string
			Standard   bool
			Module     *struct{ Main bool }
			GoFiles    []string
			EmbedFiles []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Standard || p.Module == nil || !p.Module.Main {
			continue
		}
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range append(p.GoFiles, p.EmbedFiles...) {
			files = append(files, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	if len(files) < 5 {
		t.Fatalf("go list found only %v", files)
	}
	return files
}
