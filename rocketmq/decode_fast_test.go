package rocketmq

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// fastDecoder pairs a fast path with the generic path it must agree with.
type fastDecoder struct {
	name          string
	fast, generic func([]byte) (any, error)
}

func wrap[T any](f func([]byte) (T, error)) func([]byte) (any, error) {
	return func(b []byte) (any, error) { return f(b) }
}

var fastDecoders = []fastDecoder{
	{"topic stats", wrap(fastTopicStats), wrap(genericTopicStats)},
	{"consume stats", wrap(fastConsumeStats), wrap(genericConsumeStats)},
	{"broker consume stats", wrap(fastConsumeStatsList), wrap(genericConsumeStatsList)},
	{"consumer connection", wrap(fastConsumerConnection), wrap(genericConsumerConnection)},
	{"topic config", wrap(fastTopicConfigWrapper), wrap(genericTopicConfigWrapper)},
	{"topic names", wrap(fastTopicNames), func(b []byte) (any, error) {
		w, err := genericTopicConfigWrapper(b)
		if err != nil {
			return nil, err
		}
		return w.Names(), nil
	}},
	{"topic stats summary", wrap(fastTopicStatsSummary), func(b []byte) (any, error) {
		t, err := genericTopicStats(b)
		if err != nil {
			return nil, err
		}
		return t.Summary(), nil
	}},
	{"consume time span", wrap(fastConsumeTimeSpan), wrap(genericConsumeTimeSpan)},
	{"connection summary", wrap(fastConnectionSummary), func(b []byte) (any, error) {
		cc, err := genericConsumerConnection(b)
		if err != nil {
			return nil, err
		}
		return cc.Summary(), nil
	}},
}

// agree checks the contract of a fast path on one body: when it answers,
// the generic path answers the same.
func agree(t *testing.T, d fastDecoder, body []byte) (fastOK bool) {
	t.Helper()
	got, err := d.fast(body)
	if err != nil {
		if !errors.Is(err, errFallback) {
			t.Fatalf("%s: fast path returned its own error %v on %q", d.name, err, body)
		}
		return false
	}
	want, werr := d.generic(body)
	if werr != nil {
		t.Fatalf("%s: fast path accepted %q, generic path refuses it: %v", d.name, body, werr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: on %q\nfast    %#v\ngeneric %#v", d.name, body, got, want)
	}
	return true
}

// Every recorded body of the hot requests takes the fast path and decodes
// exactly as the generic path does.
func TestFastDecodersOnFixtures(t *testing.T) {
	requests := map[string]string{
		"topic stats":          ".get_topic_stats_info.",
		"consume stats":        ".get_consume_stats.",
		"broker consume stats": ".get_broker_consume_stats.",
		"consumer connection":  ".get_consumer_connection_list.",
		"topic config":         ".get_all_topic_config.",
		"topic names":          ".get_all_topic_config.",
		"topic stats summary":  ".get_topic_stats_info.",
		"consume time span":    ".query_consume_time_span.",
		"connection summary":   ".get_consumer_connection_list.",
	}
	for _, d := range fastDecoders {
		n := 0
		for name, body := range fixtureBodies(t) {
			if !strings.Contains(name, requests[d.name]) {
				continue
			}
			n++
			if !agree(t, d, body) {
				t.Errorf("%s: recorded body %s did not take the fast path", d.name, name)
			}
		}
		if n == 0 {
			t.Errorf("%s: no recorded body", d.name)
		}
	}
}

// Bodies on the edges of what the fast paths read: each either decodes as
// the generic path does, or is handed over to it.
func TestFastDecodersEdges(t *testing.T) {
	mq := `{"brokerName":"b","queueId":1,"topic":"T"}`
	const (
		ts = "topic stats"
		cs = "consume stats"
		bc = "broker consume stats"
		cc = "consumer connection"
		tc = "topic config"
		sp = "consume time span"
	)
	bodies := []struct {
		dec, body string
		wantFast  bool
	}{
		{ts, `{"offsetTable":{` + mq + `:{"maxOffset":5,"minOffset":1,"lastUpdateTimestamp":7}}}`, true},
		{ts, `{"offsetTable":{` + mq + `:null}}`, true},
		{ts, `{"offsetTable":null,"topicPutTps":1.5}`, true},
		{ts, ` {"offsetTable":{}} `, true},
		{ts, `{"offsetTable":{` + mq + `:{"maxOffset":5},` + mq + `:{"maxOffset":6}}}`, false}, // repeated queue
		{ts, `{"offsetTable":{` + mq + `:{"MaxOffset":5}}}`, false},                            // case-insensitive field
		{ts, `{"offsetTable":{` + mq + `:{"maxOffset":5.0}}}`, false},                          // not an integer
		{ts, `{"offsetTable":{` + mq + `:{"maxOffset":9223372036854775808}}}`, false},          // overflow
		{ts, `{"offsetTable":{` + mq + `:{"maxOffset":-9223372036854775808}}}`, true},
		{ts, `{"offsetTable":{"{\"queueId\":1}":{"maxOffset":5}}}`, false}, // standard JSON string key
		{ts, `{"offsetTable":{` + mq + `:{"maxOffset":5}}} x`, false},
		{ts, `{"offsetTable":{` + mq + `:{"maxOffset":5},}}`, false},
		{ts, `{"offsetTable":{{"queueId":1,"extra":[1,{2:3}]}:{"maxOffset":5,"other":"x\u00e9"}}}`, true},
		{cs, `{"consumeTps":2,"offsetTable":{` + mq + `:{"brokerOffset":3,"consumerOffset":2,"pullOffset":1,"lastTimestamp":9}}}`, true},
		{bc, `{"brokerAddr":"a","totalDiff":3,"consumeStatsList":[{"G":[{"consumeTps":1,"offsetTable":{` + mq + `:{"brokerOffset":3}}}]},{"H":[]},{"I":null},null,{}]}`, true},
		{bc, `{"consumeStatsList":[{"G":[null]}]}`, true},
		{bc, `{"consumeStatsList":[{"G":[],"H":[]}]}`, false}, // two groups in one entry
		{bc, `{"consumeStatsList":[],"consumeStatsList":[]}`, false},
		{bc, `{"consumeStatsList":null}`, true},
		{cc, `{"connectionSet":[{"clientId":"c","clientAddr":"a","language":"JAVA","version":409}],"consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","subscriptionTable":{"T":{"topic":"T","subString":"*","tagsSet":[],"subVersion":3,"codeSet":[]}}}`, true},
		{cc, `{"connectionSet":null,"subscriptionTable":{"T":{"tagsSet":null}}}`, true},
		{cc, `{"subscriptionTable":{"T":{"tagsSet":["a",null]}},"subscriptionTable":{"U":{}}}`, true},
		{cc, `{"messageModel":"CLUSTER\u0049NG"}`, false},
		{cc, "{\"messageModel\":\"\xff\"}", false},
		{tc, `{"topicConfigTable":{"T":{"topicName":"T","readQueueNums":8,"writeQueueNums":8,"perm":6,"order":false,"attributes":{}}},"dataVersion":{"counter":2,"timestamp":3}}`, true},
		{tc, `{"topicConfigTable":{"T":{"topicName":"U"}},"dataVersion":null,"topicQueueMappingDetailMap":{0:{1:2}}}`, true},
		{tc, `{"topicConfigTable":{"T":{"order":1}}}`, false},
		// A name listed twice, tables merging and emptied.
		{tc, `{"topicConfigTable":{"T":{"topicName":"T"},"A":{},"T":{"topicName":"X","perm":2}}}`, true},
		{tc, `{"topicConfigTable":{"B":{}},"topicConfigTable":{"A":{},"B":{}}}`, true},
		{tc, `{"topicConfigTable":{"B":{}},"topicConfigTable":null}`, true},
		{tc, `{"topicConfigTable":{"B":{}},"topicConfigTable":null,"topicConfigTable":{"C":{}}}`, true},
		{tc, `{"topicConfigTable":{}}`, true},
		{tc, `{"topicConfigTable":{"T":{"order":`, false}, // ends where a value is due
		{tc, `{"topicConfigTable":{"T":{"order": `, false},
		// Shared topic and broker strings never stand for other bytes:
		// alternating and null names, and an escaped name handing over.
		{ts, `{"offsetTable":{` + mq + `:{"maxOffset":1},{"brokerName":"c","queueId":1,"topic":"T"}:{"maxOffset":2},` +
			`{"brokerName":"b","queueId":1,"topic":"U"}:{"maxOffset":3},{"brokerName":"b","queueId":2,"topic":"T"}:{},` +
			`{"brokerName":"","queueId":3,"topic":"T"}:{},{"brokerName":null,"queueId":4,"topic":null}:{},{"queueId":5}:{}}}`, true},
		{ts, `{"offsetTable":{` + mq + `:{},{"brokerName":"b","queueId":2,"topic":"\u0054"}:{}}}`, false},
		{ts, `{"offsetTable":{` + mq + `:{},{"brokerName":"b\u00e9","queueId":2,"topic":"T"}:{}}}`, false},
		{ts, `{"offsetTable":{` + mq + `:{},{"brokerName":"b","queueId":2,"topic":"T\t"}:{}}}`, false},
		{ts, `{"offsetTable":{` + mq + `:{},{"brokerName":"bé","queueId":2,"topic":"Té"}:{}}}`, true},
		{ts, "{\"offsetTable\":{" + mq + ":{},{\"brokerName\":\"b\",\"queueId\":2,\"topic\":\"T\x01\"}:{}}}", false},
		{ts, "{\"offsetTable\":{" + mq + ":{},{\"brokerName\":\"b\xc3\",\"queueId\":2,\"topic\":\"T\"}:{}}}", false},
		// A second table merges into the first, or empties it, in the
		// generic path.
		{ts, `{"offsetTable":{` + mq + `:{"maxOffset":5}},"offsetTable":null}`, false},
		{ts, `{"offsetTable":{},"offsetTable":{` + mq + `:{"maxOffset":5}}}`, false},
		{cs, `{"offsetTable":{` + mq + `:{"brokerOffset":5}},"offsetTable":null}`, false},
		{bc, `{"consumeStatsList":[{"G":[{"offsetTable":null,"offsetTable":{}}]}]}`, false},
		// Tables larger than the scratch on the stack.
		{ts, `{"offsetTable":{` + queues(20, "T", "b", `{"maxOffset":1}`) + `}}`, true},
		{cs, `{"offsetTable":{` + queues(40, "T", "b", `{"brokerOffset":1}`) + `}}`, true},
		{bc, `{"consumeStatsList":[{"G":[{"offsetTable":{` + queues(3, "T", "b", `{}`) + `}},{"offsetTable":{` +
			queues(20, "U", "b", `{}`) + `}}]},{"H":[{"offsetTable":{` + queues(2, "T", "c", `{}`) + `}}]}]}`, true},
		{bc, manyGroups(300), true},
		{cc, `{"connectionSet":[{"clientId":"c","language":"KOTLIN"},{"clientAddr":"a","language":""},{"language":null},{"language":"GO"}],` +
			`"consumeType":"CONSUME_ACTIVELY","messageModel":"BROADCASTING","consumeFromWhere":"CONSUME_FROM_TIMESTAMP"}`, true},
		{cc, `{"subscriptionTable":{"T":{"topic":"U","subString":"a || b","expressionType":"SQL92"},"V":{"topic":null},"W":{"topic":"W","subString":"*"}}}`, true},
		{cc, `{"connectionSet":[{"clientId":"é"}]}`, true},
		// Client names cut from one string: repeated, null, empty and
		// missing ones, and more connections than the views on the stack.
		{cc, `{"connectionSet":[{"clientId":"a","clientAddr":"x:1","clientId":"bb"},{"clientId":"c","clientId":null,"clientAddr":null},` +
			`{"clientAddr":""},{},{"clientId":"","clientAddr":"y:2"},{"clientAddr":"z:3","clientId":"d"}]}`, true},
		{cc, `{"connectionSet":[` + strings.Repeat(`{"clientId":"id","clientAddr":"addr"},{"clientAddr":"a2"},`, 6) + `{}]}`, true},
		{cc, `{"connectionSet":[{"clientId":"a"},{"clientId":"b\u0041"}]}`, false},
		{tc, `{"topicConfigTable":{"T":{"topicName":"T","topicFilterType":"MULTI_TAG"},"U":{"topicName":"U","topicFilterType":"OTHER"}}}`, true},
		{sp, `{"consumeTimeSpanSet":[{"messageQueue":` + mq + `,"delayTime":5,"minTimeStampStr":"x"}]}`, true},
		{sp, `{"consumeTimeSpanSet":[{"messageQueue":` + mq + `},{"messageQueue":{"brokerName":"c","queueId":1,"topic":"T"}},{"messageQueue":{"queueId":2}}]}`, true},
		{sp, `{"consumeTimeSpanSet":null}`, true},
		{sp, `null`, false},
		{sp, ``, false},
	}
	byName := map[string]fastDecoder{}
	for _, d := range fastDecoders {
		byName[d.name] = d
	}
	for _, b := range bodies {
		took := agreeAll(t, []byte(b.body))
		if took[b.dec] != b.wantFast {
			t.Errorf("%s %q: fast path taken %v, want %v", b.dec, b.body, took[b.dec], b.wantFast)
		}
		if _, ok := byName[b.dec]; !ok {
			t.Fatalf("no decoder %q", b.dec)
		}
	}
}

// summaries pairs each decoder that keeps less of a body with the full
// decoder it must follow: both take the fast path on the same bodies.
var summaries = map[string]string{"topic stats summary": "topic stats", "topic names": "topic config"}

// agreeAll runs agree for every fast decoder on body, checks the summaries
// against their full decoders, and reports which fast paths were taken.
func agreeAll(t *testing.T, body []byte) map[string]bool {
	t.Helper()
	took := map[string]bool{}
	for _, d := range fastDecoders {
		took[d.name] = agree(t, d, body)
	}
	for sum, full := range summaries {
		if took[sum] != took[full] {
			t.Fatalf("%q: %s fast path taken %v, %s %v", body, sum, took[sum], full, took[full])
		}
	}
	return took
}

// queues is n members of a queue table on topic and broker, with value v.
func queues(n int, topic, broker, v string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"brokerName":%q,"queueId":%d,"topic":%q}:%s`, broker, i, topic, v)
	}
	return b.String()
}

// manyGroups is a GET_BROKER_CONSUME_STATS body of n groups with zero to
// three ConsumeStats each, enough for the groups' Stats to span chunks.
func manyGroups(n int) string {
	var b strings.Builder
	b.WriteString(`{"brokerAddr":"a","consumeStatsList":[`)
	for g := range n {
		if g > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"G%d":[`, g)
		for i := range g % 4 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"consumeTps":%d,"offsetTable":{%s}}`, i, queues(i+1, fmt.Sprintf("T%d", i), "b", `{"brokerOffset":3}`))
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]}`)
	return b.String()
}

// The groups of a GET_BROKER_CONSUME_STATS body share the room their Stats
// are cut from; appending to one group's must not reach the next one's.
func TestFastConsumeStatsListGroupsApart(t *testing.T) {
	l, err := fastConsumeStatsList([]byte(manyGroups(300)))
	if err != nil {
		t.Fatal(err)
	}
	want, err := genericConsumeStatsList([]byte(manyGroups(300)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range l.ConsumeStatsList {
		l.ConsumeStatsList[i].Stats = append(l.ConsumeStatsList[i].Stats, ConsumeStats{ConsumeTps: -1})
	}
	for i := range l.ConsumeStatsList {
		got := l.ConsumeStatsList[i].Stats
		if !reflect.DeepEqual(got[:len(got)-1], want.ConsumeStatsList[i].Stats) {
			t.Fatalf("group %d: %v, want %v", i, got, want.ConsumeStatsList[i].Stats)
		}
	}
}

// Topic and broker names are allocated once per run of equal keys, not
// per queue: a table of eight queues costs what a table of two costs.
func TestFastDecodersShareQueueNames(t *testing.T) {
	allocs := func(fn func([]byte) (any, error), body string) float64 {
		return testing.AllocsPerRun(20, func() {
			if _, err := fn([]byte(body)); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, tc := range []struct {
		name   string
		fn     func([]byte) (any, error)
		body   func(n int) string
		n1, n2 int
	}{
		{"topic stats", wrap(fastTopicStats), func(n int) string {
			return `{"offsetTable":{` + queues(n, "TopicWithALongName", "broker-a", `{"maxOffset":1}`) + `}}`
		}, 2, 8},
		{"consume stats", wrap(fastConsumeStats), func(n int) string {
			return `{"offsetTable":{` + queues(n, "TopicWithALongName", "broker-a", `{"brokerOffset":1}`) + `}}`
		}, 2, 8},
		{"broker consume stats", wrap(fastConsumeStatsList), func(n int) string {
			return `{"consumeStatsList":[{"G":[{"offsetTable":{` + queues(n, "TopicWithALongName", "broker-a", `{}`) + `}}]}]}`
		}, 2, 8},
	} {
		a1, a2 := allocs(tc.fn, tc.body(tc.n1)), allocs(tc.fn, tc.body(tc.n2))
		if a1 != a2 {
			t.Errorf("%s: %v allocations for %d queues, %v for %d", tc.name, a1, tc.n1, a2, tc.n2)
		}
	}
}

// Enumerated values come from constants; anything else is copied.
func TestEnumString(t *testing.T) {
	for _, v := range []string{"", "JAVA", "GO", "NODE_JS", "CONSUME_PASSIVELY", "CONSUME_POP", "CLUSTERING",
		"BROADCASTING", "CONSUME_FROM_FIRST_OFFSET", "TAG", "SQL92", "*", "SINGLE_TAG", "MULTI_TAG"} {
		b := []byte(v)
		var got string
		if n := testing.AllocsPerRun(10, func() { got = enumString(b) }); n != 0 {
			t.Errorf("enumString(%q): %v allocations", v, n)
		}
		if got != v {
			t.Errorf("enumString(%q) = %q", v, got)
		}
	}
	b := []byte("KOTLIN")
	got := enumString(b)
	b[0] = 'X'
	if got != "KOTLIN" {
		t.Errorf("enumString kept a view of its input: %q", got)
	}
}

// The topic config map is made at the size of the table for recorded
// bodies, and a body of little but "topicName" keys cannot make it reserve
// much more than its own size.
func TestTopicConfigHint(t *testing.T) {
	n := 0
	for name, body := range fixtureBodies(t) {
		if !strings.Contains(name, ".get_all_topic_config.") {
			continue
		}
		n++
		w, err := fastTopicConfigWrapper(body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := topicConfigHint(body); got != len(w.TopicConfigTable) {
			t.Errorf("%s: hint %d, %d topics", name, got, len(w.TopicConfigTable))
		}
	}
	if n == 0 {
		t.Fatal("no recorded topic config body")
	}
	keys := `{"x":[` + strings.Repeat(`{"topicName":0},`, 1000) + `0]}`
	if got, limit := topicConfigHint([]byte(keys)), len(keys)/96; got != limit {
		t.Errorf("hint %d on %d bytes of keys, want the bound %d", got, len(keys), limit)
	}
}

// FuzzFastDecoders: whatever the input, a fast path either hands over or
// agrees with the generic path, and never panics.
func FuzzFastDecoders(f *testing.F) {
	for name, body := range fixtureBodies(f) {
		if !isConfigBody(name) {
			f.Add(body)
		}
	}
	f.Add([]byte(`{"offsetTable":{{"brokerName":"b","queueId":1,"topic":"T"}:{"maxOffset":5}}}`))
	f.Add([]byte(`{"consumeStatsList":[{"G":[{"offsetTable":{{"queueId":0}:{"brokerOffset":1}}}]}]}`))
	f.Add([]byte(`{"offsetTable":{{"brokerName":"b","queueId":1,"topic":"T"}:{},{"brokerName":"c","queueId":1,"topic":"T"}:{},{"brokerName":"b","queueId":2,"topic":"U"}:{}}}`))
	f.Add([]byte(manyGroups(20)))
	f.Fuzz(func(t *testing.T, body []byte) {
		agreeAll(t, body)
		summaryAgrees(t, body)
	})
}

// summaryAgrees checks the connection summary on one body: its fast path
// answers exactly when fastConsumerConnection does, with that answer's
// summary, and DecodeConsumerConnectionSummary is the summary of
// DecodeConsumerConnection, or its error.
func summaryAgrees(t *testing.T, body []byte) {
	t.Helper()
	s, serr := fastConnectionSummary(body)
	cc, cerr := fastConsumerConnection(body)
	if (serr == nil) != (cerr == nil) {
		t.Fatalf("on %q: fast summary error %v, fast connection list error %v", body, serr, cerr)
	}
	if serr == nil && s != cc.Summary() {
		t.Fatalf("on %q: fast summary %+v, summary of the fast connection list %+v", body, s, cc.Summary())
	}
	got, gerr := DecodeConsumerConnectionSummary(body)
	full, ferr := DecodeConsumerConnection(body)
	if (gerr == nil) != (ferr == nil) || gerr != nil && gerr.Error() != ferr.Error() {
		t.Fatalf("on %q: summary error %v, connection list error %v", body, gerr, ferr)
	}
	if gerr == nil && got != full.Summary() {
		t.Fatalf("on %q: summary %+v, want %+v", body, got, full.Summary())
	}
}

// The connection summary on the edges: bodies the fast connection-list path
// hands over (wrong types in the parts a summary skips, escapes, keys that
// match only case-insensitively, repeats) are handed over by the summary too,
// and come back with the full decoder's answer or error.
func TestConnectionSummaryEdges(t *testing.T) {
	for _, b := range []string{
		`{"connectionSet":[{"clientId":"c"},null,{}],"consumeType":"CONSUME_PASSIVELY","messageModel":"BROADCASTING"}`,
		`{"connectionSet":null,"messageModel":null}`,
		`{"connectionSet":[],"connectionSet":[{}]}`,
		`{"connectionSet":[{"clientId":5}]}`,
		`{"connectionSet":[{"clientId":"\u0041"}]}`,
		`{"connectionSet":[{"version":1.5}]}`,
		`{"connectionSet":[{"Version":1}]}`,
		`{"connectionSet":{}}`,
		`{"ConnectionSet":[{}]}`,
		`{"consumeFromWhere":7}`,
		`{"consumeFromWhere":"CONSUME_FROM_\u0041"}`,
		`{"subscriptionTable":{"T":5}}`,
		`{"subscriptionTable":{"T":{"tagsSet":[1]}}}`,
		`{"subscriptionTable":{"T":{"tagsSet":"a"}}}`,
		`{"subscriptionTable":{"T":{"tagsSet":[],"tagsSet":[]}}}`,
		`{"subscriptionTable":{"T":{"subVersion":"1"}}}`,
		`{"subscriptionTable":{"T":{"subVersion":1e3}}}`,
		`{"subscriptionTable":{"T":{"Topic":"T"}}}`,
		`{"subscriptionTable":{"T":{"topic":"\u0054"}}}`,
		`{"subscriptionTable":{"T":{"codeSet":[1,{"a":[]}],"subString":"a || b"}}}`,
		`{"subscriptionTable":{0:{}}}`,
		`{"subscriptionTable":[]}`,
		`{"subscriptionTable":null,"subscriptionTable":{"T":{}}}`,
		`{"connectionSet":[{}]} {}`,
		`[]`,
		``,
	} {
		summaryAgrees(t, []byte(b))
	}
	for name, body := range fixtureBodies(t) {
		summaryAgrees(t, body)
		if strings.Contains(name, ".get_consumer_connection_list.") {
			if _, err := fastConnectionSummary(body); err != nil {
				t.Errorf("%s: fast summary handed over", name)
			}
		}
	}
}

// A summary of a recorded connection list allocates nothing.
func TestConnectionSummaryAllocs(t *testing.T) {
	n := 0
	for name, body := range fixtureBodies(t) {
		if !strings.Contains(name, ".get_consumer_connection_list.") {
			continue
		}
		n++
		if a := testing.AllocsPerRun(100, func() {
			if _, err := DecodeConsumerConnectionSummary(body); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("%s: %v allocations", name, a)
		}
	}
	if n == 0 {
		t.Fatal("no recorded connection list")
	}
}
