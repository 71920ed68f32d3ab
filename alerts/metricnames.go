// Package alerts holds the Prometheus rule files of rocketmq_exporter
// (alerting rules, the recording rules they use, and recording rules that
// reproduce the Java exporter's metric names) with their promtool unit tests,
// and the helpers that check which metrics rules and dashboards use.
//
// The rule files are the source: deploy/kubernetes/prometheusrule.yaml is
// generated from them by tools/cmd/gen, and tools/cmd/rulegen renders
// variants with extra selectors.
package alerts

import (
	"fmt"
	"sort"
	"strings"
)

// MetricNames returns the sorted, de-duplicated metric names that a PromQL
// expression selects. It is a lexer, not a parser: it does not need the
// Prometheus module (so the main module stays free of it) and it only has to
// tell metric names from every other identifier. Its answers are checked
// against the real PromQL parser for every rule and dashboard expression by
// the tools module (testdata/expressions.json).
//
// Grafana template variables are accepted where dashboards put them: inside
// strings ("$cluster") and range brackets ([$__rate_interval]).
func MetricNames(expr string) ([]string, error) {
	l := lexer{s: expr}
	seen := map[string]bool{}
	for {
		tok, err := l.next()
		if err != nil {
			return nil, err
		}
		if tok.kind == tokEOF {
			break
		}
		if tok.kind == tokMetric {
			seen[tok.text] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokMetric
	tokOther
)

type token struct {
	kind tokKind
	text string
}

// keywords are the PromQL words that are never metric names in selector
// position. Aggregation operators and functions are recognised by the "("
// (or "by"/"without") that follows them, so unknown future functions do not
// turn into metric names.
var keywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true,
	"by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true, "start": true, "end": true,
	"inf": true, "nan": true, "atan2": true,
}

// labelListKeywords are followed by a parenthesised list of label names.
var labelListKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true,
}

type lexer struct {
	s   string
	pos int
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func (l *lexer) skipSpace() {
	for l.pos < len(l.s) {
		c := l.s[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			l.pos++
		case c == '#':
			for l.pos < len(l.s) && l.s[l.pos] != '\n' {
				l.pos++
			}
		default:
			return
		}
	}
}

// skipString skips a quoted string starting at l.pos and returns its raw
// content.
func (l *lexer) skipString() (string, error) {
	q := l.s[l.pos]
	start := l.pos
	l.pos++
	for l.pos < len(l.s) {
		c := l.s[l.pos]
		if c == '\\' && q != '`' {
			l.pos += 2
			continue
		}
		l.pos++
		if c == q {
			return l.s[start+1 : l.pos-1], nil
		}
	}
	return "", fmt.Errorf("unterminated string at offset %d", start)
}

// skipBracket skips a range/subquery bracket "[5m]", "[$__rate_interval]",
// "[1h:5m]".
func (l *lexer) skipBracket() error {
	start := l.pos
	end := strings.IndexByte(l.s[l.pos:], ']')
	if end < 0 {
		return fmt.Errorf("unterminated '[' at offset %d", start)
	}
	l.pos += end + 1
	return nil
}

// matchers scans a "{...}" label matcher list and returns the metric name
// given by a __name__ equality matcher, if any.
func (l *lexer) matchers() (string, error) {
	start := l.pos
	l.pos++ // '{'
	name := ""
	for {
		l.skipSpace()
		if l.pos >= len(l.s) {
			return "", fmt.Errorf("unterminated '{' at offset %d", start)
		}
		c := l.s[l.pos]
		switch {
		case c == '}':
			l.pos++
			return name, nil
		case c == ',':
			l.pos++
		case isIdentStart(c):
			ls := l.pos
			for l.pos < len(l.s) && isIdentChar(l.s[l.pos]) {
				l.pos++
			}
			label := l.s[ls:l.pos]
			l.skipSpace()
			os := l.pos
			for l.pos < len(l.s) && strings.IndexByte("=!~", l.s[l.pos]) >= 0 {
				l.pos++
			}
			op := l.s[os:l.pos]
			l.skipSpace()
			if l.pos >= len(l.s) || strings.IndexByte("\"'`", l.s[l.pos]) < 0 {
				return "", fmt.Errorf("label %s: want a quoted value at offset %d", label, l.pos)
			}
			v, err := l.skipString()
			if err != nil {
				return "", err
			}
			if label == "__name__" {
				if op != "=" {
					return "", fmt.Errorf("__name__%s%q: only an exact __name__ matcher names a metric", op, v)
				}
				name = v
			}
		default:
			return "", fmt.Errorf("unexpected %q in label matchers at offset %d", c, l.pos)
		}
	}
}

// skipLabelList skips the "(a, b)" after by/without/on/ignoring/group_x.
func (l *lexer) skipLabelList() error {
	l.skipSpace()
	if l.pos >= len(l.s) || l.s[l.pos] != '(' {
		return nil // group_left without labels
	}
	end := strings.IndexByte(l.s[l.pos:], ')')
	if end < 0 {
		return fmt.Errorf("unterminated label list at offset %d", l.pos)
	}
	l.pos += end + 1
	return nil
}

func (l *lexer) next() (token, error) {
	for {
		l.skipSpace()
		if l.pos >= len(l.s) {
			return token{kind: tokEOF}, nil
		}
		c := l.s[l.pos]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if _, err := l.skipString(); err != nil {
				return token{}, err
			}
		case c == '[':
			if err := l.skipBracket(); err != nil {
				return token{}, err
			}
		case c == '{':
			// A selector without a name before it: {__name__="x"}.
			name, err := l.matchers()
			if err != nil {
				return token{}, err
			}
			if name != "" {
				return token{kind: tokMetric, text: name}, nil
			}
		case (c >= '0' && c <= '9') || (c == '.' && l.pos+1 < len(l.s) && l.s[l.pos+1] >= '0' && l.s[l.pos+1] <= '9'):
			// Numbers (1e3, 0x1f, .5) and durations (5m, 1h30m).
			for l.pos < len(l.s) && (isIdentChar(l.s[l.pos]) || l.s[l.pos] == '.') {
				l.pos++
			}
			// An exponent sign: 1e-3.
			if l.pos < len(l.s) && (l.s[l.pos] == '-' || l.s[l.pos] == '+') && (l.s[l.pos-1] == 'e' || l.s[l.pos-1] == 'E') {
				l.pos++
				for l.pos < len(l.s) && isIdentChar(l.s[l.pos]) {
					l.pos++
				}
			}
		case c == '$':
			// A Grafana variable outside a string is not PromQL.
			return token{}, fmt.Errorf("template variable outside a string or range at offset %d", l.pos)
		case isIdentStart(c):
			start := l.pos
			for l.pos < len(l.s) && isIdentChar(l.s[l.pos]) {
				l.pos++
			}
			word := l.s[start:l.pos]
			lower := strings.ToLower(word)
			if labelListKeywords[lower] {
				if err := l.skipLabelList(); err != nil {
					return token{}, err
				}
				continue
			}
			if keywords[lower] {
				continue
			}
			save := l.pos
			l.skipSpace()
			if l.pos < len(l.s) && l.s[l.pos] == '(' {
				continue // function or aggregation call
			}
			if l.pos < len(l.s) && isIdentStart(l.s[l.pos]) {
				// "sum by (…) (…)", "topk without (…)": an aggregation whose
				// modifier comes first.
				ws := l.pos
				for l.pos < len(l.s) && isIdentChar(l.s[l.pos]) {
					l.pos++
				}
				mod := strings.ToLower(l.s[ws:l.pos])
				l.pos = ws
				if mod == "by" || mod == "without" {
					continue
				}
			}
			l.pos = save
			if l.pos < len(l.s) && l.s[l.pos] == '{' {
				if _, err := l.matchers(); err != nil {
					return token{}, err
				}
			}
			return token{kind: tokMetric, text: word}, nil
		default:
			l.pos++ // operators and punctuation
		}
	}
}
