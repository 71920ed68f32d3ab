package rocketmq

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// marshalHeaderStd is the reference encoding of c's JSON header: encoding/json
// applied to jsonHeader, as EncodeFrame did before it had its own encoder.
func marshalHeaderStd(t testing.TB, c *Command) []byte {
	t.Helper()
	h := jsonHeader{
		Code: c.Code, ExtFields: c.ExtFields, Flag: c.Flag, Language: c.Language,
		Opaque: c.Opaque, Remark: c.Remark, Version: c.Version,
	}
	if c.Language == "JAVA" {
		h.SerializeTypeCurrentRPC = "JSON"
	}
	b, err := json.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkHeaderDecode holds decodeJSONHeader to encoding/json on b: the same
// Command (nil and empty extFields told apart) or an error from both. It
// reports whether the scanner, rather than encoding/json, decoded b.
func checkHeaderDecode(t testing.TB, b []byte) (fast bool) {
	t.Helper()
	want, wantErr := decodeJSONHeaderStd(b)
	got, err := decodeJSONHeader(b)
	if (err != nil) != (wantErr != nil) || (err != nil && err.Error() != wantErr.Error()) {
		t.Fatalf("header %q: error %v, encoding/json %v", b, err, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("header %q:\ndecoded       %#v\nencoding/json %#v", b, got, want)
	}
	c, ok := scanJSONHeader(b)
	if ok && (wantErr != nil || !reflect.DeepEqual(c, want)) {
		t.Fatalf("header %q: scanner accepted %#v, encoding/json %#v, %v", b, c, want, wantErr)
	}
	return ok
}

// checkHeaderEncode holds appendJSONHeader to json.Marshal on c and checks
// that what it writes decodes back to c (strings as JSON carries them).
func checkHeaderEncode(t testing.TB, c *Command) {
	t.Helper()
	got := appendJSONHeader(nil, c)
	want := marshalHeaderStd(t, c)
	if !bytes.Equal(got, want) {
		t.Fatalf("header of %#v:\nappended   %q\njson.Marshal %q", c, got, want)
	}
	checkHeaderDecode(t, got)
	back, err := decodeJSONHeader(got)
	if err != nil {
		t.Fatalf("appended header %q does not decode: %v", got, err)
	}
	if validCommandText(c) && !sameCommand(back, &Command{
		Code: c.Code, Language: c.Language, Version: c.Version, Opaque: c.Opaque,
		Flag: c.Flag, Remark: c.Remark, ExtFields: c.ExtFields,
	}) {
		t.Fatalf("round trip of %#v gave %#v", c, back)
	}
}

// validCommandText reports whether every string of c is valid UTF-8, i.e.
// survives JSON unchanged.
func validCommandText(c *Command) bool {
	ok := utf8.ValidString(c.Language) && utf8.ValidString(c.Remark)
	for k, v := range c.ExtFields {
		ok = ok && utf8.ValidString(k) && utf8.ValidString(v)
	}
	return ok
}

// Every header a real broker, NameServer, controller or DLedger node sent in
// the recordings takes the scanner and decodes as encoding/json decodes it;
// every request of the recordings encodes as json.Marshal encodes it.
func TestJSONHeaderCodecOnFixtures(t *testing.T) {
	var headers, requests int
	err := filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch {
		case strings.HasSuffix(path, ".response.header.json"):
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if !checkHeaderDecode(t, b) {
				t.Errorf("%s: the scanner declined a recorded header", path)
			}
			c, _ := decodeJSONHeader(b)
			checkHeaderEncode(t, c)
			headers++
		case strings.HasSuffix(path, ".request.json"):
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			var r struct {
				Code    int               `json:"code"`
				Version int               `json:"version"`
				Ext     map[string]string `json:"ext"`
			}
			if err := json.Unmarshal(b, &r); err != nil {
				return err
			}
			req := NewRequest(r.Code, r.Ext, nil)
			req.Version, req.Opaque = r.Version, int32(requests+1)
			checkHeaderEncode(t, req)
			if !checkHeaderDecode(t, appendJSONHeader(nil, req)) {
				t.Errorf("%s: the scanner declined our request", path)
			}
			requests++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if headers < 400 || requests < 400 {
		t.Fatalf("only %d response headers and %d requests found under testdata", headers, requests)
	}
}

func TestJSONHeaderScannerEdges(t *testing.T) {
	cases := []struct {
		in   string
		fast bool // whether the scanner, not encoding/json, decodes it
	}{
		{`{}`, true},
		{" \t\r\n{ \"code\" :\n1 , \"flag\":\t2 }\r\n", true},
		{`{"code":-0,"opaque":-2147483648,"version":999999999999999999}`, true},
		{`{"opaque":2147483647,"flag":-999999999999999999}`, true},
		{`{"extFields":{}}`, true},
		{`{"extFields":{"a":"1","a":"2","":""}}`, true},
		{`{"remark":"\" \\ \/ \b \f \n \r \t \u00e9 \u003C\u003e\u0026 \u2028 \ufffd \u0000"}`, true},
		{`{"remark":"caf` + "\u00e9 \U0001F600 \uFFFD \x7f" + `"}`, true},
		{`{"language":"JAVA","serializeTypeCurrentRPC":"ROCKETMQ"}`, true},
		{`{"co\u0064e":5}`, true},
		{`{"extFields":{"k\u0000":"v"}}`, true},

		// Left to encoding/json, which accepts them...
		{`null`, false},
		{` null `, false},
		{`{"code":null}`, false},
		{`{"remark":null}`, false},
		{`{"extFields":null}`, false},
		{`{"extFields":{"k":null}}`, false},
		{`{"Code":7}`, false},
		{`{"CODE":7,"code":8}`, false},
		{`{"unknown":[1,{"x":true}]}`, false},
		{`{"code":1,"code":2}`, false},
		{`{"extFields":{"a":"1"},"extFields":{"b":"2"}}`, false},
		{`{"version":1234567890123456789}`, false},
		{`{"remark":"\ud83d\ude00"}`, false},
		{`{"remark":"\ud800"}`, false},
		{`{"remark":"` + "\xff\xfe" + `"}`, false},
		{`{"remark":"` + "\xed\xa0\x80" + `"}`, false},
		{`{"extFields":{"` + "\xc3" + `":"v"}}`, false},
		// ...or refuses.
		{``, false},
		{`{`, false},
		{`{"code":`, false},
		{`{"code":1`, false},
		{`{"code":1,}`, false},
		{`{,}`, false},
		{`{}{}`, false},
		{`{} x`, false},
		{`[]`, false},
		{`"x"`, false},
		{`{"code":"28"}`, false},
		{`{"code":1.0}`, false},
		{`{"code":1e3}`, false},
		{`{"code":01}`, false},
		{`{"code":-}`, false},
		{`{"code":+1}`, false},
		{`{"code":0x10}`, false},
		{`{"code":true}`, false},
		{`{"opaque":2147483648}`, false},
		{`{"opaque":-2147483649}`, false},
		{`{"opaque":4294967296}`, false},
		{`{"code":99999999999999999999}`, false},
		{`{"language":5}`, false},
		{`{"extFields":[]}`, false},
		{`{"extFields":{"k":1}}`, false},
		{`{"extFields":{"k":"v",}}`, false},
		{`{"extFields":{"k" "v"}}`, false},
		{`{"remark":"` + "a\x01b" + `"}`, false},
		{`{"remark":"` + "a\nb" + `"}`, false},
		{`{"remark":"\x"}`, false},
		{`{"remark":"\u12"}`, false},
		{`{"remark":"\u12G4"}`, false},
		{`{"remark":"abc\"}`, false},
		{`{"remark":"abc\`, false},
		{`{"remark":"abc`, false},
		{"\ufeff{}", false},
		{"{\v}", false},
		{`{'code':1}`, false},
		{`{code:1}`, false},
	}
	for _, tc := range cases {
		if fast := checkHeaderDecode(t, []byte(tc.in)); fast != tc.fast {
			t.Errorf("%q: scanner took it %v, want %v", tc.in, fast, tc.fast)
		}
	}
}

func TestJSONHeaderEncoderMatchesMarshal(t *testing.T) {
	var all strings.Builder
	for c := range 128 {
		all.WriteByte(byte(c))
	}
	texts := []string{
		"", "plain", "<TOPIC_PUT_NUMS> & co", "\x00\x01\x1f\x7f", "\b\f\n\r\t", `"\/`, all.String(),
		"café", "\u2028\u2029\u2027\u202a", "\U0001F600", "\uFFFD", "\ufeff",
		"\xff", "a\xc3", "\xc3(", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x80", "trailing \xe2",
	}
	for _, s := range texts {
		for _, lang := range []string{"GO", "JAVA", s} {
			checkHeaderEncode(t, &Command{Code: -1, Language: lang, Version: 409, Opaque: -7, Flag: 3, Remark: s})
			checkHeaderEncode(t, &Command{Code: 1 << 40, Language: lang, Opaque: 1 << 30,
				ExtFields: map[string]string{s: s, "topic": s, s + "x": ""}})
		}
	}
	// Key order is that of the bytes, invalid UTF-8 included.
	ext := map[string]string{}
	for _, k := range []string{"b", "a", "B", "", "\xff", "é", "ab", "a\x00", "<", "~", "k1", "k2", "k3", "k4", "k5", "k6", "k7"} {
		ext[k] = k
	}
	checkHeaderEncode(t, &Command{Code: 202, Language: "GO", Version: 409, Opaque: 1, ExtFields: ext})
}

// The size hint is a bound when nothing is escaped: the frame is one
// allocation.
func TestEncodeFrameAllocations(t *testing.T) {
	req := NewRequest(CodeGetTopicStatsInfo, map[string]string{"topic": "TopicTest"}, nil)
	req.Opaque = -2147483648
	req.Code, req.Flag, req.Version = -1<<62, -1<<62, -1<<62
	if n := testing.AllocsPerRun(100, func() {
		if _, err := EncodeFrame(req); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("EncodeFrame: %v allocations, want 1", n)
	}
}

// FuzzHeaderCodec holds the JSON header codec to encoding/json: any header
// decodes as json.Unmarshal decodes it (or fails as it does), and any Command
// encodes to the bytes json.Marshal writes and decodes back.
func FuzzHeaderCodec(f *testing.F) {
	for _, name := range fixtureNames(f) {
		b, err := os.ReadFile(filepath.Join("testdata/frames", name+".response.header.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, 0, 1, int32(7), 409, "JAVA", "", "offset", "303")
	}
	f.Add([]byte(`{"remark":"\u003c\ud83d\ude00\u2028","extFields":{"a":"\n"}}`), 17, 0, int32(-1), 0, "GO", "<topic>\n", "k\x00", "\xff")
	f.Add([]byte(`{"code":1,"code":2,"Flag":3,"extFields":null}`), -1, 3, int32(1<<31-1), 1<<40, "", "\u2029", "", "")
	f.Add([]byte(` {"opaque":2147483648} `), 1<<62, -1<<62, int32(-1<<31), -5, "\xed\xa0\x80", "é", "topic", "\x7f\x1f")
	f.Fuzz(func(t *testing.T, header []byte, code, flag int, opaque int32, version int, lang, remark, k, v string) {
		checkHeaderDecode(t, header)
		c := &Command{Code: code, Language: lang, Version: version, Opaque: opaque, Flag: flag, Remark: remark}
		checkHeaderEncode(t, c)
		c.ExtFields = map[string]string{k: v, v: remark, "topic": k}
		checkHeaderEncode(t, c)
		// The frame carries the same header.
		frame, err := EncodeFrame(c)
		if err != nil {
			t.Fatal(err)
		}
		if h := appendJSONHeader(nil, c); !bytes.Equal(frame[8:8+len(h)], h) || len(frame) != 8+len(h) {
			t.Fatalf("frame %q does not hold header %q", frame, h)
		}
	})
}

func BenchmarkJSONHeader(b *testing.B) {
	resp := []byte(`{"code":0,"extFields":{"offset":"303"},"flag":1,"language":"JAVA","opaque":18,"serializeTypeCurrentRPC":"JSON","version":407}`)
	req := NewRequest(CodeGetTopicStatsInfo, map[string]string{"topic": "TopicTest"}, nil)
	req.Opaque = 12345
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeJSONHeader(resp); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeJSONHeaderStd(resp); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := EncodeFrame(req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode-encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			marshalHeaderStd(b, req)
		}
	})
}
