package collector

// Parsers for the composite values of the GET_BROKER_RUNTIME_INFO table. Every
// value in that table is a Java string; the formats below are those written
// by the broker's StoreStatsService, DefaultMessageStore, ScheduleMessageService
// and AdminBrokerProcessor (4.9.x and 5.x), see PROTOCOL.md §2.2. Each parser
// returns an error for anything it does not recognise so that the caller can
// skip that one metric instead of exporting a guess.

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// tpsWindows are the moving-average windows of the broker's TPS strings, in
// the order it writes them.
var tpsWindows = [...]string{"10s", "60s", "600s"}

// windowValue is one window of a TPS string.
type windowValue struct {
	Window string
	Value  float64
}

// parseTPS parses a TPS string such as "4.899 3.515 " or "12.0  ": three
// fields joined by single spaces, one per window of tpsWindows. A window with
// too few samples (the first 10 s, 60 s or 600 s after boot) is an empty
// field; it is left out of the result rather than reported as 0, which would
// read as "no traffic". The result is empty, not an error, when no window has
// data yet.
func parseTPS(s string) ([]windowValue, error) {
	fields := strings.Split(s, " ")
	if len(fields) > len(tpsWindows) {
		return nil, fmt.Errorf("tps %q: %d fields, want at most %d", s, len(fields), len(tpsWindows))
	}
	out := make([]windowValue, 0, len(fields))
	for i, f := range fields {
		if f == "" {
			continue
		}
		v, err := parseJavaDouble(f)
		if err != nil {
			return nil, fmt.Errorf("tps %q: window %s: %w", s, tpsWindows[i], err)
		}
		if v < 0 {
			return nil, fmt.Errorf("tps %q: window %s: negative", s, tpsWindows[i])
		}
		out = append(out, windowValue{Window: tpsWindows[i], Value: v})
	}
	return out, nil
}

// parseJavaDouble parses Double.toString or String.format("%.2f") output.
// String.format uses the JVM's default locale, so a broker running in, say, a
// German locale writes "20,00"; a lone comma is therefore read as the decimal
// separator (Java never groups digits in these values). NaN and infinities
// (a zero time delta in the broker's arithmetic) are rejected: they carry no
// usable value.
func parseJavaDouble(s string) (float64, error) {
	if strings.Count(s, ",") == 1 && !strings.Contains(s, ".") {
		s = strings.Replace(s, ",", ".", 1)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("not a finite number: %q", s)
	}
	return v, nil
}

// parseJavaLong parses String.valueOf(long).
func parseJavaLong(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not an integer: %q", s)
	}
	return v, nil
}

// parseJavaBool parses String.valueOf(boolean).
func parseJavaBool(s string) (bool, error) {
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean: %q", s)
}

// byteUnits are the suffixes of MixAll.humanReadableByteCount: binary units
// (si=false, what the broker uses) and, for completeness, the SI ones.
var byteUnits = map[string]float64{
	"B":   1,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50, "EiB": 1 << 60,
	"kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15, "EB": 1e18,
}

// parseHumanBytes parses MixAll.humanReadableByteCount output: "0 B",
// "395 B", "3.3 KiB", "1.5 MiB", "252.0 GiB" (one decimal, locale-dependent
// separator). The broker rounds to one decimal of the unit, so the result is
// only as exact as that; it is rounded to whole bytes. Negative sizes (the
// broker formats -1 as "-1 B") are rejected.
func parseHumanBytes(s string) (float64, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		return 0, fmt.Errorf("size %q: want \"<number> <unit>\"", s)
	}
	mult, ok := byteUnits[strings.TrimSpace(unit)]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q", s, unit)
	}
	v, err := parseJavaDouble(num)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	if v < 0 {
		return 0, fmt.Errorf("size %q: negative", s)
	}
	b := math.Round(v * mult)
	if math.IsInf(b, 0) {
		return 0, fmt.Errorf("size %q: out of range", s)
	}
	return b, nil
}

// dirCapacityRE matches "Total : 252.0 GiB, Free : 78.4 GiB.". The sizes are
// matched lazily so that a comma decimal separator ("252,0 GiB") stays inside
// its size.
var dirCapacityRE = regexp.MustCompile(`^Total\s*:\s*(.+?)\s*,\s*Free\s*:\s*(.+?)\s*\.?$`)

// parseDirCapacity parses commitLogDirCapacity into total and free bytes of
// the filesystem holding storePathRootDir ("Free" is usable space on 4.9 and
// free space on 5.x).
func parseDirCapacity(s string) (total, free float64, err error) {
	m := dirCapacityRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, 0, fmt.Errorf("dir capacity %q: want \"Total : <size>, Free : <size>.\"", s)
	}
	if total, err = parseHumanBytes(m[1]); err != nil {
		return 0, 0, fmt.Errorf("dir capacity total: %w", err)
	}
	if free, err = parseHumanBytes(m[2]); err != nil {
		return 0, 0, fmt.Errorf("dir capacity free: %w", err)
	}
	return total, free, nil
}

// latencyBucket is one bucket of putMessageDistributeTime.
type latencyBucket struct {
	// Range is the broker's own bucket name without brackets, e.g. "0~10ms".
	Range string
	Count float64
}

// maxLatencyBuckets bounds the "range" label: the broker has 13 fixed
// buckets; anything much larger is not this format.
const maxLatencyBuckets = 32

// errNoData marks a value the broker writes before it has anything to say
// (putMessageDistributeTime is "null" until the first minute has passed).
var errNoData = errors.New("no data yet")

// parseDistribution parses putMessageDistributeTime, the put latency
// histogram of the last full minute: "[<=0ms]:79 [0~10ms]:18 … [10s~]:0 ".
// It returns errNoData for "null".
func parseDistribution(s string) ([]latencyBucket, error) {
	if s == "null" {
		return nil, errNoData
	}
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, fmt.Errorf("latency distribution %q: empty", s)
	}
	if len(fields) > maxLatencyBuckets {
		return nil, fmt.Errorf("latency distribution: %d buckets, want at most %d", len(fields), maxLatencyBuckets)
	}
	out := make([]latencyBucket, 0, len(fields))
	seen := make(map[string]bool, len(fields))
	for _, f := range fields {
		i := strings.LastIndex(f, "]:")
		if !strings.HasPrefix(f, "[") || i < 2 {
			return nil, fmt.Errorf("latency distribution bucket %q: want \"[range]:count\"", f)
		}
		name := f[1:i]
		if seen[name] {
			return nil, fmt.Errorf("latency distribution: bucket %q twice", name)
		}
		seen[name] = true
		n, err := strconv.ParseUint(f[i+2:], 10, 63)
		if err != nil {
			return nil, fmt.Errorf("latency distribution bucket %q: bad count", f)
		}
		out = append(out, latencyBucket{Range: name, Count: float64(n)})
	}
	return out, nil
}

// maxDelayLevel bounds the "level" label of the schedule metrics. The broker
// has 18 levels by default (messageDelayLevel); operators may configure more,
// but not hundreds.
const maxDelayLevel = 1000

// parseDelayLevel parses the <level> suffix of scheduleMessageOffset_<level>.
func parseDelayLevel(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxDelayLevel || strconv.Itoa(n) != s {
		return 0, fmt.Errorf("delay level %q: want an integer 1..%d", s, maxDelayLevel)
	}
	return n, nil
}

// parseScheduleOffset parses a scheduleMessageOffset_<level> value,
// "<delayOffset>,<maxOffset>": how far the schedule service has delivered the
// level's queue in SCHEDULE_TOPIC_XXXX and that queue's max offset.
func parseScheduleOffset(s string) (delay, maxOffset int64, err error) {
	d, m, ok := strings.Cut(s, ",")
	if !ok {
		return 0, 0, fmt.Errorf("schedule offset %q: want \"<delay>,<max>\"", s)
	}
	if delay, err = parseJavaLong(d); err != nil {
		return 0, 0, fmt.Errorf("schedule offset %q: %w", s, err)
	}
	if maxOffset, err = parseJavaLong(m); err != nil {
		return 0, 0, fmt.Errorf("schedule offset %q: %w", s, err)
	}
	return delay, maxOffset, nil
}
