package catalog

import "testing"

func TestCheck(t *testing.T) {
	c, err := Load("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	if !c["rocketmq_up"]["kind"] || !c["rocketmq_up"]["address"] {
		t.Fatalf("rocketmq_up labels: %v", c["rocketmq_up"])
	}
	for _, tc := range []struct {
		metric string
		labels []string
		bad    int
	}{
		{"rocketmq_up", []string{"kind", "address", "job", "instance"}, 0},
		{"rocketmq_up", []string{"kind", "cluster"}, 1},
		{"rocketmq_nope", nil, 1},
		{"rocketmq:recorded", []string{"anything"}, 0},
		{"up", []string{"job"}, 0},
		{"rocketmq_canary_end_to_end_latency_seconds_bucket", []string{"broker", "le", "job"}, 0},
		{"rocketmq_canary_end_to_end_latency_seconds_count", []string{"broker"}, 0},
		{"rocketmq_canary_end_to_end_latency_seconds_sum", []string{"le"}, 1},
		{"rocketmq_canary_produce_total_bucket", nil, 1},
	} {
		if got := c.Check(tc.metric, tc.labels, map[string]bool{"rocketmq:recorded": true}); len(got) != tc.bad {
			t.Errorf("%s %v: %v, want %d problems", tc.metric, tc.labels, got, tc.bad)
		}
	}
}
