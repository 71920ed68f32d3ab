package rocketmq

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// plainRunRef is plainRun one byte at a time.
func plainRunRef(b []byte, i int) int {
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			return i
		}
	}
	return i
}

// rawStringRef is jreader.rawString as it was before plainRun.
func rawStringRef(b []byte) (s []byte, next int, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, 0, false
	}
	ascii := true
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			s := b[1:i]
			if !ascii && !utf8.Valid(s) {
				return nil, 0, false
			}
			return s, i + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, 0, false
}

// headerStrRef is headerScanner.str as it was before plainRun.
func headerStrRef(b []byte) (raw []byte, next int, escaped, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, 0, false, false
	}
	ascii := true
	i := 1
	for ; i < len(b) && b[i] != '"'; i++ {
		switch c := b[i]; {
		case c == '\\':
			escaped = true
			i++
		case c < 0x20:
			return nil, 0, false, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	if i >= len(b) {
		return nil, 0, false, false
	}
	raw = b[1:i]
	if !ascii && !utf8.Valid(raw) {
		return nil, 0, false, false
	}
	return raw, i + 1, escaped, true
}

// scanInputs puts every byte value, alone and in pairs with the bytes
// the scanners treat specially, at every offset of the eight-byte words
// plainRun reads and in the tail after them.
func scanInputs(yield func([]byte) bool) {
	special := []byte{'"', '\\', 0x00, 0x1f, 0x20, 0x7f, 0x80, 0xc3, 0xa9, 0xff, 'a'}
	for c := range 256 {
		for pre := range 19 {
			for post := range 11 {
				b := make([]byte, 0, 1+pre+1+post+1)
				b = append(b, '"')
				b = append(b, bytes.Repeat([]byte{'x'}, pre)...)
				b = append(b, byte(c))
				b = append(b, bytes.Repeat([]byte{'y'}, post)...)
				if !yield(b) || !yield(append(b, '"')) {
					return
				}
				for _, d := range special {
					if !yield(append(append(b[:len(b):len(b)], d), '"')) {
						return
					}
				}
			}
		}
	}
}

func TestPlainRunEveryByte(t *testing.T) {
	for b := range scanInputs {
		for i := 0; i <= len(b)+1; i++ {
			if got, want := plainRun(b, i), plainRunRef(b, i); got != want {
				t.Fatalf("plainRun(%q, %d) = %d, want %d", b, i, got, want)
			}
		}
	}
}

func TestRawStringEveryByte(t *testing.T) {
	n := 0
	for b := range scanInputs {
		want, wantNext, wantOK := rawStringRef(b)
		r := jreader{b: b}
		got, err := r.rawString()
		if (err == nil) != wantOK || !bytes.Equal(got, want) || (wantOK && r.i != wantNext) {
			t.Fatalf("rawString(%q) = %q, %v, next %d; want %q, ok %v, next %d", b, got, err, r.i, want, wantOK, wantNext)
		}
		if err != nil && err != errFallback {
			t.Fatalf("rawString(%q): %v, want errFallback", b, err)
		}
		if wantOK {
			n++
		}

		raw, next, escaped, ok := headerStrRef(b)
		want = raw
		if ok && escaped {
			want, ok = unescapeHeaderString(raw)
		}
		s := headerScanner{b: b}
		got, gotOK := s.str()
		if gotOK != ok || !bytes.Equal(got, want) || (ok && s.i != next) {
			t.Fatalf("headerScanner.str(%q) = %q, %v, next %d; want %q, %v, next %d", b, got, gotOK, s.i, want, ok, next)
		}
	}
	// Both outcomes must be well represented, or the comparison proves little.
	if n < 1000 {
		t.Fatalf("only %d accepted strings", n)
	}
}
