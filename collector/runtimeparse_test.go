package collector

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

func TestParseTPS(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []windowValue
		wantErr bool
	}{
		// Shapes recorded from real brokers.
		{in: "4.899020195960808 3.5153191276677274 ", want: []windowValue{{"10s", 4.899020195960808}, {"60s", 3.5153191276677274}}},
		{in: "0.0 0.0 ", want: []windowValue{{"10s", 0}, {"60s", 0}}},
		{in: "0.0  ", want: []windowValue{{"10s", 0}}},
		{in: "  ", want: []windowValue{}},
		{in: "9.898020395920815 4.448294820318878 0.0", want: []windowValue{{"10s", 9.898020395920815}, {"60s", 4.448294820318878}, {"600s", 0}}},
		{in: "1.5 2.5 3.5", want: []windowValue{{"10s", 1.5}, {"60s", 2.5}, {"600s", 3.5}}},
		// Tolerated: no trailing separators, exponent form of Double.toString.
		{in: "", want: []windowValue{}},
		{in: "1.0E-4", want: []windowValue{{"10s", 1e-4}}},
		{in: "1,5 2,5 ", want: []windowValue{{"10s", 1.5}, {"60s", 2.5}}},
		// Malformed.
		{in: "1 2 3 4", wantErr: true},
		{in: "a b c", wantErr: true},
		{in: "1.0 x ", wantErr: true},
		{in: "NaN 1.0 ", wantErr: true},
		{in: "Infinity  ", wantErr: true},
		{in: "-1.0  ", wantErr: true},
		{in: "1.0\t2.0 ", wantErr: true},
	} {
		got, err := parseTPS(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("parseTPS(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseTPS(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseHumanBytes(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{in: "0 B", want: 0},
		{in: "395 B", want: 395},
		{in: "1023 B", want: 1023},
		{in: "3.3 KiB", want: math.Round(3.3 * 1024)},
		{in: "1.5 MiB", want: 1.5 * (1 << 20)},
		{in: "252.0 GiB", want: 252 * (1 << 30)},
		{in: "78.4 GiB", want: math.Round(78.4 * (1 << 30))},
		{in: "2.0 TiB", want: 2 * (1 << 40)},
		{in: "1.0 PiB", want: 1 << 50},
		{in: "7.9 EiB", want: math.Round(7.9 * (1 << 60))},
		{in: "1.5 kB", want: 1500},
		{in: "3,3 KiB", want: math.Round(3.3 * 1024)},
		{in: " 12 B ", want: 12},
		{in: "-1 B", wantErr: true},
		{in: "12", wantErr: true},
		{in: "12 XB", wantErr: true},
		{in: "x KiB", wantErr: true},
		{in: "", wantErr: true},
		{in: "NaN GiB", wantErr: true},
		{in: "1e308 EiB", wantErr: true},
	} {
		got, err := parseHumanBytes(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("parseHumanBytes(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && got != tc.want {
			t.Errorf("parseHumanBytes(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// javaHumanReadableByteCount formats like the broker's
// MixAll.humanReadableByteCount(bytes, false): below 1024 the exact count in
// B, else one decimal of the largest binary unit not above the value.
func javaHumanReadableByteCount(b int64) string {
	if b < 1024 {
		return fmt.Sprintf("%d B", b)
	}
	exp := int(math.Log(float64(b)) / math.Log(1024))
	return fmt.Sprintf("%.1f %ciB", float64(b)/math.Pow(1024, float64(exp)), "KMGTPE"[exp-1])
}

// TestParseHumanBytesRoundTrip checks sizes across every unit against the
// broker's formatting: exact below 1 KiB, within the one-decimal rounding
// above it.
func TestParseHumanBytesRoundTrip(t *testing.T) {
	for _, b := range []int64{0, 1, 1023, 1024, 1536, 3379, 1 << 20, 1<<20 + 1, 5_000_000_000, 270_582_939_648, 1 << 50, math.MaxInt64} {
		s := javaHumanReadableByteCount(b)
		got, err := parseHumanBytes(s)
		if err != nil {
			t.Errorf("parseHumanBytes(%q) for %d: %v", s, b, err)
			continue
		}
		if b < 1024 {
			if got != float64(b) {
				t.Errorf("parseHumanBytes(%q) = %v, want %d", s, got, b)
			}
			continue
		}
		// 0.05 of a unit is at most 5% of a value of at least one unit.
		if rel := math.Abs(got-float64(b)) / float64(b); rel > 0.05 {
			t.Errorf("parseHumanBytes(%q) = %v, %.3f off %d", s, got, rel, b)
		}
	}
}

func TestParseDirCapacity(t *testing.T) {
	for _, tc := range []struct {
		in          string
		total, free float64
		wantErr     bool
	}{
		{in: "Total : 252.0 GiB, Free : 78.4 GiB.", total: 252 * (1 << 30), free: math.Round(78.4 * (1 << 30))},
		{in: "Total : 252.0 GiB, Free : 223.0 GiB.", total: 252 * (1 << 30), free: 223 * (1 << 30)},
		{in: "Total : 0 B, Free : 0 B.", total: 0, free: 0},
		{in: "Total : 252,0 GiB, Free : 78,4 GiB.", total: 252 * (1 << 30), free: math.Round(78.4 * (1 << 30))},
		{in: "Total : 1.0 TiB, Free : 512 B", total: 1 << 40, free: 512},
		{in: "Total: 1.0 KiB, Free: 1.0 KiB.", total: 1024, free: 1024},
		{in: "Total : 252.0 GiB.", wantErr: true},
		{in: "Free : 1 B, Total : 2 B.", wantErr: true},
		{in: "Total : x GiB, Free : 1 B.", wantErr: true},
		{in: "Total : 1 B, Free : -1 B.", wantErr: true},
		{in: "", wantErr: true},
	} {
		total, free, err := parseDirCapacity(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("parseDirCapacity(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && (total != tc.total || free != tc.free) {
			t.Errorf("parseDirCapacity(%q) = %v, %v, want %v, %v", tc.in, total, free, tc.total, tc.free)
		}
	}
}

func TestParseDistribution(t *testing.T) {
	full := "[<=0ms]:79 [0~10ms]:18 [10~50ms]:2 [50~100ms]:0 [100~200ms]:0 [200~500ms]:0 [500ms~1s]:0 [1~2s]:0 [2~3s]:0 [3~4s]:0 [4~5s]:0 [5~10s]:0 [10s~]:0 "
	got, err := parseDistribution(full)
	if err != nil {
		t.Fatalf("parseDistribution(full): %v", err)
	}
	wantRanges := []string{"<=0ms", "0~10ms", "10~50ms", "50~100ms", "100~200ms", "200~500ms", "500ms~1s", "1~2s", "2~3s", "3~4s", "4~5s", "5~10s", "10s~"}
	if len(got) != len(wantRanges) {
		t.Fatalf("parseDistribution(full) = %d buckets, want %d", len(got), len(wantRanges))
	}
	for i, b := range got {
		if b.Range != wantRanges[i] {
			t.Errorf("bucket %d range = %q, want %q", i, b.Range, wantRanges[i])
		}
	}
	if got[0].Count != 79 || got[1].Count != 18 || got[2].Count != 2 || got[12].Count != 0 {
		t.Errorf("counts = %v", got)
	}

	if _, err := parseDistribution("null"); !errors.Is(err, errNoData) {
		t.Errorf(`parseDistribution("null") error = %v, want errNoData`, err)
	}
	for _, bad := range []string{
		"", "   ", "[<=0ms]", "[<=0ms]:x", "<=0ms:1", "[]:1", "[a]:1 [a]:2", "[a]:-1", "[a]:1.5",
		strings.Repeat("[a]:1 ", 1) + strings.Repeat("[b]:1 ", 1) + "x",
		func() string {
			var sb strings.Builder
			for i := range maxLatencyBuckets + 1 {
				fmt.Fprintf(&sb, "[%d]:1 ", i)
			}
			return sb.String()
		}(),
	} {
		if _, err := parseDistribution(bad); err == nil || errors.Is(err, errNoData) {
			t.Errorf("parseDistribution(%q) error = %v, want a format error", bad, err)
		}
	}
}

func TestParseScheduleOffset(t *testing.T) {
	for _, tc := range []struct {
		in         string
		delay, max int64
		wantErr    bool
	}{
		{in: "1,1", delay: 1, max: 1},
		{in: "1,2", delay: 1, max: 2},
		{in: "0,123456789012", delay: 0, max: 123456789012},
		{in: "1", wantErr: true},
		{in: "1,", wantErr: true},
		{in: ",1", wantErr: true},
		{in: "1,2,3", wantErr: true},
		{in: "a,b", wantErr: true},
		{in: "1.0,2", wantErr: true},
	} {
		d, m, err := parseScheduleOffset(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("parseScheduleOffset(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && (d != tc.delay || m != tc.max) {
			t.Errorf("parseScheduleOffset(%q) = %d, %d, want %d, %d", tc.in, d, m, tc.delay, tc.max)
		}
	}
	for in, want := range map[string]int{"1": 1, "3": 3, "18": 18, "1000": 1000} {
		if got, err := parseDelayLevel(in); err != nil || got != want {
			t.Errorf("parseDelayLevel(%q) = %d, %v, want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1", "1001", "03", "+3", "x", "3 "} {
		if _, err := parseDelayLevel(bad); err == nil {
			t.Errorf("parseDelayLevel(%q) succeeded, want error", bad)
		}
	}
}

func TestParseJavaScalars(t *testing.T) {
	for in, want := range map[string]float64{
		"0.14": 0.14, "20.00": 20, "20,00": 20, "224.97196261682242": 224.97196261682242, "1.0E7": 1e7, "-1": -1, "0": 0,
	} {
		if got, err := parseJavaDouble(in); err != nil || got != want {
			t.Errorf("parseJavaDouble(%q) = %v, %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "NaN", "Infinity", "-Infinity", "1,000.5", "1,2,3", "x", "0.14 "} {
		if _, err := parseJavaDouble(bad); err == nil {
			t.Errorf("parseJavaDouble(%q) succeeded, want error", bad)
		}
	}
	for _, bad := range []string{"", "1.0", "9223372036854775808", "0x10", " 1"} {
		if _, err := parseJavaLong(bad); err == nil {
			t.Errorf("parseJavaLong(%q) succeeded, want error", bad)
		}
	}
	if v, err := parseJavaBool("true"); err != nil || !v {
		t.Errorf(`parseJavaBool("true") = %v, %v`, v, err)
	}
	if v, err := parseJavaBool("false"); err != nil || v {
		t.Errorf(`parseJavaBool("false") = %v, %v`, v, err)
	}
	for _, bad := range []string{"", "TRUE", "1", "null"} {
		if _, err := parseJavaBool(bad); err == nil {
			t.Errorf("parseJavaBool(%q) succeeded, want error", bad)
		}
	}
}

// fixtureRuntimeValues returns every value of every recorded runtime info
// table in testdata, in a stable order.
func fixtureRuntimeValues(tb testing.TB) []string {
	tb.Helper()
	var out []string
	seen := map[string]bool{}
	err := filepath.WalkDir(filepath.Join("testdata", "broker", "fixtures"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".response.body") || !strings.Contains(path, "get_broker_runtime_info") {
			return err
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rt, err := rocketmq.DecodeRuntimeInfo(body)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, k := range slices.Sorted(maps.Keys(rt)) {
			if v := rt[k]; !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if len(out) < 50 {
		tb.Fatalf("only %d distinct fixture values; testdata missing?", len(out))
	}
	return out
}

// FuzzRuntimeParsers feeds every parser the same input and checks the
// invariants the collector relies on: no panic, and whatever is accepted is
// finite, non-negative and bounded in cardinality.
func FuzzRuntimeParsers(f *testing.F) {
	for _, v := range fixtureRuntimeValues(f) {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, s string) {
		finite := func(what string, v float64) {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				t.Fatalf("%s(%q) accepted %v", what, s, v)
			}
		}
		if ws, err := parseTPS(s); err == nil {
			if len(ws) > len(tpsWindows) {
				t.Fatalf("parseTPS(%q): %d windows", s, len(ws))
			}
			last := -1
			for _, w := range ws {
				finite("parseTPS", w.Value)
				i := -1
				for j, name := range tpsWindows {
					if name == w.Window {
						i = j
					}
				}
				if i <= last {
					t.Fatalf("parseTPS(%q): windows out of order: %v", s, ws)
				}
				last = i
			}
		}
		if v, err := parseHumanBytes(s); err == nil {
			finite("parseHumanBytes", v)
		}
		if total, free, err := parseDirCapacity(s); err == nil {
			finite("parseDirCapacity total", total)
			finite("parseDirCapacity free", free)
		}
		if bs, err := parseDistribution(s); err == nil {
			if len(bs) == 0 || len(bs) > maxLatencyBuckets {
				t.Fatalf("parseDistribution(%q): %d buckets", s, len(bs))
			}
			seen := map[string]bool{}
			for _, b := range bs {
				if b.Range == "" || seen[b.Range] {
					t.Fatalf("parseDistribution(%q): bad or repeated range %q", s, b.Range)
				}
				seen[b.Range] = true
				finite("parseDistribution", b.Count)
			}
		}
		if v, err := parseJavaDouble(s); err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
			t.Fatalf("parseJavaDouble(%q) accepted %v", s, v)
		}
		if l, err := parseDelayLevel(s); err == nil && (l < 1 || l > maxDelayLevel) {
			t.Fatalf("parseDelayLevel(%q) = %d", s, l)
		}
		_, _, _ = parseScheduleOffset(s)
		_, _ = parseJavaBool(s)
	})
}
