package rocketmq

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkHotDecoders compares, on recorded 4.9.7 bodies, the fast path of
// each decoder a large scrape calls thousands of times with the generic
// path (Normalize, then encoding/json).
func BenchmarkHotDecoders(b *testing.B) {
	bodies := map[string]string{
		"topic stats":          "broker_a.get_topic_stats_info.response.body",
		"consume stats":        "broker_a.get_consume_stats.all_topics.response.body",
		"broker consume stats": "broker_a.get_broker_consume_stats.response.body",
		"consumer connection":  "broker_a.get_consumer_connection_list.online.response.body",
		"topic config":         "broker_a.get_all_topic_config.response.body",
		"topic names":          "broker_a.get_all_topic_config.response.body",
		"topic stats summary":  "broker_a.get_topic_stats_info.response.body",
		"consume time span":    "broker_a.query_consume_time_span.online.response.body",
		"connection summary":   "broker_a.get_consumer_connection_list.online.response.body",
	}
	for _, d := range fastDecoders {
		name, ok := bodies[d.name]
		if !ok {
			b.Fatalf("no fixture body for %q", d.name)
		}
		body, err := os.ReadFile(filepath.Join(fixtureRoot, "rocketmq-4.9.7/steady", name))
		if err != nil {
			b.Fatal(err)
		}
		for _, path := range []struct {
			name string
			fn   func([]byte) (any, error)
		}{{"fast", d.fast}, {"generic", d.generic}} {
			b.Run(d.name+"/"+path.name, func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := path.fn(body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// scaleConsumeStatsBody is a GET_BROKER_CONSUME_STATS body shaped like one
// master of the issue-7 scenario (docs/benchmarks.md): 2,000 groups, each
// with its one-queue %RETRY% table, one in four also with an eight-queue
// topic table, in fastjson's form.
func scaleConsumeStatsBody() []byte {
	var b strings.Builder
	b.WriteString(`{"brokerAddr":"10.0.0.1:10911","consumeStatsList":[`)
	for g := range 2000 {
		if g > 0 {
			b.WriteByte(',')
		}
		group := fmt.Sprintf("GID_scale_group_%04d", g)
		fmt.Fprintf(&b, `{%q:[{"consumeTps":0.0,"offsetTable":{`, group)
		fmt.Fprintf(&b, `{"brokerName":"broker-a","queueId":0,"topic":"%%RETRY%%%s"}:{"brokerOffset":0,"consumerOffset":0,"lastTimestamp":0}}}`, group)
		if g%4 == 0 {
			b.WriteString(`,{"consumeTps":1.5,"offsetTable":{`)
			for q := range 8 {
				if q > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"brokerName":"broker-a","queueId":%d,"topic":"scale_topic_%05d"}:{"brokerOffset":%d,"consumerOffset":%d,"lastTimestamp":1795255344658}`,
					q, g, 1000+q, 990+q)
			}
			b.WriteString(`}}`)
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`],"totalDiff":5000}`)
	return []byte(b.String())
}

// BenchmarkBrokerConsumeStatsAtScale decodes one master's
// GET_BROKER_CONSUME_STATS body at the scale of the issue-7 scenario.
func BenchmarkBrokerConsumeStatsAtScale(b *testing.B) {
	body := scaleConsumeStatsBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fastConsumeStatsList(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawString reads every string (keys and values) of a body shaped
// like the issue-7 scenario's consume stats, where names dominate.
func BenchmarkRawString(b *testing.B) {
	body := scaleConsumeStatsBody()
	var starts []int
	for i := 0; i < len(body); i++ {
		if body[i] == '"' {
			starts = append(starts, i)
			i += bytes.IndexByte(body[i+1:], '"') + 1
		}
	}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		for _, i := range starts {
			r := jreader{b: body, i: i}
			if _, err := r.rawString(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
