package collector

import "strings"

// Values of the "type" label of topic series.
const (
	topicTypeNormal = "normal"
	topicTypeRetry  = "retry"
	topicTypeDLQ    = "dlq"
	topicTypeSystem = "system"
)

// Prefixes RocketMQ gives to per-group topics (MixAll.RETRY_GROUP_TOPIC_PREFIX,
// MixAll.DLQ_GROUP_TOPIC_PREFIX).
const (
	retryTopicPrefix = "%RETRY%"
	dlqTopicPrefix   = "%DLQ%"
)

// retryTopic and dlqTopic name a group's retry and dead-letter topics.
func retryTopic(group string) string { return retryTopicPrefix + group }
func dlqTopic(group string) string   { return dlqTopicPrefix + group }

// classifyTopic returns the type label of a topic. internal holds the cluster
// and broker names of the scrape: every broker creates a topic named after its
// cluster and one after its broker name (used for routing), and one named
// <cluster>_REPLY_TOPIC for request/reply; they carry no user traffic.
func classifyTopic(topic string, internal map[string]bool) string {
	switch {
	case strings.HasPrefix(topic, retryTopicPrefix):
		return topicTypeRetry
	case strings.HasPrefix(topic, dlqTopicPrefix):
		return topicTypeDLQ
	case isBuiltinSystemTopic(topic):
		return topicTypeSystem
	case internal[topic]:
		return topicTypeSystem
	}
	if c, ok := strings.CutSuffix(topic, "_REPLY_TOPIC"); ok && internal[c] {
		return topicTypeSystem
	}
	return topicTypeNormal
}

// isBuiltinSystemTopic knows the topics brokers create for themselves
// (TopicValidator and the 4.9/5.x broker sources): they exist on every broker
// and only add noise to per-topic series.
func isBuiltinSystemTopic(topic string) bool {
	switch topic {
	case "TBW102", // AUTO_CREATE_TOPIC_KEY_TOPIC, the template for auto-created topics
		"SCHEDULE_TOPIC_XXXX",
		"SELF_TEST_TOPIC",
		"OFFSET_MOVED_EVENT",
		"BenchmarkTest",
		"TRANS_CHECK_MAX_TIME_TOPIC",
		"CHECKPOINT_TOPIC":
		return true
	}
	// RMQ_SYS_TRANS_HALF_TOPIC, RMQ_SYS_TRACE_TOPIC, … and the 5.x
	// rmq_sys_REVIVE_LOG_*, rmq_sys_wheel_timer, rmq_sys_SYNC_BROKER_MEMBER_*.
	return strings.HasPrefix(topic, "RMQ_SYS_") || strings.HasPrefix(topic, "rmq_sys_")
}

// isSystemGroup knows the subscription groups every broker creates at start
// (MixAll: TOOLS_CONSUMER, FILTERSRV_CONSUMER, SELF_TEST_C_GROUP, the ONS
// groups and CID_RMQ_SYS_*). They never have consumers of their own, so they
// are skipped unless system topics are asked for.
func isSystemGroup(group string) bool {
	switch group {
	case "TOOLS_CONSUMER",
		"FILTERSRV_CONSUMER",
		"SELF_TEST_C_GROUP",
		"CID_ONS-HTTP-PROXY",
		"CID_ONSAPI_PERMISSION",
		"CID_ONSAPI_OWNER",
		"CID_ONSAPI_PULL":
		return true
	}
	return strings.HasPrefix(group, "CID_RMQ_SYS_")
}

// internalNames collects the cluster and broker names known in this scrape,
// the input classifyTopic needs to recognise cluster- and broker-named topics.
func internalNames(s *Scrape) map[string]bool {
	names := make(map[string]bool)
	for _, b := range s.Brokers {
		if b.Cluster != "" {
			names[b.Cluster] = true
		}
		if b.Name != "" {
			names[b.Name] = true
		}
	}
	if ci := s.ClusterInfo; ci != nil {
		for c, groups := range ci.ClusterAddrTable {
			names[c] = true
			for _, g := range groups {
				names[g] = true
			}
		}
		for name, bd := range ci.BrokerAddrTable {
			names[name] = true
			if bd.Cluster != "" {
				names[bd.Cluster] = true
			}
		}
	}
	return names
}
