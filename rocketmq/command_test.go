package rocketmq

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// PROTOCOL.md §1.1: GET_BROKER_RUNTIME_INFO, JSON header, no extFields.
const protocolJSONExample = "\x00\x00\x00\x41\x00\x00\x00\x3d" +
	`{"code":28,"flag":0,"language":"GO","opaque":1,"version":409}`

// PROTOCOL.md §1.3: GET_MAX_OFFSET, binary header, extFields topic then queueId.
const protocolBinaryExample = "\x00\x00\x00\x3b\x01\x00\x00\x37" +
	"\x00\x1e\x09\x01\x99\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x22" +
	"\x00\x05topic\x00\x00\x00\x09TopicTest\x00\x07queueId\x00\x00\x00\x010"

// The same request as we encode it: keys sorted, so queueId comes first.
const protocolBinarySorted = "\x00\x00\x00\x3b\x01\x00\x00\x37" +
	"\x00\x1e\x09\x01\x99\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x22" +
	"\x00\x07queueId\x00\x00\x00\x010\x00\x05topic\x00\x00\x00\x09TopicTest"

// fixtureFrame rebuilds a frame from a recorded response header and body
// (testdata/frames, copied from shared/fixtures) exactly as it was received.
func fixtureFrame(t testing.TB, name string) []byte {
	t.Helper()
	header, err := os.ReadFile(filepath.Join("testdata/frames", name+".response.header.json"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join("testdata/frames", name+".response.body"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	frame := binary.BigEndian.AppendUint32(nil, uint32(4+len(header)+len(body)))
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(header)))
	frame = append(frame, header...)
	return append(frame, body...)
}

func fixtureNames(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/frames/*.response.header.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no frame fixtures: %v", err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".response.header.json"))
	}
	return names
}

func TestEncodeFrameExamples(t *testing.T) {
	cases := []struct {
		name string
		cmd  *Command
		want string
	}{
		{"PROTOCOL §1.1", &Command{Code: 28, Language: "GO", Version: 409, Opaque: 1}, protocolJSONExample},
		{"PROTOCOL §1.3 with sorted keys", &Command{Code: 30, Language: "GO", Version: 409, Opaque: 7,
			ExtFields: map[string]string{"topic": "TopicTest", "queueId": "0"}, SerializeType: SerializeRocketMQ}, protocolBinarySorted},
		{"empty extFields omitted", &Command{Code: 28, Language: "GO", Version: 409, Opaque: 1, ExtFields: map[string]string{}}, protocolJSONExample},
		{"Java response", &Command{Code: 0, Language: "JAVA", Version: 407, Opaque: 18, Flag: FlagResponse,
			ExtFields: map[string]string{"offset": "303"}},
			"\x00\x00\x00\x81\x00\x00\x00\x7d" + `{"code":0,"extFields":{"offset":"303"},"flag":1,"language":"JAVA","opaque":18,"serializeTypeCurrentRPC":"JSON","version":407}`},
		{"body after header", &Command{Code: 28, Language: "GO", Version: 409, Opaque: 1, Body: []byte("xyz")},
			"\x00\x00\x00\x44\x00\x00\x00\x3d" + `{"code":28,"flag":0,"language":"GO","opaque":1,"version":409}xyz`},
		{"binary, remark, no ext", &Command{Code: 3, Language: "JAVA", Version: 407, Opaque: 2, Flag: FlagResponse,
			Remark: "no", SerializeType: SerializeRocketMQ},
			"\x00\x00\x00\x1b\x01\x00\x00\x17" + "\x00\x03\x00\x01\x97\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x02no\x00\x00\x00\x00"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EncodeFrame(tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("EncodeFrame =\n%q\nwant\n%q", got, tc.want)
			}
			back, err := ReadFrame(bytes.NewReader(got), 0)
			if err != nil {
				t.Fatal(err)
			}
			if !sameCommand(back, tc.cmd) {
				t.Errorf("decoded %+v, encoded %+v", back, tc.cmd)
			}
		})
	}
}

func TestDecodeFrameExamples(t *testing.T) {
	want := &Command{Code: 30, Language: "GO", Version: 409, Opaque: 7, SerializeType: SerializeRocketMQ,
		ExtFields: map[string]string{"topic": "TopicTest", "queueId": "0"}}
	for _, ex := range []string{protocolBinaryExample, protocolBinarySorted} {
		got, err := ReadFrame(strings.NewReader(ex), 0)
		if err != nil {
			t.Fatal(err)
		}
		if !sameCommand(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
	got, err := DecodeFrame([]byte(protocolJSONExample[4:]))
	if err != nil || !sameCommand(got, &Command{Code: 28, Language: "GO", Version: 409, Opaque: 1}) {
		t.Errorf("§1.1: %+v, %v", got, err)
	}

	// Binary edge cases Java produces: unknown language byte, negative
	// code, empty values.
	hdr := []byte{0xff, 0xfe, 42, 0x01, 0x97, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 1, 'k', 0, 0, 0, 0}
	frame := append(binary.BigEndian.AppendUint32(nil, 1<<24|uint32(len(hdr))), hdr...)
	got, err = DecodeFrame(frame)
	want = &Command{Code: -2, Language: "OTHER", Version: 407, Opaque: 9, Flag: 1, SerializeType: SerializeRocketMQ,
		ExtFields: map[string]string{"k": ""}}
	if err != nil || !sameCommand(got, want) {
		t.Errorf("binary edge cases: %+v, %v", got, err)
	}
}

func TestDecodeRecordedFrames(t *testing.T) {
	want := map[string]*Command{
		"4.9.7.broker_a.get_max_offset": {Code: 0, Language: "JAVA", Version: 407, Opaque: 18, Flag: 1,
			ExtFields: map[string]string{"offset": "303"}},
		"4.9.7.broker_a.unknown_code": {Code: 3, Language: "JAVA", Version: 407, Opaque: 26, Flag: 1,
			Remark: " request type 9999 not supported"},
		"4.9.7.raft_n0.dledger.heartbeat_term_probe": {Code: 200, Language: "JAVA", Version: 407, Opaque: 2, Flag: 1,
			Body: []byte(`{"code":403,"term":3}`)},
		"5.0.0.controller.get_metadata_info": {Code: 0, Language: "JAVA", Version: 0, Opaque: 7, Flag: 1,
			ExtFields: map[string]string{"controllerLeaderId": "n0", "controllerLeaderAddress": "127.0.0.1:19878",
				"isLeader": "true", "peers": "n0:127.0.0.1:19878;", "group": "ctrlgroup"}},
	}
	for _, name := range fixtureNames(t) {
		t.Run(name, func(t *testing.T) {
			raw := fixtureFrame(t, name)
			c, err := ReadFrame(bytes.NewReader(raw), 0)
			if err != nil {
				t.Fatal(err)
			}
			if w, ok := want[name]; ok && !sameCommand(c, w) {
				t.Errorf("got %+v\nwant %+v", c, w)
			}
			if !c.IsResponse() || c.IsOneway() || c.Language != "JAVA" {
				t.Errorf("flags/language: %+v", c)
			}
			// fastjson sorts header fields like we do; only a HashMap-ordered
			// extFields with several keys makes the bytes differ.
			enc, err := EncodeFrame(c)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.ExtFields) <= 1 && !bytes.Equal(enc, raw) {
				t.Errorf("re-encoded\n%q\nreceived\n%q", enc, raw)
			}
		})
	}
}

func TestReadFrameErrors(t *testing.T) {
	jsonFrame := func(header string) string {
		b := binary.BigEndian.AppendUint32(nil, uint32(4+len(header)))
		b = binary.BigEndian.AppendUint32(b, uint32(len(header)))
		return string(b) + header
	}
	binFrame := func(header string) string {
		b := binary.BigEndian.AppendUint32(nil, uint32(4+len(header)))
		b = binary.BigEndian.AppendUint32(b, 1<<24|uint32(len(header)))
		return string(b) + header
	}
	fixed := "\x00\x1c\x09\x01\x99\x00\x00\x00\x01\x00\x00\x00\x00" // code..flag
	cases := []struct {
		name  string
		in    string
		max   int
		err   error // io errors; nil means a *FrameError
		frame string
	}{
		{name: "empty", in: "", err: io.EOF},
		{name: "short length", in: "\x00\x00", err: io.ErrUnexpectedEOF},
		{name: "length below 4", in: "\x00\x00\x00\x03\x00\x00\x00", frame: "length 3 shorter"},
		{name: "length 0", in: "\x00\x00\x00\x00", frame: "length 0 shorter"},
		// Only the length is there: refused without reading (or allocating) the rest.
		{name: "over max", in: "\x00\x00\x10\x01", max: 4096, frame: "length 4097 exceeds the maximum frame size 4096"},
		{name: "over default max", in: "\x7f\xff\xff\xff", frame: "exceeds the maximum frame size 67108864"},
		{name: "truncated body", in: protocolJSONExample[:30], err: io.ErrUnexpectedEOF},
		{name: "no header word", in: "\x00\x00\x00\x04\x00\x00", err: io.ErrUnexpectedEOF},
		{name: "header longer than frame", in: "\x00\x00\x00\x06\x00\x00\x00\x03{}", frame: "header length 3 exceeds frame of 6 bytes"},
		{name: "unknown serialize type", in: "\x00\x00\x00\x06\x02\x00\x00\x02{}", frame: "unknown serialize type 2"},
		{name: "JSON syntax", in: jsonFrame(`{"code":`), frame: "JSON header"},
		{name: "JSON type", in: jsonFrame(`{"code":"28"}`), frame: "JSON header"},
		{name: "JSON opaque overflow", in: jsonFrame(`{"opaque":4294967296}`), frame: "JSON header"},
		{name: "JSON trailing data", in: jsonFrame(`{}{}`), frame: "JSON header"},
		{name: "JSON empty header", in: jsonFrame(``), frame: "JSON header"},
		{name: "binary too short", in: binFrame(fixed[:12]), frame: "shorter than 21"},
		{name: "binary remark too long", in: binFrame(fixed + "\x00\x00\x00\x09abc\x00\x00\x00\x00"), frame: "remark"},
		{name: "binary without ext length", in: binFrame(fixed + "\x00\x00\x00\x04abcd"), frame: "no extFields length"},
		{name: "binary ext too long", in: binFrame(fixed + "\x00\x00\x00\x00\x00\x00\x00\x09\x00\x01k"), frame: "extFields length 9"},
		{name: "binary key truncated", in: binFrame(fixed + "\x00\x00\x00\x00\x00\x00\x00\x03\x00\x05k"), frame: "extFields key"},
		{name: "binary key length cut", in: binFrame(fixed + "\x00\x00\x00\x00\x00\x00\x00\x01\x00"), frame: "extFields key"},
		{name: "binary value missing", in: binFrame(fixed + "\x00\x00\x00\x00\x00\x00\x00\x03\x00\x01k"), frame: "extFields value"},
		{name: "binary value truncated", in: binFrame(fixed + "\x00\x00\x00\x00\x00\x00\x00\x08\x00\x01k\x00\x00\x00\x02v"), frame: "extFields value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ReadFrame(strings.NewReader(tc.in), tc.max)
			if c != nil || err == nil {
				t.Fatalf("got %+v, %v", c, err)
			}
			if tc.err != nil {
				if !errors.Is(err, tc.err) || IsFrameError(err) {
					t.Errorf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if !IsFrameError(err) || !strings.Contains(err.Error(), tc.frame) {
				t.Errorf("err = %v, want a FrameError containing %q", err, tc.frame)
			}
		})
	}
}

func TestReadFrameRefusesBeforeAllocating(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, err := ReadFrame(strings.NewReader("\x40\x00\x00\x00"), 1<<20); !IsFrameError(err) {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Errorf("%d bytes allocated to refuse 1 GiB frames", d)
	}
}

func TestEncodeFrameErrors(t *testing.T) {
	cases := []struct {
		name string
		cmd  *Command
		want string
	}{
		{"unknown serialize type", &Command{SerializeType: 3}, "unknown serialize type 3"},
		{"binary code too big", &Command{Code: CodeDLedgerMetadata, SerializeType: SerializeRocketMQ}, "code 50000"},
		{"binary code too small", &Command{Code: -40000, SerializeType: SerializeRocketMQ}, "code -40000"},
		{"binary version", &Command{Version: 1 << 16, SerializeType: SerializeRocketMQ}, "version 65536"},
		{"binary flag", &Command{Flag: 1 << 40, SerializeType: SerializeRocketMQ}, "flag"},
		{"binary key", &Command{ExtFields: map[string]string{strings.Repeat("k", 1<<16): "v"}, SerializeType: SerializeRocketMQ}, "key of 65536 bytes"},
		{"header over 24 bits", &Command{Remark: strings.Repeat("r", 1<<24)}, "exceeds 24 bits"},
		{"binary header over 24 bits", &Command{Remark: strings.Repeat("r", 1<<24), SerializeType: SerializeRocketMQ}, "exceeds 24 bits"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeFrame(tc.cmd)
			if err == nil || b != nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("EncodeFrame = %d bytes, %v; want error containing %q", len(b), err, tc.want)
			}
		})
	}
	// The JSON form carries what the binary form cannot.
	c := &Command{Code: CodeDLedgerMetadata, Language: "GO", Version: 409, Opaque: 3}
	b, err := EncodeFrame(c)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := ReadFrame(bytes.NewReader(b), 0); err != nil || !sameCommand(back, c) {
		t.Errorf("JSON DLedger code: %+v, %v", back, err)
	}
}

func TestCommandHelpers(t *testing.T) {
	req := NewRequest(CodeGetMaxOffset, map[string]string{"topic": "T"}, nil)
	req.Opaque = 42
	if req.Language != LanguageGo || req.Version != DefaultVersion || req.IsResponse() || req.IsOneway() {
		t.Errorf("NewRequest = %+v", req)
	}
	resp := NewResponse(req, ResponseTopicNotExist, "topic[T] not exist")
	if !resp.IsResponse() || resp.Opaque != 42 || resp.Code != ResponseTopicNotExist || resp.Remark == "" {
		t.Errorf("NewResponse = %+v", resp)
	}
	if !(&Command{Flag: FlagOneway}).IsOneway() {
		t.Error("IsOneway")
	}
	if IsFrameError(io.EOF) || !IsFrameError(errors.Join(io.EOF, &FrameError{Reason: "x"})) {
		t.Error("IsFrameError")
	}
}

// sameCommand compares commands the way the wire does: an empty extFields
// map is the same as none.
func sameCommand(a, b *Command) bool {
	na, nb := *a, *b
	if len(na.ExtFields) == 0 {
		na.ExtFields = nil
	}
	if len(nb.ExtFields) == 0 {
		nb.ExtFields = nil
	}
	if len(na.Body) == 0 {
		na.Body = nil
	}
	if len(nb.Body) == 0 {
		nb.Body = nil
	}
	return reflect.DeepEqual(na, nb)
}

// FuzzReadFrame feeds arbitrary bytes to ReadFrame: it must never panic, and
// anything it accepts must survive EncodeFrame and decode to the same
// Command, re-encoding to the same bytes.
func FuzzReadFrame(f *testing.F) {
	for _, name := range fixtureNames(f) {
		f.Add(fixtureFrame(f, name))
	}
	f.Add([]byte(protocolJSONExample))
	f.Add([]byte(protocolBinaryExample))
	f.Add([]byte(protocolBinarySorted))
	for _, c := range []*Command{
		{Code: 3, Language: "JAVA", Version: 407, Opaque: 2, Flag: 1, Remark: "r", SerializeType: SerializeRocketMQ,
			ExtFields: map[string]string{"a": "", "b": "x"}, Body: []byte("body")},
		{Code: 0, Language: "JAVA", Version: 407, Opaque: -1, Flag: 1, Remark: "caf\u00e9 <&>",
			ExtFields: map[string]string{"offset": "303", "": "\x00"}},
	} {
		b, err := EncodeFrame(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\x00\x00\x00\x06\x00\x00\x00\x02{}"))
	f.Add([]byte("\x00\x00\x00\x0a\x00\x00\x00\x06\"null\""))
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ReadFrame(bytes.NewReader(data), 1<<20)
		if err != nil {
			if c != nil {
				t.Fatalf("command and error: %+v, %v", c, err)
			}
			return
		}
		enc, err := EncodeFrame(c)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", c, err)
		}
		c2, err := ReadFrame(bytes.NewReader(enc), 0)
		if err != nil {
			t.Fatalf("re-encoded frame %q does not decode: %v", enc, err)
		}
		if !sameCommand(c, c2) {
			t.Fatalf("round trip changed the command:\n%+v\n%+v", c, c2)
		}
		enc2, err := EncodeFrame(c2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable: %q vs %q (%v)", enc, enc2, err)
		}
		if c.Body != nil && !bytes.HasSuffix(data[:4+binary.BigEndian.Uint32(data)], c.Body) {
			t.Fatal("body is not the tail of the frame")
		}
		pooledAgrees(t, data, c)
	})
}

// pooledAgrees reads data again into a buffer of a pool that scribbles over
// what it is given back: the command must be plain's, and stay so, body
// aside, once its buffer is released; nothing of the header may live in it.
func pooledAgrees(t *testing.T, data []byte, plain *Command) {
	t.Helper()
	pool := newScribbler()
	c, err := readFrame(bytes.NewReader(data), 1<<20, &pool.framePool)
	if err != nil {
		t.Fatalf("pooled read failed: %v", err)
	}
	if (c.frame != nil) != (c.Body != nil) {
		t.Fatalf("pooled buffer kept %v with body %q", c.frame != nil, c.Body)
	}
	got := *c
	got.frame = nil
	if !reflect.DeepEqual(&got, plain) {
		t.Fatalf("pooled read:\n%+v\nplain read:\n%+v", got, *plain)
	}
	c.release()
	want := *plain
	want.Body = nil
	if !reflect.DeepEqual(c, &want) {
		t.Fatalf("after release:\n%+v\nwant:\n%+v", *c, want)
	}
}
