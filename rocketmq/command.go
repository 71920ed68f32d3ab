// Package rocketmq is a client for the RocketMQ remoting protocol, as spoken by
// NameServers, brokers, 5.x controllers and DLedger nodes. It implements only
// what an exporter needs: framing, request/response correlation, typed admin
// reads, ACL 1.0 signing and TLS. See ../../shared/PROTOCOL.md for the facts
// each piece relies on.
package rocketmq

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"sort"
	"strconv"
	"sync"
	"unicode/utf8"
)

// Serialize types carried in the top byte of the header-length word.
const (
	SerializeJSON     byte = 0
	SerializeRocketMQ byte = 1
)

// Flag bits of a command.
const (
	FlagResponse = 1 << 0
	FlagOneway   = 1 << 1
)

// DefaultVersion is the MQVersion ordinal we send (V4_9_8). Anything >= 401
// makes a 4.9.4+ NameServer answer routes in standard JSON.
const DefaultVersion = 409

// LanguageGo is what we announce in the language field.
const LanguageGo = "GO"

// DefaultMaxFrameSize bounds the frames we accept. Brokers have no cap on what
// they encode, and bulk answers on large clusters exceed Netty's 16 MiB, so the
// default is larger than the Java client's.
const DefaultMaxFrameSize = 64 << 20

// minFrame is the smallest valid frame: the 4-byte header-length word.
const minFrame = 4

// Command is one remoting frame: a request, a response or a oneway message.
type Command struct {
	Code      int
	Language  string
	Version   int
	Opaque    int32
	Flag      int
	Remark    string
	ExtFields map[string]string
	Body      []byte
	// SerializeType is the header encoding the frame arrived in (or is to be
	// sent in). Peers may answer a JSON request in the binary form and vice
	// versa on error paths, so it is tracked per frame.
	SerializeType byte

	// frame is the pooled buffer Body lies in, when a Client read the
	// command into one (see release).
	frame *pooledFrame
}

// NewRequest returns a request with our language and version. ext may be nil:
// header-less requests must omit extFields entirely (PROTOCOL.md §1.2).
func NewRequest(code int, ext map[string]string, body []byte) *Command {
	return &Command{Code: code, Language: LanguageGo, Version: DefaultVersion, ExtFields: ext, Body: body}
}

// NewResponse returns a response to req carrying code and remark.
func NewResponse(req *Command, code int, remark string) *Command {
	return &Command{
		Code: code, Language: "JAVA", Version: DefaultVersion, Opaque: req.Opaque,
		Flag: FlagResponse, Remark: remark, SerializeType: SerializeJSON,
	}
}

// IsResponse reports whether the response bit is set.
func (c *Command) IsResponse() bool { return c.Flag&FlagResponse != 0 }

// IsOneway reports whether the oneway bit is set.
func (c *Command) IsOneway() bool { return c.Flag&FlagOneway != 0 }

// jsonHeader is the wire form of the JSON header. Field order follows
// fastjson's SortField (alphabetical), which keeps our frames byte-comparable
// with what a Java peer sends.
type jsonHeader struct {
	Code                    int               `json:"code"`
	ExtFields               map[string]string `json:"extFields,omitempty"`
	Flag                    int               `json:"flag"`
	Language                string            `json:"language"`
	Opaque                  int32             `json:"opaque"`
	Remark                  string            `json:"remark,omitempty"`
	SerializeTypeCurrentRPC string            `json:"serializeTypeCurrentRPC,omitempty"`
	Version                 int               `json:"version"`
}

// FrameError reports a frame that violates the framing rules. The connection
// it came from cannot be trusted any more and must be closed.
type FrameError struct{ Reason string }

func (e *FrameError) Error() string { return "rocketmq: bad frame: " + e.Reason }

func frameErr(format string, a ...any) error { return &FrameError{Reason: fmt.Sprintf(format, a...)} }

// IsFrameError reports whether err is (or wraps) a *FrameError.
func IsFrameError(err error) bool {
	var fe *FrameError
	return errors.As(err, &fe)
}

// EncodeFrame serializes c into one frame (length prefix included) using the
// header form named by c.SerializeType.
func EncodeFrame(c *Command) ([]byte, error) {
	return appendFrame(nil, c)
}

// appendFrame is EncodeFrame writing into buf's storage (its contents are
// overwritten), growing it as needed.
func appendFrame(buf []byte, c *Command) ([]byte, error) {
	switch c.SerializeType {
	case SerializeJSON:
		// The header is appended straight into the frame: one allocation
		// where marshalling a header and copying it took several. The
		// length words are reserved here and filled in by finishFrame.
		buf = frameBuffer(buf, 8+jsonHeaderSizeHint(c)+len(c.Body))
		return finishFrame(appendJSONHeader(buf, c), c)
	case SerializeRocketMQ:
		header, err := encodeBinaryHeader(c)
		if err != nil {
			return nil, err
		}
		buf = frameBuffer(buf, 8+len(header)+len(c.Body))
		return finishFrame(append(buf, header...), c)
	default:
		return nil, fmt.Errorf("rocketmq: unknown serialize type %d", c.SerializeType)
	}
}

// frameBuffer returns buf, or a new buffer when buf holds less than size,
// with its first 8 bytes reserved for the length words.
func frameBuffer(buf []byte, size int) []byte {
	if cap(buf) < size {
		return make([]byte, 8, size)
	}
	return buf[:8]
}

// finishFrame fills in the length words of buf, which holds 8 reserved bytes
// followed by the header, and appends the body.
func finishFrame(buf []byte, c *Command) ([]byte, error) {
	headerLen := len(buf) - 8
	if headerLen > 0xFFFFFF {
		return nil, fmt.Errorf("rocketmq: header of %d bytes exceeds 24 bits", headerLen)
	}
	total := 4 + headerLen + len(c.Body)
	if total > 0x7FFFFFFF-4 {
		return nil, fmt.Errorf("rocketmq: frame of %d bytes too large", total)
	}
	binary.BigEndian.PutUint32(buf[0:4], uint32(total))
	binary.BigEndian.PutUint32(buf[4:8], uint32(c.SerializeType)<<24|uint32(headerLen))
	return append(buf, c.Body...), nil
}

// ReadFrame reads one frame from r. A frame larger than maxFrame (the value of
// the length prefix) is refused before anything is allocated for it.
func ReadFrame(r io.Reader, maxFrame int) (*Command, error) {
	return readFrame(r, maxFrame, nil)
}

// readFrame is ReadFrame reading into a buffer of pool when the frame fits
// one (pool may be nil). The buffer stays with the command only when its
// body is in it; the header's values are copies.
func readFrame(r io.Reader, maxFrame int, pool *framePool) (*Command, error) {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrameSize
	}
	var lenBuf [4]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, err
	}
	total := int64(binary.BigEndian.Uint32(lenBuf[:]))
	if total < minFrame {
		return nil, frameErr("length %d shorter than the header-length word", total)
	}
	if total > int64(maxFrame) {
		return nil, frameErr("length %d exceeds the maximum frame size %d", total, maxFrame)
	}
	var (
		pf    *pooledFrame
		frame []byte
		err   error
	)
	if pf = pool.get(int(total)); pf != nil {
		frame = pf.b[:total]
		_, err = io.ReadFull(r, frame)
	} else {
		frame, err = readFrameBody(r, int(total))
	}
	if err != nil {
		pool.put(pf)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	c, err := DecodeFrame(frame)
	if err != nil || c.Body == nil {
		pool.put(pf)
		return c, err
	}
	c.frame = pf
	return c, nil
}

// frameChunk is how far ReadFrame allocates ahead of the bytes that arrived.
const frameChunk = 1 << 20

// readFrameBody reads n bytes, growing the buffer as they arrive rather than
// reserving n up front: a length prefix costs four bytes to send, and a peer
// announcing frames just under the maximum and then stalling would otherwise
// pin that much memory per connection.
func readFrameBody(r io.Reader, n int) ([]byte, error) {
	if n <= frameChunk {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	b := make([]byte, 0, frameChunk)
	for len(b) < n {
		if len(b) == cap(b) {
			nb := make([]byte, len(b), min(2*cap(b), n))
			copy(nb, b)
			b = nb
		}
		m, err := io.ReadFull(r, b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err != nil {
			if errors.Is(err, io.EOF) && len(b) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return b, nil
}

// release gives the pooled buffer of a command read by a Client back for
// another answer, and clears Body. Only the command's one owner may call
// it, and only once nothing it decoded refers to Body: the decoders copy
// every value they keep (TestReleasedBodies), so Admin releases each answer
// after decoding it. Commands not read into a pooled buffer are left as
// they are.
func (c *Command) release() {
	if c == nil || c.frame == nil {
		return
	}
	pf := c.frame
	c.frame, c.Body = nil, nil
	pf.pool.put(pf)
}

// Response buffers come from size classes of powers of two, from
// 1<<minFrameShift bytes to frameChunk: a large cluster's scrape reads tens
// of thousands of answers of a few kilobytes, and a fresh buffer for each
// was the largest allocation of the scrape. Larger frames are rare (the
// whole-broker tables) and are read as before, growing as they arrive.
const (
	minFrameShift = 9
	maxFrameShift = 20 // log2(frameChunk)
	frameClasses  = maxFrameShift - minFrameShift + 1
)

// framePool recycles response buffers, one sync.Pool per size class: what
// is not reused is dropped by the garbage collector within two cycles, so
// the pool never holds on to more than recent traffic needed.
type framePool struct {
	classes [frameClasses]sync.Pool
	// onPut, set by tests, sees every buffer given back.
	onPut func([]byte)
}

// pooledFrame is one buffer of a framePool; len(b) is its class size.
type pooledFrame struct {
	b    []byte
	pool *framePool
}

// frameClass returns the smallest class that holds n bytes, or -1 when
// none does.
func frameClass(n int) int {
	if n > 1<<maxFrameShift {
		return -1
	}
	if n <= 1<<minFrameShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minFrameShift
}

// get returns a buffer of at least n bytes, or nil when p is nil or n is
// larger than the largest class.
func (p *framePool) get(n int) *pooledFrame {
	if p == nil {
		return nil
	}
	class := frameClass(n)
	if class < 0 {
		return nil
	}
	if pf, _ := p.classes[class].Get().(*pooledFrame); pf != nil {
		return pf
	}
	return &pooledFrame{b: make([]byte, 1<<(class+minFrameShift)), pool: p}
}

// put gives pf (which may be nil) back to p.
func (p *framePool) put(pf *pooledFrame) {
	if p == nil || pf == nil {
		return
	}
	if p.onPut != nil {
		p.onPut(pf.b)
	}
	p.classes[frameClass(len(pf.b))].Put(pf)
}

// DecodeFrame decodes a frame without its 4-byte length prefix.
func DecodeFrame(frame []byte) (*Command, error) {
	if len(frame) < minFrame {
		return nil, frameErr("frame of %d bytes has no header-length word", len(frame))
	}
	word := binary.BigEndian.Uint32(frame[0:4])
	serType := byte(word >> 24)
	headerLen := int(word & 0xFFFFFF)
	if headerLen > len(frame)-4 {
		return nil, frameErr("header length %d exceeds frame of %d bytes", headerLen, len(frame))
	}
	header := frame[4 : 4+headerLen]
	var c *Command
	var err error
	switch serType {
	case SerializeJSON:
		c, err = decodeJSONHeader(header)
	case SerializeRocketMQ:
		c, err = decodeBinaryHeader(header)
	default:
		return nil, frameErr("unknown serialize type %d", serType)
	}
	if err != nil {
		return nil, err
	}
	c.SerializeType = serType
	if body := frame[4+headerLen:]; len(body) > 0 {
		c.Body = body
	}
	return c, nil
}

// decodeJSONHeader decodes a JSON header. The hand-written scanner takes what
// real peers send; anything it is not sure to read exactly like
// encoding/json goes to encoding/json, which stays the reference.
func decodeJSONHeader(b []byte) (*Command, error) {
	if c, ok := scanJSONHeader(b); ok {
		return c, nil
	}
	return decodeJSONHeaderStd(b)
}

func decodeJSONHeaderStd(b []byte) (*Command, error) {
	var h jsonHeader
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, frameErr("JSON header: %v", err)
	}
	return &Command{
		Code: h.Code, Language: h.Language, Version: h.Version, Opaque: h.Opaque,
		Flag: h.Flag, Remark: h.Remark, ExtFields: h.ExtFields,
	}, nil
}

// The JSON header codec below stands in for encoding/json on the path of every
// request and response. Its contract is to be indistinguishable from
// encoding/json applied to jsonHeader: appendJSONHeader writes exactly the
// bytes json.Marshal writes, escaping included, and scanJSONHeader either
// decodes what json.Unmarshal decodes or declines, leaving the input to
// encoding/json. FuzzHeaderCodec holds both to that.

// jsonHeaderSizeHint bounds the size of c's JSON header when none of its
// strings needs escaping, so that the frame buffer is not grown while the
// header is appended: fixed text, four numbers at their longest, strings.
func jsonHeaderSizeHint(c *Command) int {
	n := len(`{"code":,"flag":,"language":"","opaque":,"version":}`) + 3*20 + 11 + len(c.Language)
	if c.Remark != "" {
		n += len(`,"remark":""`) + len(c.Remark)
	}
	if c.Language == "JAVA" {
		n += len(`,"serializeTypeCurrentRPC":"JSON"`)
	}
	if len(c.ExtFields) > 0 {
		n += len(`,"extFields":{}`)
		for k, v := range c.ExtFields {
			n += len(`"":"",`) + len(k) + len(v)
		}
	}
	return n
}

// appendJSONHeader appends c's JSON header: jsonHeader's fields in their
// (alphabetical) order, the empty optional ones left out, extFields sorted by
// key.
func appendJSONHeader(b []byte, c *Command) []byte {
	b = append(b, `{"code":`...)
	b = strconv.AppendInt(b, int64(c.Code), 10)
	if len(c.ExtFields) > 0 {
		b = append(b, `,"extFields":{`...)
		b = appendExtFields(b, c.ExtFields)
		b = append(b, '}')
	}
	b = append(b, `,"flag":`...)
	b = strconv.AppendInt(b, int64(c.Flag), 10)
	b = append(b, `,"language":`...)
	b = appendHeaderString(b, c.Language)
	b = append(b, `,"opaque":`...)
	b = strconv.AppendInt(b, int64(c.Opaque), 10)
	if c.Remark != "" {
		b = append(b, `,"remark":`...)
		b = appendHeaderString(b, c.Remark)
	}
	if c.Language == "JAVA" {
		b = append(b, `,"serializeTypeCurrentRPC":"JSON"`...)
	}
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(c.Version), 10)
	return append(b, '}')
}

func appendExtFields(b []byte, ext map[string]string) []byte {
	var small [8]string // requests carry a handful of fields: no allocation
	keys := small[:0]
	for k := range ext {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendHeaderString(b, k)
		b = append(b, ':')
		b = appendHeaderString(b, ext[k])
	}
	return b
}

const lowerHex = "0123456789abcdef"

// appendHeaderString appends s as a JSON string escaped the way json.Marshal
// escapes: quote, backslash and control characters (\b \f \n \r \t by
// name, the rest as \u00XX), the HTML characters < > & and the JavaScript line
// separators U+2028 and U+2029 as \uXXXX, and every byte that is not part of
// valid UTF-8 as \ufffd.
func appendHeaderString(b []byte, s string) []byte {
	b = append(b, '"')
	done := 0 // s[done:i] still has to be copied
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[done:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0xF])
			}
			i++
			done = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[done:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[done:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', lowerHex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		done = i
	}
	b = append(b, s[done:]...)
	return append(b, '"')
}

// scanJSONHeader decodes a JSON header without encoding/json. It handles the
// form peers write: one object, each known key at most once and spelt
// exactly, integers without fraction or exponent, strings with valid UTF-8 and
// the standard escapes, extFields an object of strings. Anything else (null
// values, unknown or repeated keys, lone surrogates, numbers out of range,
// syntax errors…) makes it decline, and encoding/json decides.
func scanJSONHeader(b []byte) (*Command, bool) {
	s := headerScanner{b: b}
	if !s.consume('{') {
		return nil, false
	}
	c := new(Command)
	if s.consume('}') {
		return c, s.end()
	}
	var seen uint
	for {
		key, ok := s.str()
		if !ok || !s.consume(':') {
			return nil, false
		}
		var bit uint
		switch string(key) {
		case "code":
			bit = 1 << 0
			c.Code, ok = s.goInt()
		case "extFields":
			bit = 1 << 1
			c.ExtFields, ok = s.stringMap()
		case "flag":
			bit = 1 << 2
			c.Flag, ok = s.goInt()
		case "language":
			bit = 1 << 3
			c.Language, ok = s.text()
		case "opaque":
			bit = 1 << 4
			var n int64
			n, ok = s.int()
			c.Opaque = int32(n)
			ok = ok && int64(c.Opaque) == n
		case "remark":
			bit = 1 << 5
			c.Remark, ok = s.text()
		case "serializeTypeCurrentRPC":
			bit = 1 << 6
			_, ok = s.str()
		case "version":
			bit = 1 << 7
			c.Version, ok = s.goInt()
		default:
			// Unknown, or known in another case, which encoding/json
			// would match case-insensitively.
			return nil, false
		}
		if !ok || seen&bit != 0 {
			return nil, false
		}
		seen |= bit
		if s.consume(',') {
			continue
		}
		if s.consume('}') {
			return c, s.end()
		}
		return nil, false
	}
}

// headerScanner walks a JSON header. Its methods skip leading white space
// and report false on anything outside what scanJSONHeader handles.
type headerScanner struct {
	b []byte
	i int
}

func (s *headerScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *headerScanner) consume(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *headerScanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// int reads an integer of at most 18 digits, which cannot overflow int64;
// longer ones are left to encoding/json.
func (s *headerScanner) int() (int64, bool) {
	s.space()
	i := s.i
	neg := i < len(s.b) && s.b[i] == '-'
	if neg {
		i++
	}
	start := i
	var n int64
	for i < len(s.b) && '0' <= s.b[i] && s.b[i] <= '9' {
		n = n*10 + int64(s.b[i]-'0')
		i++
	}
	if d := i - start; d == 0 || d > 18 || d > 1 && s.b[start] == '0' {
		return 0, false
	}
	s.i = i
	if neg {
		n = -n
	}
	return n, true
}

// goInt reads an integer that fits Go's int.
func (s *headerScanner) goInt() (int, bool) {
	n, ok := s.int()
	return int(n), ok && int64(int(n)) == n
}

// str reads a string and returns its decoded bytes, which alias the input
// when it holds no escape.
func (s *headerScanner) str() ([]byte, bool) {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	ascii, escaped := true, false
	i := plainRun(s.b, start)
	for ; i < len(s.b) && s.b[i] != '"'; i = plainRun(s.b, i+1) {
		switch c := s.b[i]; {
		case c == '\\':
			escaped = true
			i++ // the escaped byte, possibly a quote
		case c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	if i >= len(s.b) {
		return nil, false
	}
	raw := s.b[start:i]
	s.i = i + 1
	// Escapes are ASCII and cannot split a multi-byte sequence, so the raw
	// bytes are valid UTF-8 exactly when the decoded ones are.
	if !ascii && !utf8.Valid(raw) {
		return nil, false // encoding/json substitutes U+FFFD
	}
	if !escaped {
		return raw, true
	}
	return unescapeHeaderString(raw)
}

// text reads a string value; the language names peers send are shared
// rather than allocated for every frame.
func (s *headerScanner) text() (string, bool) {
	b, ok := s.str()
	if !ok {
		return "", false
	}
	switch string(b) {
	case "JAVA":
		return "JAVA", true
	case LanguageGo:
		return LanguageGo, true
	}
	return string(b), true
}

// stringMap reads an object of strings; {} is an empty map, as encoding/json
// makes it.
func (s *headerScanner) stringMap() (map[string]string, bool) {
	if !s.consume('{') {
		return nil, false
	}
	m := make(map[string]string)
	if s.consume('}') {
		return m, true
	}
	for {
		k, ok := s.str()
		if !ok || !s.consume(':') {
			return nil, false
		}
		v, ok := s.str()
		if !ok {
			return nil, false
		}
		m[string(k)] = string(v) // a repeated key keeps its last value, as in encoding/json
		if s.consume(',') {
			continue
		}
		if s.consume('}') {
			return m, true
		}
		return nil, false
	}
}

// unescapeHeaderString decodes the escapes of a string's raw bytes. \uXXXX
// outside the surrogate range is decoded; surrogates, whose pairing rules
// encoding/json applies, are left to it.
func unescapeHeaderString(raw []byte) ([]byte, bool) {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i++; i == len(raw) {
			return nil, false
		}
		switch raw[i] {
		case '"', '\\', '/':
			out = append(out, raw[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if len(raw)-i <= 4 {
				return nil, false
			}
			var r rune
			for _, h := range raw[i+1 : i+5] {
				var v byte
				switch {
				case '0' <= h && h <= '9':
					v = h - '0'
				case 'a' <= h && h <= 'f':
					v = h - 'a' + 10
				case 'A' <= h && h <= 'F':
					v = h - 'A' + 10
				default:
					return nil, false
				}
				r = r<<4 | rune(v)
			}
			if 0xD800 <= r && r <= 0xDFFF {
				return nil, false
			}
			out = utf8.AppendRune(out, r)
			i += 4
		default:
			return nil, false
		}
	}
	return out, true
}

// Binary ("ROCKETMQ") header, PROTOCOL.md §1.3.
var languageCodes = []string{"JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP", "GO", "PHP", "OMS", "RUST", "NODE_JS"}

func languageByte(name string) byte {
	for i, n := range languageCodes {
		if n == name {
			return byte(i)
		}
	}
	return 7 // OTHER
}

// encodeBinaryHeader refuses values the binary form cannot carry (code and
// version are Java shorts, keys have 16-bit lengths) instead of truncating
// them into a different request.
func encodeBinaryHeader(c *Command) ([]byte, error) {
	if c.Code < math.MinInt16 || c.Code > math.MaxInt16 {
		return nil, fmt.Errorf("rocketmq: code %d does not fit the binary header", c.Code)
	}
	if c.Version < math.MinInt16 || c.Version > math.MaxInt16 {
		return nil, fmt.Errorf("rocketmq: version %d does not fit the binary header", c.Version)
	}
	if c.Flag < math.MinInt32 || c.Flag > math.MaxInt32 {
		return nil, fmt.Errorf("rocketmq: flag %d does not fit the binary header", c.Flag)
	}
	b := make([]byte, 0, 21+len(c.Remark)+32*len(c.ExtFields))
	b = binary.BigEndian.AppendUint16(b, uint16(c.Code))
	b = append(b, languageByte(c.Language))
	b = binary.BigEndian.AppendUint16(b, uint16(c.Version))
	b = binary.BigEndian.AppendUint32(b, uint32(c.Opaque))
	b = binary.BigEndian.AppendUint32(b, uint32(c.Flag))
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.Remark)))
	b = append(b, c.Remark...)
	var ext []byte
	keys := make([]string, 0, len(c.ExtFields))
	for k := range c.ExtFields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := c.ExtFields[k]
		if len(k) > math.MaxUint16 {
			return nil, fmt.Errorf("rocketmq: extFields key of %d bytes does not fit the binary header", len(k))
		}
		ext = binary.BigEndian.AppendUint16(ext, uint16(len(k)))
		ext = append(ext, k...)
		ext = binary.BigEndian.AppendUint32(ext, uint32(len(v)))
		ext = append(ext, v...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(ext)))
	return append(b, ext...), nil
}

func decodeBinaryHeader(b []byte) (*Command, error) {
	if len(b) < 21 {
		return nil, frameErr("binary header of %d bytes is shorter than 21", len(b))
	}
	c := &Command{
		Code:    int(int16(binary.BigEndian.Uint16(b[0:2]))),
		Version: int(int16(binary.BigEndian.Uint16(b[3:5]))),
		Opaque:  int32(binary.BigEndian.Uint32(b[5:9])),
		Flag:    int(int32(binary.BigEndian.Uint32(b[9:13]))),
	}
	if l := int(b[2]); l < len(languageCodes) {
		c.Language = languageCodes[l]
	} else {
		c.Language = "OTHER"
	}
	rest := b[13:]
	remark, rest, err := readLenString(rest, 4)
	if err != nil {
		return nil, frameErr("binary header remark: %v", err)
	}
	c.Remark = remark
	if len(rest) < 4 {
		return nil, frameErr("binary header has no extFields length")
	}
	extLen := binary.BigEndian.Uint32(rest[0:4])
	rest = rest[4:]
	if uint64(extLen) > uint64(len(rest)) {
		return nil, frameErr("extFields length %d exceeds header", extLen)
	}
	ext := rest[:extLen]
	for len(ext) > 0 {
		var k, v string
		if k, ext, err = readLenString(ext, 2); err != nil {
			return nil, frameErr("extFields key: %v", err)
		}
		if v, ext, err = readLenString(ext, 4); err != nil {
			return nil, frameErr("extFields value: %v", err)
		}
		if c.ExtFields == nil {
			c.ExtFields = make(map[string]string)
		}
		c.ExtFields[k] = v
	}
	return c, nil
}

// readLenString reads a length-prefixed string whose prefix has n (2 or 4)
// bytes. Invalid UTF-8 is kept as is: Go strings may hold any bytes and the
// values only ever end up in labels after validation.
func readLenString(b []byte, n int) (string, []byte, error) {
	if len(b) < n {
		return "", nil, errors.New("truncated length")
	}
	var l uint64
	if n == 2 {
		l = uint64(binary.BigEndian.Uint16(b))
	} else {
		l = uint64(binary.BigEndian.Uint32(b))
	}
	b = b[n:]
	if l > uint64(len(b)) {
		return "", nil, fmt.Errorf("length %d exceeds remaining %d bytes", l, len(b))
	}
	return string(b[:l]), b[l:], nil
}
