package rocketmq

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const fixtureRoot = "testdata/fixtures"

// fixtureBodies returns every recorded response body, keyed by its path
// relative to testdata/fixtures.
func fixtureBodies(tb testing.TB) map[string][]byte {
	tb.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(fixtureRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".response.body") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(fixtureRoot, path)
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if len(out) < 300 {
		tb.Fatalf("found only %d fixture bodies", len(out))
	}
	return out
}

// isConfigBody reports whether a fixture body is GET_BROKER_CONFIG text.
func isConfigBody(name string) bool { return strings.Contains(name, ".get_broker_config.") }

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{`{0:"10.0.0.1:10911",1:"10.0.0.2:10911"}`, `{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"}`},
		{`{-1:"x",3:"y"}`, `{"-1":"x","3":"y"}`},
		{`{1.5e3:1,-0.25E-2:2}`, `{"1.5e3":1,"-0.25E-2":2}`},
		{`{true:1,false:2,null:3}`, `{"true":1,"false":2,"null":3}`},
		{`{{"brokerName":"b","queueId":0,"topic":"T"}:{"maxOffset":5}}`,
			`{"{\"brokerName\":\"b\",\"queueId\":0,\"topic\":\"T\"}":{"maxOffset":5}}`},
		{`{[1,2]:3,[]:4,{}:5}`, `{"[1,2]":3,"[]":4,"{}":5}`},
		// A key object that itself has a non-string key keeps its raw text.
		{`{{1:2}:3}`, `{"{1:2}":3}`},
		{`{{"a":{0:1}}:{5:6}}`, `{"{\"a\":{0:1}}":{"5":6}}`},
		// Whitespace outside keys is kept byte for byte.
		{" { 0 : \"a\" ,\n\t\"b\" : [ 1 , {2:3} ] } ", " { \"0\" : \"a\" ,\n\t\"b\" : [ 1 , {\"2\":3} ] } "},
		// Escapes inside key objects are escaped once more.
		{`{{"t":"a\"b\\"}:1}`, `{"{\"t\":\"a\\\"b\\\\\"}":1}`},
		{`{{"t":"\u00e9\n"}:1}`, `{"{\"t\":\"\\u00e9\\n\"}":1}`},
		// Keys in nested and later positions.
		{`[{0:1},{"a":{1:{2:3}}}]`, `[{"0":1},{"a":{"1":{"2":3}}}]`},
		{`{"consumeStatsList":[{"G":[{"offsetTable":{{"queueId":1}:{"x":1}}}]},{"H":[]}]}`,
			`{"consumeStatsList":[{"G":[{"offsetTable":{"{\"queueId\":1}":{"x":1}}}]},{"H":[]}]}`},
		// Already standard JSON stays as it is.
		{`{}`, `{}`},
		{`[]`, `[]`},
		{`[{},[],{"a":{}},{"b":[]}]`, `[{},[],{"a":{}},{"b":[]}]`},
		{`{"k\"{0:1}":"v}"}`, `{"k\"{0:1}":"v}"}`},
		{`"s"`, `"s"`},
		{`-12.5e+7`, `-12.5e+7`},
		{`null`, `null`},
		{"\"\xff\xfe\"", "\"\xff\xfe\""},
	}
	for _, tt := range tests {
		got, err := Normalize([]byte(tt.in))
		if err != nil {
			t.Errorf("Normalize(%s): %v", tt.in, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("Normalize(%s)\n got %s\nwant %s", tt.in, got, tt.want)
		}
		if !json.Valid(got) {
			t.Errorf("Normalize(%s) = %s is not valid JSON", tt.in, got)
		}
	}
}

func TestNormalizeUnchangedIsSameSlice(t *testing.T) {
	in := []byte(`{"a":[1,2,{"b":null}]}`)
	got, err := Normalize(in)
	if err != nil {
		t.Fatal(err)
	}
	if &got[0] != &in[0] || len(got) != len(in) {
		t.Errorf("standard JSON was copied")
	}
}

func TestNormalizeErrors(t *testing.T) {
	bad := []string{
		``, ` `, `{`, `[`, `}`, `]`, `{0}`, `{0:}`, `{0:1,}`, `[1,]`, `{,}`, `[,1]`,
		`{"a" 1}`, `{"a":1 "b":2}`, `[1 2]`, `{"a"::1}`, `{0:1]`, `[1}`,
		`01`, `1.`, `.5`, `-`, `+1`, `1e`, `1e+`, `0x10`, `1a`, `NaN`, `Infinity`,
		`tru`, `truex`, `nul`, `nullx`, `falsey`,
		`"abc`, `"\x"`, `"\u12"`, `"\u12zz"`, "\"a\x01\"", `"\`,
		`{}}`, `{} x`, `[] []`, `{'a':1}`, `{a:1}`, `{{"a":1}}`, `{{"a":1}:}`, `{[1,]:2}`,
	}
	for _, in := range bad {
		out, err := Normalize([]byte(in))
		if err == nil {
			t.Errorf("Normalize(%q) = %q, want error", in, out)
			continue
		}
		var se *RelaxedSyntaxError
		if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(in) {
			t.Errorf("Normalize(%q): error %v is not a RelaxedSyntaxError with an offset inside the input", in, err)
		}
	}
}

func TestNormalizeDepth(t *testing.T) {
	nest := func(n int, open, close string) []byte {
		return []byte(strings.Repeat(open, n) + strings.Repeat(close, n))
	}
	if _, err := Normalize(nest(MaxNestingDepth, "[", "]")); err != nil {
		t.Errorf("depth %d: %v", MaxNestingDepth, err)
	}
	if _, err := Normalize(nest(MaxNestingDepth+1, "[", "]")); err == nil {
		t.Errorf("depth %d accepted", MaxNestingDepth+1)
	}
	// Object keys nest as well; a deep chain of key objects must fail cleanly.
	if _, err := Normalize(nest(MaxNestingDepth+1, "{", "}")); err == nil {
		t.Error("deep key objects accepted")
	}
	// A huge unterminated prefix must neither recurse nor be accepted.
	if _, err := Normalize(bytes.Repeat([]byte("[{0:"), 1<<18)); err == nil {
		t.Error("unterminated deep input accepted")
	}
}

// Every JSON body the real servers sent must normalize into valid JSON, and
// bodies that were already standard JSON must come back unchanged.
func TestNormalizeFixtures(t *testing.T) {
	// Bodies whose maps have Long or MessageQueue keys, which fastjson
	// writes unquoted; every other kind is standard JSON (317 is standard
	// only when no group has offsets).
	nonStandard := []string{
		".get_broker_cluster_info.", ".get_routeinfo_by_topic.fastjson.", ".get_routeinfo_by_topic.raft.",
		".get_topic_stats_info.", ".get_consume_stats.", ".get_consumer_running_info.",
	}
	rewritten := 0
	for name, body := range fixtureBodies(t) {
		if isConfigBody(name) {
			continue
		}
		out, err := Normalize(body)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !json.Valid(out) {
			t.Errorf("%s: output is not valid JSON", name)
		}
		wantRewrite := false
		for _, k := range nonStandard {
			wantRewrite = wantRewrite || strings.Contains(name, k)
		}
		switch {
		case json.Valid(body) && !bytes.Equal(out, body):
			t.Errorf("%s: standard JSON was changed", name)
		case json.Valid(body) && wantRewrite:
			t.Errorf("%s: expected fastjson keys, found standard JSON", name)
		case !json.Valid(body) && !wantRewrite && !strings.Contains(name, ".get_broker_consume_stats."):
			t.Errorf("%s: unexpected non-standard JSON", name)
		case !json.Valid(body):
			rewritten++
		}
		var v any
		if err := Unmarshal(body, &v); err != nil {
			t.Errorf("%s: Unmarshal: %v", name, err)
		}
	}
	if rewritten == 0 {
		t.Error("no fixture body needed rewriting")
	}
}

func TestUnmarshal(t *testing.T) {
	var m map[string]any
	if err := Unmarshal([]byte(`{12345678901234567890:1.25,"b":9007199254740993}`), &m); err != nil {
		t.Fatal(err)
	}
	if n, ok := m["b"].(json.Number); !ok || n.String() != "9007199254740993" {
		t.Errorf("b = %#v, want json.Number 9007199254740993", m["b"])
	}
	if _, ok := m["12345678901234567890"]; !ok {
		t.Errorf("integer key missing: %v", m)
	}

	var ids map[int64]string
	if err := Unmarshal([]byte(`{0:"a",-1:"b",3:"c"}`), &ids); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || ids[0] != "a" || ids[-1] != "b" || ids[3] != "c" {
		t.Errorf("ids = %v", ids)
	}

	var mqs map[string]int
	if err := Unmarshal([]byte(`{{"topic":"T","queueId":2,"brokerName":"b"}:7}`), &mqs); err != nil {
		t.Fatal(err)
	}
	for k, v := range mqs {
		var mq MessageQueue
		if err := Unmarshal([]byte(k), &mq); err != nil {
			t.Fatal(err)
		}
		if (mq != MessageQueue{Topic: "T", BrokerName: "b", QueueID: 2}) || v != 7 {
			t.Errorf("key %s → %+v = %d", k, mq, v)
		}
	}

	if err := Unmarshal([]byte(`{0:1`), &m); err == nil {
		t.Error("truncated input accepted")
	}
	var s struct{ A int }
	if err := Unmarshal([]byte(`{"A":"x"}`), &s); err == nil {
		t.Error("type mismatch accepted")
	}
}

// FuzzNormalize checks that Normalize never panics, that what it accepts
// comes out as valid JSON and is a fixed point, and that standard JSON
// passes through untouched.
func FuzzNormalize(f *testing.F) {
	for name, body := range fixtureBodies(f) {
		if !isConfigBody(name) {
			f.Add(body)
		}
	}
	for _, s := range []string{`{0:1}`, `{{"a":1}:{[1]:2}}`, `[{}]`, `{true:null}`, `"\u00e9"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Normalize(in)
		if err != nil {
			var se *RelaxedSyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error of type %T", err)
			}
			if json.Valid(in) && se.Msg != "nesting too deep" {
				t.Fatalf("valid JSON %q rejected: %v", in, err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("Normalize(%q) = %q is not valid JSON", in, out)
		}
		if json.Valid(in) && !bytes.Equal(in, out) {
			t.Fatalf("valid JSON %q changed to %q", in, out)
		}
		again, err := Normalize(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("Normalize is not idempotent on %q: %q, %v", out, again, err)
		}
	})
}

func BenchmarkNormalize(b *testing.B) {
	body, err := os.ReadFile(filepath.Join(fixtureRoot, "rocketmq-4.9.7/steady/broker_a.get_broker_consume_stats.response.body"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Normalize(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeConsumeStatsList(b *testing.B) {
	body, err := os.ReadFile(filepath.Join(fixtureRoot, "rocketmq-4.9.7/steady/broker_a.get_broker_consume_stats.response.body"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := DecodeConsumeStatsList(body); err != nil {
			b.Fatal(err)
		}
	}
}
