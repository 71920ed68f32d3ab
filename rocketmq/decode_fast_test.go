package rocketmq

import (
	"errors"
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
	{"consume time span", wrap(fastConsumeTimeSpan), wrap(genericConsumeTimeSpan)},
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
		"consume time span":    ".query_consume_time_span.",
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
		{tc, `{"topicConfigTable":{"T":{"order":`, false}, // ends where a value is due
		{tc, `{"topicConfigTable":{"T":{"order": `, false},
		{sp, `{"consumeTimeSpanSet":[{"messageQueue":` + mq + `,"delayTime":5,"minTimeStampStr":"x"}]}`, true},
		{sp, `{"consumeTimeSpanSet":null}`, true},
		{sp, `null`, false},
		{sp, ``, false},
	}
	byName := map[string]fastDecoder{}
	for _, d := range fastDecoders {
		byName[d.name] = d
	}
	for _, b := range bodies {
		for _, d := range fastDecoders {
			took := agree(t, d, []byte(b.body))
			if d.name == b.dec && took != b.wantFast {
				t.Errorf("%s %q: fast path taken %v, want %v", d.name, b.body, took, b.wantFast)
			}
		}
		if _, ok := byName[b.dec]; !ok {
			t.Fatalf("no decoder %q", b.dec)
		}
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
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, d := range fastDecoders {
			agree(t, d, body)
		}
	})
}
