package rmqsim

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// ---- a minimal tokenizer for fastjson output ----
//
// encoding/json cannot read fastjson bodies (bare integer keys, objects as
// keys), so the shape test parses them with this small recursive descent
// parser that keeps the form of every key.

type jnode struct {
	kind  byte // 'o' object, 'a' array, 's' string, 'i' integer, 'f' double, 'b' bool, 'n' null
	keys  []*jnode
	vals  []*jnode
	elems []*jnode
	str   string
}

type jparser struct {
	b   []byte
	pos int
}

func parseRelaxed(b []byte) (*jnode, error) {
	p := &jparser{b: b}
	n, err := p.value()
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.pos != len(p.b) {
		return nil, fmt.Errorf("trailing data at %d", p.pos)
	}
	return n, nil
}

func (p *jparser) ws() {
	for p.pos < len(p.b) && strings.IndexByte(" \t\r\n", p.b[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *jparser) errf(format string, a ...any) error {
	return fmt.Errorf("at %d: %s", p.pos, fmt.Sprintf(format, a...))
}

func (p *jparser) value() (*jnode, error) {
	p.ws()
	if p.pos >= len(p.b) {
		return nil, p.errf("unexpected end")
	}
	switch c := p.b[p.pos]; {
	case c == '{':
		p.pos++
		n := &jnode{kind: 'o'}
		p.ws()
		if p.pos < len(p.b) && p.b[p.pos] == '}' {
			p.pos++
			return n, nil
		}
		for {
			k, err := p.value() // keys may be strings, bare numbers or objects
			if err != nil {
				return nil, err
			}
			p.ws()
			if p.pos >= len(p.b) || p.b[p.pos] != ':' {
				return nil, p.errf("expected ':'")
			}
			p.pos++
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, k)
			n.vals = append(n.vals, v)
			p.ws()
			if p.pos < len(p.b) && p.b[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.pos < len(p.b) && p.b[p.pos] == '}' {
				p.pos++
				return n, nil
			}
			return nil, p.errf("expected ',' or '}'")
		}
	case c == '[':
		p.pos++
		n := &jnode{kind: 'a'}
		p.ws()
		if p.pos < len(p.b) && p.b[p.pos] == ']' {
			p.pos++
			return n, nil
		}
		for {
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			n.elems = append(n.elems, v)
			p.ws()
			if p.pos < len(p.b) && p.b[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.pos < len(p.b) && p.b[p.pos] == ']' {
				p.pos++
				return n, nil
			}
			return nil, p.errf("expected ',' or ']'")
		}
	case c == '"':
		start := p.pos
		p.pos++
		for p.pos < len(p.b) && p.b[p.pos] != '"' {
			if p.b[p.pos] == '\\' {
				p.pos++
			}
			p.pos++
		}
		if p.pos >= len(p.b) {
			return nil, p.errf("unterminated string")
		}
		p.pos++
		var s string
		if err := json.Unmarshal(p.b[start:p.pos], &s); err != nil {
			return nil, p.errf("string: %v", err)
		}
		return &jnode{kind: 's', str: s}, nil
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if strings.HasPrefix(string(p.b[p.pos:]), lit) {
				p.pos += len(lit)
				if lit == "null" {
					return &jnode{kind: 'n'}, nil
				}
				return &jnode{kind: 'b', str: lit}, nil
			}
		}
		return nil, p.errf("bad literal")
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.pos
		kind := byte('i')
		for p.pos < len(p.b) && strings.IndexByte("+-0123456789.eE", p.b[p.pos]) >= 0 {
			if strings.IndexByte(".eE", p.b[p.pos]) >= 0 {
				kind = 'f'
			}
			p.pos++
		}
		return &jnode{kind: kind, str: string(p.b[start:p.pos])}, nil
	default:
		return nil, p.errf("unexpected %q", c)
	}
}

// ---- shapes ----

// shape is the structure of a value with the data left out: the members of
// beans, the key form and merged value shape of maps, the merged element
// shape of arrays, the JSON type of scalars.
type shape struct {
	kind     string // string, int, double, bool, null, bean, map, array, or a|b when mixed
	keyForm  string // map: string, int or object
	keyShape *shape
	fields   map[string]*shape
	elem     *shape // nil: no element seen
}

// dataMaps are members whose object keys are data (names, ids, queues),
// not bean properties.
var dataMaps = map[string]bool{
	"brokerAddrTable": true, "clusterAddrTable": true, "brokerAddrs": true, "topicConfigTable": true,
	"subscriptionGroupTable": true, "offsetTable": true, "subscriptionTable": true, "peers": true,
	"inSyncStateTable": true, "forbiddenTable": true, "topicQueueMappingDetailMap": true,
	"topicQueueMappingInfoMap": true, "filterServerTable": true, "attributes": true,
	"consumeStatsList[]": true,
}

var keyNormalizers = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`^commitLogDiskRatio_.+$`), "commitLogDiskRatio_<path>"},
	{regexp.MustCompile(`^scheduleMessageOffset_\d+$`), "scheduleMessageOffset_<level>"},
}

func normalizeKey(k string) string {
	for _, n := range keyNormalizers {
		if n.re.MatchString(k) {
			return n.repl
		}
	}
	return k
}

func shapeOf(n *jnode, name string) *shape {
	switch n.kind {
	case 's':
		return &shape{kind: "string"}
	case 'i':
		return &shape{kind: "int"}
	case 'f':
		return &shape{kind: "double"}
	case 'b':
		return &shape{kind: "bool"}
	case 'n':
		return &shape{kind: "null"}
	case 'a':
		s := &shape{kind: "array"}
		for _, e := range n.elems {
			s.elem = mergeShape(s.elem, shapeOf(e, name+"[]"))
		}
		return s
	}
	isMap := dataMaps[name]
	for _, k := range n.keys {
		if k.kind != 's' {
			isMap = true
		}
	}
	if isMap {
		s := &shape{kind: "map"}
		for i, k := range n.keys {
			form := map[byte]string{'s': "string", 'i': "int", 'o': "object"}[k.kind]
			if form == "" {
				form = "other"
			}
			if s.keyForm == "" || s.keyForm == form {
				s.keyForm = form
			} else {
				s.keyForm = "mixed"
			}
			if k.kind == 'o' {
				s.keyShape = mergeShape(s.keyShape, shapeOf(k, ""))
			}
			s.elem = mergeShape(s.elem, shapeOf(n.vals[i], ""))
		}
		return s
	}
	s := &shape{kind: "bean", fields: map[string]*shape{}}
	for i, k := range n.keys {
		nk := normalizeKey(k.str)
		s.fields[nk] = mergeShape(s.fields[nk], shapeOf(n.vals[i], k.str))
	}
	return s
}

func mergeShape(a, b *shape) *shape {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	if a.kind != b.kind {
		k := []string{a.kind, b.kind}
		sort.Strings(k)
		return &shape{kind: k[0] + "|" + k[1]}
	}
	out := &shape{kind: a.kind, keyForm: a.keyForm}
	if a.keyForm != b.keyForm && a.keyForm != "" && b.keyForm != "" {
		out.keyForm = "mixed"
	} else if out.keyForm == "" {
		out.keyForm = b.keyForm
	}
	out.keyShape = mergeShape(a.keyShape, b.keyShape)
	out.elem = mergeShape(a.elem, b.elem)
	if a.fields != nil || b.fields != nil {
		out.fields = map[string]*shape{}
		for k, v := range a.fields {
			out.fields[k] = v
		}
		for k, v := range b.fields {
			out.fields[k] = mergeShape(out.fields[k], v)
		}
	}
	return out
}

// compareShapes lists the differences between the fixture's shape and the
// simulator's. A fixture map or array without elements accepts anything.
func compareShapes(fix, sim *shape, path string) []string {
	if fix == nil {
		return nil
	}
	if sim == nil {
		return []string{fmt.Sprintf("%s: simulator has no element to compare with the fixture's %s", path, fix.kind)}
	}
	if fix.kind != sim.kind {
		return []string{fmt.Sprintf("%s: fixture %s, simulator %s", path, fix.kind, sim.kind)}
	}
	var diffs []string
	switch fix.kind {
	case "bean":
		var keys []string
		for k := range fix.fields {
			keys = append(keys, k)
		}
		for k := range sim.fields {
			if _, ok := fix.fields[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s: extra member %q", path, k))
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			s, ok := sim.fields[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s: missing member %q", path, k))
				continue
			}
			diffs = append(diffs, compareShapes(fix.fields[k], s, path+"."+k)...)
		}
	case "map":
		if fix.elem != nil && fix.keyForm != sim.keyForm {
			diffs = append(diffs, fmt.Sprintf("%s: fixture keys are %s, simulator keys are %s", path, fix.keyForm, sim.keyForm))
		}
		diffs = append(diffs, compareShapes(fix.keyShape, sim.keyShape, path+"{key}")...)
		diffs = append(diffs, compareShapes(fix.elem, sim.elem, path+"{}")...)
	case "array":
		diffs = append(diffs, compareShapes(fix.elem, sim.elem, path+"[]")...)
	}
	sort.Strings(diffs)
	return diffs
}

func bodyShape(t *testing.T, b []byte) *shape {
	t.Helper()
	n, err := parseRelaxed(b)
	if err != nil {
		t.Fatalf("parse %q: %v", truncate(b), err)
	}
	return shapeOf(n, "")
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// ---- fixture replay ----

type fixtureRequest struct {
	Name      string            `json:"name"`
	Code      int               `json:"code"`
	Version   int               `json:"version"`
	Ext       map[string]string `json:"ext"`
	Body      json.RawMessage   `json:"body"`
	AccessKey string            `json:"accessKey"`
	SecretKey string            `json:"secretKey"`
}

type fixtureHeader struct {
	Code      int               `json:"code"`
	Remark    string            `json:"remark"`
	ExtFields map[string]string `json:"extFields"`
	Version   int               `json:"version"`
}

// replayDir sends every recorded request of dir to the matching simulated
// node and compares code, remark, header extFields keys, version and body
// shape with the recording. It returns how many cases it compared.
func replayDir(t *testing.T, dir string, target func(name string, code int) string) int {
	t.Helper()
	return replayDirCheck(t, dir, target, nil)
}

// valueCheck compares recorded and simulated answers beyond their shape.
type valueCheck func(t *testing.T, name string, code int, recorded, simulated *rocketmq.Command)

func replayDirCheck(t *testing.T, dir string, target func(name string, code int) string, check valueCheck) int {
	t.Helper()
	reqs, err := filepath.Glob(filepath.Join(dir, "*.request.json"))
	if err != nil || len(reqs) == 0 {
		t.Fatalf("no fixtures in %s (%v)", dir, err)
	}
	compared := 0
	for _, path := range reqs {
		base := strings.TrimSuffix(path, ".request.json")
		name := filepath.Base(base)
		var fr fixtureRequest
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &fr); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		addr := target(name, fr.Code)
		if addr == "" {
			continue
		}
		req := rocketmq.NewRequest(fr.Code, fr.Ext, nil)
		req.Version = fr.Version
		req.Opaque = 42
		if len(fr.Body) > 0 && string(fr.Body) != "null" {
			req.Body = fr.Body
		}
		if fr.AccessKey != "" {
			ext := map[string]string{}
			for k, v := range fr.Ext {
				ext[k] = v
			}
			ext[rocketmq.ExtAccessKey] = fr.AccessKey
			ext[rocketmq.ExtSignature] = rocketmq.Sign(fr.SecretKey, ext, req.Body)
			req.ExtFields = ext
		}
		compared++
		t.Run(name, func(t *testing.T) {
			if et, err := os.ReadFile(base + ".error.txt"); err == nil {
				resp, err := rawCall(addr, req, 300*time.Millisecond)
				if err == nil {
					t.Fatalf("recording has no answer, simulator answered code %d", resp.Code)
				}
				if strings.Contains(string(et), "connection refused") {
					if !isRefused(err) {
						t.Fatalf("recording: connection refused; simulator: %v", err)
					}
				} else if !isTimeout(err) {
					t.Fatalf("recording has no answer (timeout), simulator: %v", err)
				}
				return
			}
			var fh fixtureHeader
			hb, err := os.ReadFile(base + ".response.header.json")
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(hb, &fh); err != nil {
				t.Fatal(err)
			}
			resp := mustCall(t, addr, req)
			if resp.Code != fh.Code || resp.Remark != fh.Remark {
				t.Fatalf("answer code %d remark %q, recording code %d remark %q", resp.Code, resp.Remark, fh.Code, fh.Remark)
			}
			if resp.Version != fh.Version {
				t.Errorf("header version %d, recording %d", resp.Version, fh.Version)
			}
			if len(fh.ExtFields) > 0 {
				if got, want := sortedKeys(resp.ExtFields), sortedKeys(fh.ExtFields); got != want {
					t.Errorf("extFields keys %s, recording %s", got, want)
				}
			}
			fb, err := os.ReadFile(base + ".response.body")
			if check != nil {
				check(t, name, fr.Code, &rocketmq.Command{Code: fh.Code, Remark: fh.Remark, ExtFields: fh.ExtFields, Body: fb}, resp)
			}
			if os.IsNotExist(err) {
				if len(resp.Body) != 0 {
					t.Errorf("recording has no body, simulator sent %q", truncate(resp.Body))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Body) == 0 {
				t.Fatalf("simulator sent no body")
			}
			if fr.Code == rocketmq.CodeGetBrokerConfig {
				if got, want := propertyKeys(resp.Body), propertyKeys(fb); got != want {
					t.Errorf("config keys differ:\n sim %s\n fix %s", got, want)
				}
				return
			}
			if diffs := compareShapes(bodyShape(t, fb), bodyShape(t, resp.Body), "$"); len(diffs) > 0 {
				t.Errorf("body shape differs from the recording:\n  %s\nsimulator body: %s", strings.Join(diffs, "\n  "), truncate(resp.Body))
			}
		})
	}
	return compared
}

func sortedKeys(m map[string]string) string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return strings.Join(k, ",")
}

func propertyKeys(b []byte) string {
	var k []string
	for _, line := range strings.Split(string(b), "\n") {
		if key, _, ok := strings.Cut(line, "="); ok {
			k = append(k, key)
		}
	}
	sort.Strings(k)
	return strings.Join(k, ",")
}

func nodeIndex(name, prefix string) int {
	rest := strings.TrimPrefix(name, prefix)
	return int(rest[0] - '0')
}

func TestShapeAgainstFixtures497(t *testing.T) {
	c := fixture497(t, Timing{})
	eventually(t, "broker-b master registered", 2*time.Second, func() bool {
		_, ok := c.Group("broker-b")[0].RegisteredID()
		return ok
	})
	target := func(name string, code int) string {
		node := func(n *Node) string {
			if code >= rocketmq.CodeDLedgerMetadata {
				return n.DLedgerAddr()
			}
			return n.Addr()
		}
		switch {
		case strings.HasPrefix(name, "namesrv."):
			return c.NameServerAddrs()[0]
		case strings.HasPrefix(name, "broker_a."):
			return node(c.Group("broker-a")[0])
		case strings.HasPrefix(name, "broker_b_master."):
			return node(c.Group("broker-b")[0])
		case strings.HasPrefix(name, "broker_b_slave."):
			return node(c.Group("broker-b")[1])
		case strings.HasPrefix(name, "raft_n"):
			return node(c.Group("RaftNode00")[nodeIndex(name, "raft_n")])
		}
		t.Fatalf("fixture %s has no simulated node", name)
		return ""
	}
	n := replayDir(t, "testdata/fixtures/rocketmq-4.9.7/steady", target)
	n += replayDir(t, "testdata/fixtures/rocketmq-4.9.7/dledger-term-probe", target)
	if n < 100 {
		t.Fatalf("compared only %d recorded requests", n)
	}
}

func TestShapeAgainstFixtures500(t *testing.T) {
	c := fixture500(t, Timing{})
	target := func(name string, code int) string {
		switch {
		case strings.HasPrefix(name, "namesrv."):
			return c.NameServerAddrs()[0]
		case strings.HasPrefix(name, "controller."):
			return c.ControllerAddr()
		case strings.HasPrefix(name, "ctrl_n"):
			return c.Group("broker-c")[nodeIndex(name, "ctrl_n")].Addr()
		case strings.HasPrefix(name, "ms_master."):
			return c.Group("broker-d")[0].Addr()
		case strings.HasPrefix(name, "ms_slave."):
			return c.Group("broker-d")[1].Addr()
		}
		t.Fatalf("fixture %s has no simulated node", name)
		return ""
	}
	if n := replayDir(t, "testdata/fixtures/rocketmq-5.0.0/steady", target); n < 60 {
		t.Fatalf("compared only %d recorded requests", n)
	}
}

func TestShapeAgainstFixturesACL(t *testing.T) {
	c := start(t, Spec{
		Groups: []GroupSpec{{Cluster: "AclCluster", Name: "broker-acl"}},
		ACL: &ACL{Accounts: []Account{
			{AccessKey: "rocketmq2", SecretKey: "12345678", Admin: true},
			{AccessKey: "RocketMQ", SecretKey: "12345678"},
		}},
	})
	target := func(name string, code int) string { return c.Group("broker-acl")[0].Addr() }
	if n := replayDir(t, "testdata/fixtures/rocketmq-4.9.7/acl", target); n < 8 {
		t.Fatalf("compared only %d recorded requests", n)
	}
}

// The comparison itself must be able to fail.
func TestShapeComparisonDetectsDifferences(t *testing.T) {
	fix := bodyShape(t, []byte(`{"a":{0:"x"},"b":[{"c":1.0}],"m":{{"q":1}:{"v":1}}}`))
	cases := map[string]string{
		"quoted int key":   `{"a":{"0":"x"},"b":[{"c":1.0}],"m":{{"q":1}:{"v":1}}}`,
		"int instead of d": `{"a":{0:"x"},"b":[{"c":1}],"m":{{"q":1}:{"v":1}}}`,
		"missing member":   `{"a":{0:"x"},"b":[{"c":1.0}]}`,
		"extra member":     `{"a":{0:"x"},"b":[{"c":1.0,"d":2}],"m":{{"q":1}:{"v":1}}}`,
		"object key shape": `{"a":{0:"x"},"b":[{"c":1.0}],"m":{{"q":"1"}:{"v":1}}}`,
		"string key":       `{"a":{0:"x"},"b":[{"c":1.0}],"m":{"q":{"v":1}}}`,
		"empty array":      `{"a":{0:"x"},"b":[],"m":{{"q":1}:{"v":1}}}`,
	}
	for name, body := range cases {
		if d := compareShapes(fix, bodyShape(t, []byte(body)), "$"); len(d) == 0 {
			t.Errorf("%s: no difference found", name)
		}
	}
	if d := compareShapes(fix, bodyShape(t, []byte(`{"m":{{"q":7}:{"v":3}},"b":[{"c":2.5},{"c":0.0}],"a":{5:"y",6:"z"}}`)), "$"); len(d) != 0 {
		t.Errorf("same shape reported as different: %v", d)
	}
}
