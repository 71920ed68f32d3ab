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
	"sort"
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
	var header []byte
	switch c.SerializeType {
	case SerializeJSON:
		h := jsonHeader{
			Code: c.Code, ExtFields: c.ExtFields, Flag: c.Flag, Language: c.Language,
			Opaque: c.Opaque, Remark: c.Remark, Version: c.Version,
		}
		if len(h.ExtFields) == 0 {
			h.ExtFields = nil
		}
		if c.Language == "JAVA" {
			h.SerializeTypeCurrentRPC = "JSON"
		}
		var err error
		if header, err = json.Marshal(&h); err != nil {
			return nil, err
		}
	case SerializeRocketMQ:
		var err error
		if header, err = encodeBinaryHeader(c); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("rocketmq: unknown serialize type %d", c.SerializeType)
	}
	if len(header) > 0xFFFFFF {
		return nil, fmt.Errorf("rocketmq: header of %d bytes exceeds 24 bits", len(header))
	}
	total := 4 + len(header) + len(c.Body)
	if total > 0x7FFFFFFF-4 {
		return nil, fmt.Errorf("rocketmq: frame of %d bytes too large", total)
	}
	buf := make([]byte, 8, 4+total)
	binary.BigEndian.PutUint32(buf[0:4], uint32(total))
	binary.BigEndian.PutUint32(buf[4:8], uint32(c.SerializeType)<<24|uint32(len(header)))
	buf = append(buf, header...)
	buf = append(buf, c.Body...)
	return buf, nil
}

// ReadFrame reads one frame from r. A frame larger than maxFrame (the value of
// the length prefix) is refused before anything is allocated for it.
func ReadFrame(r io.Reader, maxFrame int) (*Command, error) {
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
	frame, err := readFrameBody(r, int(total))
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return DecodeFrame(frame)
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

func decodeJSONHeader(b []byte) (*Command, error) {
	var h jsonHeader
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, frameErr("JSON header: %v", err)
	}
	return &Command{
		Code: h.Code, Language: h.Language, Version: h.Version, Opaque: h.Opaque,
		Flag: h.Flag, Remark: h.Remark, ExtFields: h.ExtFields,
	}, nil
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
