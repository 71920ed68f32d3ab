package grafanabundle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRenderRoundTrip(t *testing.T) {
	dir := t.TempDir()
	a := "{\n  \"uid\": \"a\",\n  \"title\": \"A: \\\"quoted\\\" #1\",\n  \"panels\": []\n}\n"
	b := `{"uid":"b","title":"B","description":"ends without newline"}`
	write(t, dir, "Zeta_Board.json", b)
	write(t, dir, "alpha.json", a)
	write(t, dir, "notes.txt", "ignored")

	out, err := Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), Header) {
		t.Error("generated file lacks the DO NOT EDIT header")
	}
	docs := strings.Split(string(out), "\n---\n")[1:]
	if len(docs) != 2 {
		t.Fatalf("want 2 ConfigMaps, got %d:\n%s", len(docs), out)
	}
	want := []struct{ name, key, body string }{
		{"grafana-dashboard-zeta-board", "Zeta_Board.json", b}, // file order: "Z" < "a"
		{"grafana-dashboard-alpha", "alpha.json", a},
	}
	for i, doc := range docs {
		var cm corev1.ConfigMap
		if err := yaml.UnmarshalStrict([]byte(doc), &cm); err != nil {
			t.Fatalf("doc %d: %v\n%s", i, err, doc)
		}
		if cm.Kind != "ConfigMap" || cm.APIVersion != "v1" || cm.Name != want[i].name {
			t.Errorf("doc %d: %s/%s %q", i, cm.APIVersion, cm.Kind, cm.Name)
		}
		if cm.Labels[Label] != LabelValue {
			t.Errorf("%s: labels %v", cm.Name, cm.Labels)
		}
		if got := cm.Data[want[i].key]; got != want[i].body {
			t.Errorf("%s: data %q, want the file verbatim %q", cm.Name, got, want[i].body)
		}
	}

	again, err := Generate(dir)
	if err != nil || string(again) != string(out) {
		t.Error("generation is not deterministic")
	}
}

func TestLoadRejects(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"invalid JSON": {"x.json": `{"uid":`},
		"no uid":       {"x.json": `{"title":"X"}`},
		"no title":     {"x.json": `{"uid":"x"}`},
		"name clash":   {"a_b.json": `{"uid":"1","title":"1"}`, "a-b.json": `{"uid":"2","title":"2"}`},
		"bad key":      {"a b.json": `{"uid":"1","title":"1"}`},
		"too large":    {"big.json": `{"uid":"1","title":"1","pad":"` + strings.Repeat("x", MaxConfigMapBytes) + `"}`},
	} {
		dir := t.TempDir()
		for f, body := range files {
			write(t, dir, f, body)
		}
		if _, err := Load(dir); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEmptyDirectory(t *testing.T) {
	out, err := Generate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "kind:") {
		t.Errorf("objects generated from no dashboards:\n%s", out)
	}
}
