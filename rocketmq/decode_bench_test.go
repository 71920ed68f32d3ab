package rocketmq

import (
	"os"
	"path/filepath"
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
		"consume time span":    "broker_a.query_consume_time_span.online.response.body",
	}
	for _, d := range fastDecoders {
		body, err := os.ReadFile(filepath.Join(fixtureRoot, "rocketmq-4.9.7/steady", bodies[d.name]))
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
