package rmqsim

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The real servers serialize bodies with fastjson 1.x. Its output is not
// standard JSON: map keys that are not strings are written raw (bare integers,
// whole objects), bean members are sorted by name (SortField) and null
// members are left out. The exporter's decoders must cope with exactly that,
// so every simulated body is built as a small value tree and written by this
// encoder instead of encoding/json.

// jv is one JSON value of the tree.
type jv interface {
	appendTo(b []byte, std bool) []byte
}

type (
	jstr    string
	jint    int64
	jdouble float64
	jbool   bool
	jarr    []jv
	// jbean is a Java bean: members sorted by name, nil members omitted.
	jbean map[string]jv
	// jmap is a java.util.Map: entries in the given order. A jstr key is
	// quoted; any other key is written raw, as fastjson does, unless std is
	// set (the BrowserCompatible route variant quotes every key).
	jmap []jentry
)

type jentry struct {
	key jv
	val jv
}

// encodeJSON renders v in fastjson's default form.
func encodeJSON(v jv) []byte { return v.appendTo(make([]byte, 0, 256), false) }

// encodeStdJSON renders v the way a 4.9.4+ NameServer renders standard-JSON
// routes: every map key quoted, non-ASCII escaped.
func encodeStdJSON(v jv) []byte { return v.appendTo(make([]byte, 0, 256), true) }

func (s jstr) appendTo(b []byte, std bool) []byte { return appendJSONString(b, string(s), std) }

func (i jint) appendTo(b []byte, _ bool) []byte { return strconv.AppendInt(b, int64(i), 10) }

func (d jdouble) appendTo(b []byte, _ bool) []byte {
	f := float64(d)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	return append(b, javaDouble(f)...)
}

func (x jbool) appendTo(b []byte, _ bool) []byte { return strconv.AppendBool(b, bool(x)) }

func (a jarr) appendTo(b []byte, std bool) []byte {
	b = append(b, '[')
	for i, v := range a {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendValue(b, v, std)
	}
	return append(b, ']')
}

func (o jbean) appendTo(b []byte, std bool) []byte {
	keys := make([]string, 0, len(o))
	for k, v := range o {
		if v != nil {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k, std)
		b = append(b, ':')
		b = o[k].appendTo(b, std)
	}
	return append(b, '}')
}

func (m jmap) appendTo(b []byte, std bool) []byte {
	b = append(b, '{')
	first := true
	for _, e := range m {
		if e.val == nil || e.key == nil {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		switch k := e.key.(type) {
		case jstr:
			b = appendJSONString(b, string(k), std)
		default:
			if std {
				b = appendJSONString(b, string(k.appendTo(nil, std)), std)
			} else {
				b = k.appendTo(b, std)
			}
		}
		b = append(b, ':')
		b = e.val.appendTo(b, std)
	}
	return append(b, '}')
}

func appendValue(b []byte, v jv, std bool) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	return v.appendTo(b, std)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s with the escapes fastjson uses; std additionally
// escapes every non-ASCII rune as \uXXXX (BrowserCompatible).
func appendJSONString(b []byte, s string, std bool) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				if c < 0x20 {
					b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
				} else {
					b = append(b, c)
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !std {
			b = append(b, s[i:i+size]...)
			i += size
			continue
		}
		if r > 0xFFFF {
			r1, r2 := utf16Pair(r)
			b = appendU(b, r1)
			b = appendU(b, r2)
		} else {
			b = appendU(b, r)
		}
		i += size
	}
	return append(b, '"')
}

func appendU(b []byte, r rune) []byte {
	return append(b, '\\', 'u', hexDigits[(r>>12)&0xF], hexDigits[(r>>8)&0xF], hexDigits[(r>>4)&0xF], hexDigits[r&0xF])
}

func utf16Pair(r rune) (rune, rune) {
	r -= 0x10000
	return 0xD800 + (r>>10)&0x3FF, 0xDC00 + r&0x3FF
}

// javaDouble formats f like Java's Double.toString (and fastjson's Ryu
// writer): shortest round-trip digits, at least one fractional digit, and
// computerized scientific notation outside [1e-3, 1e7).
func javaDouble(f float64) string {
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	abs := math.Abs(f)
	if abs >= 1e-3 && abs < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(s, "e")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	n, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(n)
}

// humanBytes renders n like MixAll.humanReadableByteCount(n, false).
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	exp := int(math.Log(float64(n)) / math.Log(unit))
	if exp > 6 {
		exp = 6
	}
	pre := "KMGTPE"[exp-1 : exp]
	return strconv.FormatFloat(float64(n)/math.Pow(unit, float64(exp)), 'f', 1, 64) + " " + pre + "iB"
}
