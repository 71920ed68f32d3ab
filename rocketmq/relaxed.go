package rocketmq

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// fastjson, which every RocketMQ server uses for bodies, writes map keys that
// are not strings as their JSON value: bare integers ({0:"a"}) for
// Map<Long,…> and whole objects ({{"topic":…}:{…}}) for Map<MessageQueue,…>.
// Normalize rewrites exactly those keys into JSON strings holding their raw
// text so that encoding/json can take over (PROTOCOL.md §3.5). The scanner is
// iterative with an explicit, bounded stack: bodies come from the network and
// must never be able to exhaust the goroutine stack.

// MaxNestingDepth bounds the nesting of objects and arrays Normalize accepts.
// The deepest real body (consume stats: object, list, map, list, object, map
// with object keys) nests fewer than ten levels.
const MaxNestingDepth = 512

// RelaxedSyntaxError reports input that is not JSON even with relaxed keys.
type RelaxedSyntaxError struct {
	Offset int // byte offset of the problem in the input
	Msg    string
}

func (e *RelaxedSyntaxError) Error() string {
	return fmt.Sprintf("rocketmq: relaxed JSON: %s at offset %d", e.Msg, e.Offset)
}

// scanner states.
const (
	stValue        = iota // a value is required
	stValueOrClose        // just after '[': a value or ']'
	stKey                 // an object key is required (after ',')
	stKeyOrClose          // just after '{': a key or '}'
	stColon               // after a key: ':' is required
	stAfterMember         // after a member value: ',' or '}'
	stAfterElement        // after an array element: ',' or ']'
	stEnd                 // the top-level value is complete
)

// container is one open object or array.
type container struct {
	close byte // '}' or ']'
	// keyStart >= 0 marks a container that is itself an object key: its raw
	// input text starts at keyStart and its output at outStart, which is
	// where the quoted form replaces it once it closes.
	keyStart int
	outStart int
}

// Normalize returns b with every object key that is not a JSON string
// (numbers, true/false/null, objects, arrays) replaced by a JSON string of
// its raw text; everything else is left byte-identical. It fails on input
// that is not JSON apart from such keys, and on nesting deeper than
// MaxNestingDepth. When nothing needs rewriting the result is b itself.
func Normalize(b []byte) ([]byte, error) {
	var (
		out    []byte // nil until the first rewrite
		copied int    // b[:copied] is already reflected in out
		stack  []container
		state  = stValue
	)
	// flushTo makes out reflect b[:i] so a rewrite can be appended.
	flushTo := func(i int) {
		if out == nil {
			out = make([]byte, 0, len(b)+len(b)/16+16)
		}
		out = append(out, b[copied:i]...)
		copied = i
	}
	// rewriteKey replaces the raw key text b[start:end], whose output begins
	// at outStart, by its quoted form.
	rewriteKey := func(start, end, outStart int) {
		out = appendJSONString(out[:outStart], b[start:end])
		copied = end
	}
	// valueDone moves to the state that follows a completed value.
	valueDone := func(wasKey bool) {
		switch {
		case len(stack) == 0:
			state = stEnd
		case wasKey:
			state = stColon
		case stack[len(stack)-1].close == ']':
			state = stAfterElement
		default:
			state = stAfterMember
		}
	}
	// closeTop closes the innermost container; its closing byte ends at end.
	closeTop := func(end int) {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if top.keyStart >= 0 {
			rewriteKey(top.keyStart, end, top.outStart)
		}
		valueDone(top.keyStart >= 0)
	}

	i := 0
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			break
		}
		c := b[i]
		switch state {
		case stEnd:
			return nil, &RelaxedSyntaxError{i, "data after the top-level value"}
		case stColon:
			if c != ':' {
				return nil, &RelaxedSyntaxError{i, "expected ':' after object key"}
			}
			i++
			state = stValue
			continue
		case stAfterMember, stAfterElement:
			top := stack[len(stack)-1]
			switch {
			case c == ',':
				i++
				if state == stAfterMember {
					state = stKey
				} else {
					state = stValue
				}
				continue
			case c == top.close:
				i++
				closeTop(i)
				continue
			default:
				return nil, &RelaxedSyntaxError{i, fmt.Sprintf("expected ',' or '%c'", top.close)}
			}
		}

		// state is one of stValue, stValueOrClose, stKey, stKeyOrClose.
		if (state == stValueOrClose && c == ']') || (state == stKeyOrClose && c == '}') {
			i++
			closeTop(i)
			continue
		}
		key := state == stKey || state == stKeyOrClose
		switch c {
		case '{', '[':
			if len(stack) >= MaxNestingDepth {
				return nil, &RelaxedSyntaxError{i, "nesting too deep"}
			}
			ct := container{close: '}', keyStart: -1}
			if c == '[' {
				ct.close = ']'
			}
			if key {
				flushTo(i)
				ct.keyStart, ct.outStart = i, len(out)
			}
			stack = append(stack, ct)
			i++
			if c == '{' {
				state = stKeyOrClose
			} else {
				state = stValueOrClose
			}
			continue
		case '"':
			end, err := scanString(b, i)
			if err != nil {
				return nil, err
			}
			i = end
		default:
			end, err := scanScalar(b, i)
			if err != nil {
				return nil, err
			}
			if key {
				flushTo(i)
				rewriteKey(i, end, len(out))
			}
			i = end
		}
		valueDone(key)
	}
	if state != stEnd {
		return nil, &RelaxedSyntaxError{len(b), "unexpected end of input"}
	}
	if out == nil {
		return b, nil
	}
	return append(out, b[copied:]...), nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString returns the offset just past the JSON string starting at b[i].
// It is as strict as encoding/json: no raw control characters, only the
// standard escapes.
func scanString(b []byte, i int) (int, error) {
	start := i
	i++
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(b) {
				return 0, &RelaxedSyntaxError{i, "unterminated escape"}
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, &RelaxedSyntaxError{i, "short \\u escape"}
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return 0, &RelaxedSyntaxError{i, "bad \\u escape"}
					}
				}
				i += 6
			default:
				return 0, &RelaxedSyntaxError{i, "bad escape"}
			}
		case c < 0x20:
			return 0, &RelaxedSyntaxError{i, "control character in string"}
		default:
			i++
		}
	}
	return 0, &RelaxedSyntaxError{start, "unterminated string"}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanScalar returns the offset just past the number or literal at b[i].
func scanScalar(b []byte, i int) (int, error) {
	var lit string
	switch b[i] {
	case 't':
		lit = "true"
	case 'f':
		lit = "false"
	case 'n':
		lit = "null"
	default:
		return scanNumber(b, i)
	}
	end := i + len(lit)
	if end > len(b) || string(b[i:end]) != lit || (end < len(b) && isIdentByte(b[end])) {
		return 0, &RelaxedSyntaxError{i, "invalid literal"}
	}
	return end, nil
}

func isIdentByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '_'
}

// scanNumber accepts exactly the JSON number grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) (int, error) {
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && isDigit(b[i]):
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return 0, &RelaxedSyntaxError{start, "invalid value"}
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return 0, &RelaxedSyntaxError{start, "invalid number"}
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return 0, &RelaxedSyntaxError{start, "invalid number"}
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (isIdentByte(b[i]) || b[i] == '.') {
		return 0, &RelaxedSyntaxError{start, "invalid number"}
	}
	return i, nil
}

// appendJSONString appends s as a JSON string. Only what JSON requires is
// escaped so that the key's text survives unchanged; bytes >= 0x80 pass
// through as the input had them.
func appendJSONString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// Unmarshal decodes a fastjson body into v: Normalize, then encoding/json
// with UseNumber so that values landing in interface fields keep their exact
// digits instead of becoming float64.
func Unmarshal(b []byte, v any) error {
	nb, err := Normalize(b)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(nb))
	dec.UseNumber()
	return dec.Decode(v)
}

// The hot decoders (topic stats, consume stats, consumer connections, topic
// config: tens of thousands of bodies per scrape on a large cluster) do not
// go through Normalize and encoding/json: a jreader walks the fastjson body
// once and they fill their typed result directly. A jreader gives up
// (errFallback) on anything it is not sure to read exactly as the generic
// path would (escaped keys, fields matching only case-insensitively,
// non-integer numbers, repeated queues, …); the decoder then runs the generic
// path, so results and error messages never depend on which path ran.

// errFallback makes a fast decoder hand the body to the generic path.
var errFallback = errors.New("rocketmq: fast decoder gives up")

// jreader is a cursor over a relaxed JSON document.
type jreader struct {
	b     []byte
	i     int
	depth int
	// The last topic and broker name a MessageQueue key held: every key of
	// a table repeats them, and sharing one string per run saves two
	// allocations per queue. They live as long as the decode call.
	topic, broker string
}

func (r *jreader) peek() byte {
	r.i = skipSpace(r.b, r.i)
	if r.i >= len(r.b) {
		return 0
	}
	return r.b[r.i]
}

// null consumes a null literal if one is next.
func (r *jreader) null() bool {
	if r.peek() == 'n' && r.i+4 <= len(r.b) && string(r.b[r.i:r.i+4]) == "null" {
		end, err := scanScalar(r.b, r.i)
		if err != nil {
			return false
		}
		r.i = end
		return true
	}
	return false
}

func (r *jreader) expect(c byte) error {
	if r.peek() != c {
		return errFallback
	}
	r.i++
	return nil
}

// end checks that nothing but white space follows the top-level value.
func (r *jreader) end() error {
	if r.peek() != 0 || r.i < len(r.b) {
		return errFallback
	}
	return nil
}

// enter opens an object or array; the caller then loops on more.
func (r *jreader) enter(open byte) error {
	if r.depth >= MaxNestingDepth {
		return errFallback
	}
	if err := r.expect(open); err != nil {
		return err
	}
	r.depth++
	return nil
}

// more reports whether another member or element follows in the container
// closed by close, consuming the separating comma or the closing byte.
func (r *jreader) more(close byte, first bool) (bool, error) {
	c := r.peek()
	if c == close {
		r.i++
		r.depth--
		return false, nil
	}
	if !first {
		if c != ',' {
			return false, errFallback
		}
		r.i++
		if r.peek() == close { // trailing comma
			return false, errFallback
		}
	}
	return true, nil
}

// key reads a plain string key and the colon after it. Keys that are not
// strings, or that hold escapes, give up.
func (r *jreader) key() ([]byte, error) {
	if r.peek() != '"' {
		return nil, errFallback
	}
	k, err := r.rawString()
	if err != nil {
		return nil, err
	}
	return k, r.expect(':')
}

// rawString reads a string without escapes and returns its bytes (a view
// into the body). Escapes, control characters, invalid UTF-8 and a missing
// closing quote give up, in one pass over the bytes.
func (r *jreader) rawString() ([]byte, error) {
	if r.peek() != '"' {
		return nil, errFallback
	}
	start := r.i + 1
	ascii := true
	for i := plainRun(r.b, start); i < len(r.b); i = plainRun(r.b, i+1) {
		switch c := r.b[i]; {
		case c == '"':
			s := r.b[start:i]
			if !ascii && !utf8.Valid(s) {
				return nil, errFallback
			}
			r.i = i + 1
			return s, nil
		case c == '\\' || c < 0x20:
			return nil, errFallback
		default: // c >= utf8.RuneSelf
			ascii = false
		}
	}
	return nil, errFallback
}

// SWAR constants: a byte repeated in each lane of a word.
const (
	laneOnes  = 0x0101010101010101
	laneHighs = 0x8080808080808080
)

// plainRun returns the index of the first byte at or after i that a string
// scanner must look at ('"', '\', a control character or a byte >= 0x80),
// or len(b). Names make up most of a body, so it tests eight bytes per step:
// in a lane below the first such byte, the byte is in 0x20..0x7f and is
// neither quote nor backslash, so none of the three subtractions borrows
// out of it or sets its high bit; in the first such lane, x's own high bit
// (>= 0x80) or one of the subtractions (< 0x20, quote, backslash) sets it.
// Lanes above may be wrong, so only the lowest set bit is used.
func plainRun(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q := x ^ (laneOnes * '"')
		e := x ^ (laneOnes * '\\')
		m := (x | (x - laneOnes*0x20) | (q - laneOnes) | (e - laneOnes)) & laneHighs
		if m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			return i
		}
	}
	return i
}

// stringOrNull reads a string value as a view into the body; ok is false
// for null, which leaves the caller's destination as it is, as
// encoding/json does.
func (r *jreader) stringOrNull() (s []byte, ok bool, err error) {
	if r.null() {
		return nil, false, nil
	}
	s, err = r.rawString()
	return s, err == nil, err
}

// str reads a string value into *dst.
func (r *jreader) str(dst *string) error {
	s, ok, err := r.stringOrNull()
	if ok {
		*dst = string(s)
	}
	return err
}

// view reads a string value like str, but leaves it in *dst as a view into
// the body (non-nil, even when empty) for the caller to copy.
func (r *jreader) view(dst *[]byte) error {
	s, ok, err := r.stringOrNull()
	if ok {
		*dst = s
	}
	return err
}

// strReuse reads a string value like str, reusing *last when the bytes
// are the same instead of allocating a copy; *last then holds the value.
func (r *jreader) strReuse(dst, last *string) error {
	s, ok, err := r.stringOrNull()
	if ok {
		if string(s) != *last {
			*last = string(s)
		}
		*dst = *last
	}
	return err
}

// enum reads a string value like str; the values of enumerated fields that
// every body repeats come from constants and cost no allocation.
func (r *jreader) enum(dst *string) error {
	s, ok, err := r.stringOrNull()
	if ok {
		*dst = enumString(s)
	}
	return err
}

// enumString is string(s), without allocating for the values of the enums
// the hot bodies carry (Java enum names, the "*" subscription, SINGLE_TAG).
func enumString(s []byte) string {
	switch string(s) {
	case "":
		return ""
	case "JAVA":
		return "JAVA"
	case "CPP":
		return "CPP"
	case "GO":
		return "GO"
	case "PYTHON":
		return "PYTHON"
	case "DOTNET":
		return "DOTNET"
	case "RUST":
		return "RUST"
	case "NODE_JS":
		return "NODE_JS"
	case "CONSUME_PASSIVELY":
		return "CONSUME_PASSIVELY"
	case "CONSUME_ACTIVELY":
		return "CONSUME_ACTIVELY"
	case "CONSUME_POP":
		return "CONSUME_POP"
	case "CLUSTERING":
		return "CLUSTERING"
	case "BROADCASTING":
		return "BROADCASTING"
	case "CONSUME_FROM_LAST_OFFSET":
		return "CONSUME_FROM_LAST_OFFSET"
	case "CONSUME_FROM_FIRST_OFFSET":
		return "CONSUME_FROM_FIRST_OFFSET"
	case "CONSUME_FROM_TIMESTAMP":
		return "CONSUME_FROM_TIMESTAMP"
	case "TAG":
		return "TAG"
	case "SQL92":
		return "SQL92"
	case "*":
		return "*"
	case "SINGLE_TAG":
		return "SINGLE_TAG"
	case "MULTI_TAG":
		return "MULTI_TAG"
	}
	return string(s)
}

// number returns the text of the number that comes next.
func (r *jreader) number() ([]byte, error) {
	r.peek()
	end, err := scanNumber(r.b, r.i)
	if err != nil {
		return nil, errFallback
	}
	s := r.b[r.i:end]
	r.i = end
	return s, nil
}

// int reads an integer of bitSize bits into *dst (null: unchanged).
func (r *jreader) int(dst *int64, bitSize int) error {
	if r.null() {
		return nil
	}
	s, err := r.number()
	if err != nil {
		return err
	}
	n, ok := parseInt(s, bitSize)
	if !ok {
		return errFallback
	}
	*dst = n
	return nil
}

// goInt reads a Go int.
func (r *jreader) goInt(dst *int) error {
	v := int64(*dst)
	if err := r.int(&v, strconv.IntSize); err != nil {
		return err
	}
	*dst = int(v)
	return nil
}

// parseInt parses a plain JSON integer without allocating; fractions and
// exponents are refused (encoding/json refuses them for integer fields).
func parseInt(s []byte, bitSize int) (int64, bool) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	// 19 digits hold every int64 and cannot overflow a uint64.
	if len(s) == 0 || len(s) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	limit := uint64(1) << (bitSize - 1)
	if neg {
		if u > limit {
			return 0, false
		}
		return -int64(u), true
	}
	if u >= limit {
		return 0, false
	}
	return int64(u), true
}

// float reads a number into *dst (null: unchanged).
func (r *jreader) float(dst *float64) error {
	if r.null() {
		return nil
	}
	s, err := r.number()
	if err != nil {
		return err
	}
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil {
		return errFallback
	}
	*dst = f
	return nil
}

// bool reads true or false into *dst (null: unchanged).
func (r *jreader) bool(dst *bool) error {
	if r.null() {
		return nil
	}
	if r.i >= len(r.b) { // scanScalar needs a byte to look at
		return errFallback
	}
	end, err := scanScalar(r.b, r.i)
	if err != nil {
		return errFallback
	}
	switch string(r.b[r.i:end]) {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		return errFallback
	}
	r.i = end
	return nil
}

// skip passes over any value, relaxed keys included.
func (r *jreader) skip() error {
	switch c := r.peek(); c {
	case '{', '[':
		close := byte('}')
		if c == '[' {
			close = ']'
		}
		if err := r.enter(c); err != nil {
			return err
		}
		for first := true; ; first = false {
			ok, err := r.more(close, first)
			if err != nil || !ok {
				return err
			}
			if close == '}' {
				if err := r.skip(); err != nil { // any key
					return err
				}
				if err := r.expect(':'); err != nil {
					return err
				}
			}
			if err := r.skip(); err != nil {
				return err
			}
		}
	case '"':
		end, err := scanString(r.b, r.i)
		if err != nil {
			return errFallback
		}
		r.i = end
	case 0:
		return errFallback
	default:
		end, err := scanScalar(r.b, r.i)
		if err != nil {
			return errFallback
		}
		r.i = end
	}
	return nil
}

// unknown skips the value of a key the decoder does not read, unless
// encoding/json would have matched the key to one of the known fields
// case-insensitively.
func (r *jreader) unknown(key []byte, known ...string) error {
	for _, k := range known {
		if bytes.EqualFold(key, []byte(k)) {
			return errFallback
		}
	}
	return r.skip()
}
