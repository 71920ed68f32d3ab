// Package rules reads the Prometheus rule files under alerts/ as YAML trees,
// so that what it writes back (the PrometheusRule manifest, files with extra
// selectors) keeps their comments, order and block style.
package rules

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"gopkg.in/yaml.v3"

	"github.com/rocketmq-exporter/rocketmq_exporter/tools/promqlx"
)

// Files are the rule files, in load order, relative to the alerts directory.
var Files = []string{"rocketmq-rules.yml", "rocketmq-alerts.yml", "rocketmq-compat.yml"}

// File is one parsed rule file.
type File struct {
	Name string // base name, e.g. rocketmq-alerts.yml
	Root *yaml.Node
}

// Rule is one rule of a file, pointing into its YAML tree.
type Rule struct {
	File, Group string
	Alert       string
	Record      string
	Expr        *yaml.Node
	Annotations map[string]string
}

// Name is the alert or recording rule name.
func (r Rule) Name() string { return r.Alert + r.Record }

// Load reads Files from dir.
func Load(dir string) ([]*File, error) {
	var out []*File
	for _, name := range Files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		f, err := Parse(name, b)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// Parse parses one rule file.
func Parse(name string, b []byte) (*File, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	f := &File{Name: name, Root: &root}
	if f.groups() == nil {
		return nil, fmt.Errorf("%s: no groups", name)
	}
	return f, nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func (f *File) doc() *yaml.Node {
	if f.Root.Kind == yaml.DocumentNode && len(f.Root.Content) == 1 {
		return f.Root.Content[0]
	}
	return nil
}

func (f *File) groups() *yaml.Node {
	g := mapValue(f.doc(), "groups")
	if g == nil || g.Kind != yaml.SequenceNode {
		return nil
	}
	return g
}

// Rules lists the rules of the file.
func (f *File) Rules() []Rule {
	var out []Rule
	for _, g := range f.groups().Content {
		gname := mapValue(g, "name").Value
		rs := mapValue(g, "rules")
		if rs == nil {
			continue
		}
		for _, r := range rs.Content {
			rule := Rule{File: f.Name, Group: gname, Expr: mapValue(r, "expr"), Annotations: map[string]string{}}
			if n := mapValue(r, "alert"); n != nil {
				rule.Alert = n.Value
			}
			if n := mapValue(r, "record"); n != nil {
				rule.Record = n.Value
			}
			if a := mapValue(r, "annotations"); a != nil {
				for i := 0; i+1 < len(a.Content); i += 2 {
					rule.Annotations[a.Content[i].Value] = a.Content[i+1].Value
				}
			}
			out = append(out, rule)
		}
	}
	return out
}

// Expression is one PromQL expression of a rule file or dashboard.
type Expression struct {
	Source string // "alerts/<file>:<rule>[:<annotation>:<n>]" or "dashboards/<file>:<panel>"
	Expr   string
}

// templateQuery finds the PromQL of `query` calls in annotation templates:
// printf "<expr>" … | query.
var templateQuery = regexp.MustCompile(`printf\s+"((?:[^"\\]|\\.)*)"[^}]*\|\s*query`)

// Expressions lists every expression of the files: rule expressions and the
// queries annotation templates run (with %q verbs filled in).
func Expressions(files []*File) []Expression {
	var out []Expression
	for _, f := range files {
		for _, r := range f.Rules() {
			src := "alerts/" + f.Name + ":" + r.Name()
			out = append(out, Expression{Source: src, Expr: r.Expr.Value})
			for _, k := range sortedKeys(r.Annotations) {
				for i, m := range templateQuery.FindAllStringSubmatch(r.Annotations[k], -1) {
					q := strings.ReplaceAll(strings.ReplaceAll(m[1], `\"`, `"`), "%q", `"x"`)
					out = append(out, Expression{Source: fmt.Sprintf("%s:%s:%d", src, k, i), Expr: q})
				}
			}
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// Recorded returns the names recording rules of the files define.
func Recorded(files []*File) map[string]bool {
	out := map[string]bool{}
	for _, f := range files {
		for _, r := range f.Rules() {
			if r.Record != "" {
				out[r.Record] = true
			}
		}
	}
	return out
}

// InjectSelector adds the matchers to every selector of every rule
// expression that reads an exporter metric (not a series a recording rule of
// the files writes: those keep only the labels the rule gives them), and to
// the queries of annotation templates.
func InjectSelector(files []*File, ms []*labels.Matcher) error {
	if len(ms) == 0 {
		return nil
	}
	recorded := Recorded(files)
	skip := func(metric string) bool { return recorded[metric] }
	for _, f := range files {
		for _, r := range f.Rules() {
			e, err := promqlx.InjectMatchers(r.Expr.Value, ms, skip)
			if err != nil {
				return fmt.Errorf("%s %s: %w", f.Name, r.Name(), err)
			}
			r.Expr.Value = e + "\n"
			r.Expr.Style = yaml.LiteralStyle
		}
	}
	return nil
}

// Marshal renders a YAML tree with two-space indentation.
func Marshal(n *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ManifestOptions names the PrometheusRule object.
type ManifestOptions struct {
	Name      string
	Namespace string
	Labels    map[string]string
}

// fileComment is the comment at the top of a rule file; yaml.v3 attaches it
// to the document or to its first key depending on blank lines.
func fileComment(f *File) string {
	if f.Root.HeadComment != "" {
		return f.Root.HeadComment
	}
	if d := f.doc(); d != nil {
		if d.HeadComment != "" {
			return d.HeadComment
		}
		if len(d.Content) > 0 {
			return d.Content[0].HeadComment
		}
	}
	return ""
}

func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} }

func mapping(kv ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Content: kv}
}

// Manifest builds a PrometheusRule (monitoring.coreos.com/v1) holding every
// group of the files, comments included.
func Manifest(files []*File, o ManifestOptions) ([]byte, error) {
	groups := &yaml.Node{Kind: yaml.SequenceNode}
	for _, f := range files {
		g := f.groups()
		if len(g.Content) > 0 {
			// The file's head comment says what its groups are for; keep it
			// on the first group of the file (the tree is the caller's, so
			// Manifest may be called once per Load).
			first := g.Content[0]
			if hc := fileComment(f); hc != "" && first.HeadComment == "" {
				first.HeadComment = hc
			}
		}
		groups.Content = append(groups.Content, g.Content...)
	}
	meta := mapping(scalar("name"), scalar(o.Name))
	if o.Namespace != "" {
		meta.Content = append(meta.Content, scalar("namespace"), scalar(o.Namespace))
	}
	if len(o.Labels) > 0 {
		ls := mapping()
		for _, k := range sortedKeys(o.Labels) {
			ls.Content = append(ls.Content, scalar(k), scalar(o.Labels[k]))
		}
		meta.Content = append(meta.Content, scalar("labels"), ls)
	}
	doc := mapping(
		scalar("apiVersion"), scalar("monitoring.coreos.com/v1"),
		scalar("kind"), scalar("PrometheusRule"),
		scalar("metadata"), meta,
		scalar("spec"), mapping(scalar("groups"), groups),
	)
	doc.HeadComment = "Generated from alerts/*.yml by tools/cmd/gen (cd tools && go generate ./...). Do not edit."
	return Marshal(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{doc}})
}
