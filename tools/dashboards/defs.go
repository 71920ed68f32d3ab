package dashboards

// The dashboards. Expressions use only exporter metrics (docs/metrics.md) and
// the recording rules of alerts/rocketmq-rules.yml; rates use
// $__rate_interval; every panel has a unit.

const rateWindow = "[$__rate_interval]"

var (
	cj  = []string{}
	cjb = []string{"broker"}
	cjg = []string{"group", "topic"}
	cjt = []string{"topic"}
)

func overview() *board {
	b := newBoard("rocketmq-overview.json", "rocketmq-overview", "RocketMQ / Overview",
		"Health of RocketMQ clusters at a glance: brokers and NameServers up, masters and DLedger leaders per group, traffic, disk, worst consumer lag.",
		"job", "cluster")

	b.row("Health")
	b.stat(3, "Brokers up", "Broker nodes answering the exporter (rocketmq_up{kind=\"broker\"}).", unitNone, nil,
		q{expr: `sum(rocketmq_up{job=~"$job", kind="broker"})`})
	b.stat(3, "Brokers down", "Broker nodes the exporter cannot read.", unitNone, thresholds("green", 1.0, "red"),
		q{expr: `count(rocketmq_up{job=~"$job", kind="broker"} == 0) or vector(0)`})
	b.stat(3, "NameServers up", "NameServers answering GET_BROKER_CLUSTER_INFO (cluster mode).", unitNone, nil,
		q{expr: `sum(rocketmq_up{job=~"$job", kind="namesrv"})`, optional: "no NameServer series in sidecar mode"})
	b.stat(3, "Groups without master", "Broker groups (not DLedger) in which no member is master, per the NameServer.", unitNone, thresholds("green", 1.0, "red"),
		q{expr: `count(max by (cluster, broker) (rocketmq_cluster_broker_group_masters` + sel(cj) + `) == 0) or vector(0)`})
	b.stat(3, "Groups with several masters", "Broker groups in which more than one member answers as master: a split brain (rocketmq_ha_group_masters, cluster mode).", unitNone, thresholds("green", 1.0, "red"),
		q{expr: `count(max by (cluster, broker) (rocketmq_ha_group_masters` + sel(cj) + `) > 1) or vector(0)`})
	b.stat(3, "DLedger groups without leader", "DLedger groups in which no peer is the leader a majority acknowledges.", unitNone, thresholds("green", 1.0, "red"),
		q{expr: `count(max by (cluster, broker, dledger_group) (rocketmq_dledger_group_has_leader` + sel(cj) + `) == 0) or vector(0)`})
	b.stat(3, "Exporter targets down", "Exporter targets Prometheus cannot scrape (up == 0): what they cover is not monitored.", unitNone, thresholds("green", 1.0, "red"),
		q{expr: `count(up{job=~"$job"} == 0) or vector(0)`})
	b.stat(3, "Firing RocketMQ alerts", "Alerts of alerts/rocketmq-alerts.yml firing now (Prometheus's ALERTS series).", unitNone, thresholds("green", 1.0, "orange"),
		q{expr: `count(ALERTS{alertstate="firing", alertname=~"RocketMQ.*"}) or vector(0)`})

	b.row("Traffic")
	b.timeseries(12, "Messages in", "Messages stored per second, by cluster (rate of putMessageTimesTotal).", unitMsgPerSec,
		q{expr: `sum by (cluster) (rate(rocketmq_broker_put_messages_total` + sel(cj) + rateWindow + `))`, legend: "{{cluster}}"})
	b.timeseries(12, "Messages out", "Messages delivered to consumers per second, by cluster (rate of msgGetTotalTodayNow).", unitMsgPerSec,
		q{expr: `sum by (cluster) (rate(rocketmq_broker_get_messages_total` + sel(cj) + rateWindow + `))`, legend: "{{cluster}}"})
	b.timeseries(12, "Messages in per broker group", "Messages stored per second in each broker group.", unitMsgPerSec,
		q{expr: `sum by (cluster, broker) (rate(rocketmq_broker_put_messages_total` + sel(cj) + rateWindow + `))`, legend: "{{cluster}}/{{broker}}"})
	b.timeseries(12, "Masters and leaders per group", "Members with brokerId 0 per group as the NameServer lists them: 1 is healthy, 0 means no master/leader.", unitNone,
		q{expr: `max by (cluster, broker) (rocketmq_cluster_broker_group_masters` + sel(cj) + `)`, legend: "{{cluster}}/{{broker}}"})

	b.row("Storage and consumers")
	b.timeseries(8, "Disk used", "Commit log and consume queue disk use of each node. The broker deletes expired files above 75 % (diskMaxUsedSpaceRatio), unexpired ones above 85 % and rejects writes above 90 %.", unitRatio,
		q{expr: `max by (cluster, broker, address, store) (rocketmq:broker_store_disk_used_ratio` + rsel(cj) + `)`, legend: "{{address}} {{store}}"})
	b.timeseries(8, "Worst consumer lag (messages)", "The ten group/topic pairs with the most unconsumed messages.", unitCount,
		q{expr: `topk(10, sum by (cluster, group, topic) (rocketmq_consumer_group_lag_messages` + sel(cj) + `))`, legend: "{{group}} on {{topic}}"})
	b.timeseries(8, "Worst consumer lag (age)", "The ten group/topic pairs whose oldest unconsumed message is oldest.", unitSeconds,
		q{expr: `topk(10, max by (cluster, group, topic) (rocketmq_consumer_group_lag_seconds` + sel(cj) + `))`, legend: "{{group}} on {{topic}}"})

	canaryRow(b)
	exporterRow(b)
	return b
}

// canaryOff is why the canary's panels may be empty. Its series carry no
// cluster label (the probe topic's broker groups are named by broker alone),
// so they are selected by job only.
const canaryOff = "the canary is off by default (--canary.enable)"

func canaryRow(b *board) {
	j := `{job=~"$job"}`
	e2e := func(quantile string) string {
		return `histogram_quantile(` + quantile + `, sum by (broker, le) (rate(rocketmq_canary_end_to_end_latency_seconds_bucket` + j + rateWindow + `)))`
	}
	b.row("Canary (end-to-end probe, --canary.enable)")
	b.timeseries(8, "Canary round trips", "Probes delivered to the canary's consumer per probe sent, per broker group: 100 % means every probe made the round trip. Needs --canary.enable; the Cluster variable does not apply (canary series have no cluster label).", unitRatio,
		q{expr: `sum by (broker) (rate(rocketmq_canary_end_to_end_latency_seconds_count` + j + rateWindow + `))
  / sum by (broker) (rate(rocketmq_canary_produce_total` + j + rateWindow + `))`, legend: "{{broker}}", optional: canaryOff})
	b.timeseries(8, "Time since the last round trip", "How long ago the last probe came back through each broker group. RocketMQCanaryRoundTripFailing fires after 2 minutes plus 5 of for:.", unitSeconds,
		q{expr: `time() - max by (broker) (rocketmq_canary_last_round_trip_timestamp_seconds` + j + ` > 0)`, legend: "{{broker}}", optional: canaryOff})
	b.timeseries(8, "End-to-end latency vs SLA", "Send call to delivery to the canary's consumer, 50th and 99th percentile from the histogram (buckets are multiples of --canary.sla), and the SLA itself.", unitSeconds,
		q{expr: e2e("0.5"), legend: "{{broker}} p50", optional: canaryOff},
		q{expr: e2e("0.99"), legend: "{{broker}} p99", optional: canaryOff},
		q{expr: `max(rocketmq_canary_sla_seconds` + j + `)`, legend: "SLA", optional: canaryOff})
	b.timeseries(8, "Produce latency", "Send call to SEND_OK of successful probe sends, 50th and 99th percentile.", unitSeconds,
		q{expr: `histogram_quantile(0.5, sum by (broker, le) (rate(rocketmq_canary_produce_latency_seconds_bucket` + j + rateWindow + `)))`, legend: "{{broker}} p50", optional: canaryOff},
		q{expr: `histogram_quantile(0.99, sum by (broker, le) (rate(rocketmq_canary_produce_latency_seconds_bucket` + j + rateWindow + `)))`, legend: "{{broker}} p99", optional: canaryOff})
	b.timeseries(8, "Failed sends, lost and duplicated probes", "Probe sends without SEND_OK, acknowledged probes not received within --canary.lost-after, and probes received twice, per second. An empty broker is a send that failed before a queue was chosen (no route).", unitMsgPerSec,
		q{expr: `sum by (broker) (rate(rocketmq_canary_produce_failures_total` + j + rateWindow + `))`, legend: "{{broker}} failed sends", optional: canaryOff},
		q{expr: `sum by (broker) (rate(rocketmq_canary_messages_lost_total` + j + rateWindow + `))`, legend: "{{broker}} lost", optional: canaryOff},
		q{expr: `sum by (broker) (rate(rocketmq_canary_messages_duplicated_total` + j + rateWindow + `))`, legend: "{{broker}} duplicated", optional: canaryOff})
	b.timeseries(8, "Probes in flight and canary clients", "Acknowledged probes not yet received nor counted lost, and whether each exporter's canary producer and consumer run (1) or are being restarted (0).", unitCount,
		q{expr: `sum by (broker) (rocketmq_canary_messages_in_flight` + j + `)`, legend: "{{broker}} in flight", optional: canaryOff},
		q{expr: `min by (instance) (rocketmq_canary_up` + j + `)`, legend: "{{instance}} clients up", optional: canaryOff})
}

// exporterRow shows the exporter's own health: which collectors fail, what
// they cost, which targets answer and the remoting clients' traffic.
func exporterRow(b *board) {
	j := `{job=~"$job"}`
	b.row("Exporter health")
	b.timeline(12, "Collectors", "Whether each collector succeeded for every target in the scrape (rocketmq_scrape_collector_success), the worst over the exporters of the job. The exporter log says why one fails.", []state{
		{1, "ok", "green"}, {0, "failing", "red"},
	}, q{expr: `min by (collector) (rocketmq_scrape_collector_success` + j + `)`, legend: "{{collector}}"})
	b.timeseries(12, "Collector duration", "Time each collector took in the scrape, the slowest over the exporters, and the whole scrape as Prometheus measured it. Keep it under the scrape timeout.", unitSeconds,
		q{expr: `max by (collector) (rocketmq_scrape_collector_duration_seconds` + j + `)`, legend: "{{collector}}"},
		q{expr: `max by (instance) (scrape_duration_seconds` + j + `)`, legend: "{{instance}} scrape"})
	b.timeline(12, "Targets answering", "Whether each broker and NameServer answered its identity read in the scrape (rocketmq_up).", []state{
		{1, "up", "green"}, {0, "down", "red"},
	}, q{expr: `min by (kind, address) (rocketmq_up` + j + `)`, legend: "{{kind}} {{address}}"})
	b.timeseries(12, "Remoting requests", "Requests the exporter's remoting clients write to RocketMQ servers, and connection attempts, per second (client: default, or auth_module:NAME for /probe).", unitReqPerSec,
		q{expr: `sum by (instance, client) (rate(rocketmq_exporter_remoting_requests_total` + j + rateWindow + `))`, legend: "{{instance}} {{client}} requests"},
		q{expr: `sum by (instance, client) (rate(rocketmq_exporter_remoting_dials_total` + j + rateWindow + `))`, legend: "{{instance}} {{client}} dials"})
	b.timeseries(12, "Remoting errors and timeouts", "Remoting requests that failed (transport errors, timeouts included) and those that failed because the scrape deadline passed, per second.", unitReqPerSec,
		q{expr: `sum by (instance, client) (rate(rocketmq_exporter_remoting_request_errors_total` + j + rateWindow + `))`, legend: "{{instance}} {{client}} errors"},
		q{expr: `sum by (instance, client) (rate(rocketmq_exporter_remoting_request_timeouts_total` + j + rateWindow + `))`, legend: "{{instance}} {{client}} timeouts"})
	b.timeseries(12, "Remoting connections", "Connections the exporter's remoting clients hold open.", unitCount,
		q{expr: `sum by (instance, client) (rocketmq_exporter_remoting_connections` + j + `)`, legend: "{{instance}} {{client}}"})
}

func brokers() *board {
	b := newBoard("rocketmq-broker.json", "rocketmq-broker", "RocketMQ / Broker",
		"One broker group's nodes: role, traffic, latency, disk, queues and flow control (GET_BROKER_RUNTIME_INFO).",
		"job", "cluster", "broker")
	s := sel(cjb)

	b.row("Identity")
	b.timeline(12, "Role", "Live brokerId of each node: 0 is the master (or DLedger leader).", []state{
		{0, "master", "green"}, {1, "slave", "blue"}, {2, "slave", "blue"}, {3, "slave", "blue"}, {-1, "no role", "orange"},
	}, q{expr: `rocketmq_broker_id` + s, legend: "{{address}}"})
	b.table(12, "Nodes", "Version and brokerRole of each node.", unitNone, []string{"__name__", "Value", "job", "instance"},
		q{expr: `rocketmq_broker_info` + s},
		q{expr: `rocketmq_broker_role` + sel(cjb) + ` == 1`})
	b.timeseries(12, "Uptime", "Time since the store booted (bootTimestamp).", unitSeconds,
		q{expr: `time() - rocketmq_broker_boot_timestamp_seconds` + s, legend: "{{address}}"})
	b.timeseries(12, "Commit log growth", "Bytes appended to the commit log per second (commitLogMaxOffset).", unitBytesSec,
		q{expr: `rate(rocketmq_broker_commitlog_max_offset_bytes` + s + rateWindow + `)`, legend: "{{address}}"})

	b.row("Traffic and latency")
	b.timeseries(12, "Messages in", "Messages stored per second (putMessageTimesTotal).", unitMsgPerSec,
		q{expr: `rate(rocketmq_broker_put_messages_total` + s + rateWindow + `)`, legend: "{{address}}"})
	b.timeseries(12, "Messages out", "Messages delivered per second (msgGetTotalTodayNow).", unitMsgPerSec,
		q{expr: `rate(rocketmq_broker_get_messages_total` + s + rateWindow + `)`, legend: "{{address}}"})
	b.timeseries(12, "Bytes in", "Message bytes stored per second (putMessageSizeTotal).", unitBytesSec,
		q{expr: `rate(rocketmq_broker_put_bytes_total` + s + rateWindow + `)`, legend: "{{address}}"})
	b.timeseries(12, "Failed puts", "Puts the store refused per second (putMessageFailedTimes; 4.9.8+ and 5.x).", unitMsgPerSec,
		q{expr: `rate(rocketmq_broker_put_failures_total` + s + rateWindow + `)`, legend: "{{address}}", optional: "putMessageFailedTimes is missing on 4.9.7 and earlier"})
	b.timeseries(12, "Put latency", "99th and 99.9th percentile put latency (putLatency99/999) and the maximum since boot.", unitSeconds,
		q{expr: `rocketmq_broker_put_latency_p99_seconds` + s, legend: "{{address}} p99"},
		q{expr: `rocketmq_broker_put_latency_p999_seconds` + s, legend: "{{address}} p99.9"},
		q{expr: `rocketmq_broker_put_latency_max_seconds` + s, legend: "{{address}} max"})
	b.timeseries(12, "Put latency distribution (last minute)", "Puts of the last full minute per latency range (putMessageDistributeTime).", unitCount,
		q{expr: `sum by (range) (rocketmq_broker_put_latency_last_minute_messages` + s + `)`, legend: "{{range}}", optional: "absent during a broker's first minute"})

	b.row("Disk")
	b.timeseries(12, "Disk used", "Commit log and consume queue disk use. Thresholds: 75 % diskMaxUsedSpaceRatio, 85 % diskSpaceCleanForciblyRatio, 90 % diskSpaceWarningLevelRatio (writes rejected).", unitRatio,
		q{expr: `rocketmq:broker_store_disk_used_ratio` + rsel(cjb), legend: "{{address}} {{store}}"})
	b.timeseries(12, "Commit log disk free", "Free space of the commit log disk (commitLogDirCapacity).", unitBytes,
		q{expr: `rocketmq_broker_commitlog_disk_free_bytes` + s, legend: "{{address}}"})
	b.timeseries(12, "Dispatch and flush backlog", "Commit log bytes not yet dispatched to consume queues, and not yet flushed to disk.", unitBytes,
		q{expr: `rocketmq_broker_dispatch_behind_bytes` + s, legend: "{{address}} dispatch"},
		q{expr: `rocketmq_broker_flush_behind_bytes` + s, legend: "{{address}} flush"})
	b.timeseries(12, "Page cache lock", "How long the current put has held the commit log lock (pageCacheLockTimeMills). Above osPageCacheBusyTimeOutMills (1 s) the broker rejects sends as page-cache busy.", unitSeconds,
		q{expr: `rocketmq_broker_page_cache_lock_seconds` + s, legend: "{{address}}"})

	b.row("Queues and flow control")
	b.timeseries(12, "Thread pool queue size", "Requests waiting per broker thread pool.", unitCount,
		q{expr: `rocketmq_broker_thread_pool_queue_size` + s, legend: "{{address}} {{pool}}"})
	b.timeseries(12, "Thread pool queue head wait", "Age of the oldest queued request. Sends older than waitTimeMillsInSendQueue (200 ms) are rejected with SYSTEM_BUSY.", unitSeconds,
		q{expr: `rocketmq_broker_thread_pool_queue_head_wait_seconds` + s, legend: "{{address}} {{pool}}"})
	b.timeseries(12, "Scheduled (delay) messages waiting", "Messages in the delay-level queues not yet delivered, per level.", unitCount,
		q{expr: `sum by (level) (rocketmq_broker_schedule_delay_messages` + s + `)`, legend: "level {{level}}", optional: "only brokers that have delayed messages report levels"})
	b.timeseries(12, "Broker TPS windows", "The broker's own put and found-get TPS over its 60 s window.", unitMsgPerSec,
		q{expr: `rocketmq_broker_put_messages_per_second` + sel(cjb, `window="60s"`), legend: "{{address}} put"},
		q{expr: `rocketmq_broker_get_found_messages_per_second` + sel(cjb, `window="60s"`), legend: "{{address}} get found"})
	return b
}

func ha() *board {
	b := newBoard("rocketmq-ha.json", "rocketmq-ha", "RocketMQ / HA and DLedger",
		"Failover at a glance: role of every node over time, the leader of each DLedger group, leader changes (annotations), majority and replication lag.",
		"job", "cluster", "broker")
	s := sel(cjb)
	// The agreed leader's index changed within 2 minutes, or differs from
	// the last one before them (a change across a longer leaderless gap);
	// the same test as RocketMQDLedgerLeaderChanged with a 2-minute window.
	idx := `rocketmq_dledger_group_leader_index` + s
	b.annotation("DLedger leader changes", "red",
		`max by (cluster, broker, dledger_group) (
  changes(`+idx+`[2m]) > 0
  or `+idx+` != last_over_time(`+idx+`[1h] offset 2m)
)`,
		"Leader change in {{dledger_group}}")
	b.annotation("Master changes", "orange",
		`count by (cluster, broker) (count_over_time(rocketmq:broker_group_master`+rsel(cjb)+`[2m])) > 1`,
		"Master change in {{broker}}")

	b.row("Roles")
	b.timeline(12, "DLedger role per node", "Each node's own view from its DLedger port (METADATA).", []state{
		{3, "leader", "green"}, {2, "follower", "blue"}, {1, "candidate", "orange"},
	}, q{expr: `max by (cluster, broker, address) (
  (rocketmq_dledger_role` + sel(cjb, `role="leader"`) + ` == 1) * 3
  or (rocketmq_dledger_role` + sel(cjb, `role="follower"`) + ` == 1) * 2
  or (rocketmq_dledger_role` + sel(cjb, `role="candidate"`) + ` == 1)
)`, legend: "{{address}}"})
	b.timeline(12, "Master/slave role per node", "Live brokerId of each node: 0 is the master (or DLedger leader).", []state{
		{0, "master", "green"}, {1, "slave", "blue"}, {2, "slave", "blue"}, {3, "slave", "blue"}, {-1, "no role", "orange"},
	}, q{expr: `rocketmq_broker_id` + s, legend: "{{broker}} {{address}}"})
	b.timeline(12, "Leader per DLedger group", "The leader each DLedger group agrees on (rocketmq_dledger_group_leader): it answers, claims the role and a majority of the peers names it. Gaps are time without one.", []state{
		{1, "leader", "green"},
	}, q{expr: `max by (cluster, broker, dledger_group, leader_id) (rocketmq_dledger_group_leader` + s + `)`, legend: "{{dledger_group}}: {{leader_id}}"})
	b.timeline(12, "Master per group", "Which node is master of each broker group (rocketmq:broker_group_master).", []state{
		{1, "master", "green"},
	}, q{expr: `rocketmq:broker_group_master` + rsel(cjb), legend: "{{broker}}: {{address}}"})

	b.row("DLedger groups")
	b.timeseries(8, "Has leader / majority", "1 when the group has a leader a majority acknowledges; 1 when a majority of peers answers.", unitNone,
		q{expr: `max by (cluster, broker, dledger_group) (rocketmq_dledger_group_has_leader` + s + `)`, legend: "{{dledger_group}} has leader"},
		q{expr: `max by (cluster, broker, dledger_group) (rocketmq_dledger_group_quorum` + s + `)`, legend: "{{dledger_group}} majority"})
	b.timeseries(8, "Peers answering", "DLedger peers answering METADATA, and peers configured.", unitNone,
		q{expr: `max by (cluster, broker, dledger_group) (rocketmq_dledger_group_peers_up` + s + `)`, legend: "{{dledger_group}} up"},
		q{expr: `max by (cluster, broker, dledger_group) (rocketmq_dledger_group_peers` + s + `)`, legend: "{{dledger_group}} configured"})
	b.timeseries(8, "Leader changes", "Changes of the agreed leader per interval, counted with changes() over the stored leader index (rocketmq_dledger_group_leader_index), so exporter restarts do not matter; the most any exporter of the group saw.", unitCount,
		q{expr: `max by (cluster, broker, dledger_group) (changes(rocketmq_dledger_group_leader_index` + s + rateWindow + `))`, legend: "{{dledger_group}}"})

	b.row("Replication")
	b.timeseries(12, "Replication lag", "Bytes each slave is behind its master's commit log. Past 256 MiB (haSlaveFallbehindMax / haMaxGapNotInSync) the master counts it out of sync.", unitBytes,
		q{expr: `rocketmq_ha_replication_lag_bytes` + s, legend: "{{broker}} {{address}}"})
	b.timeseries(12, "Masters and slaves per group", "Members answering as master (more than 1 is a split brain) and as slaves (DLedger followers included); cluster mode.", unitNone,
		q{expr: `max by (cluster, broker) (rocketmq_ha_group_masters` + s + `)`, legend: "{{broker}} masters"},
		q{expr: `max by (cluster, broker) (rocketmq_ha_group_slaves` + s + `)`, legend: "{{broker}} slaves"})
	b.timeseries(12, "5.x: in-sync slaves and ack lag", "RocketMQ 5.x HA status (GET_BROKER_HA_STATUS): slaves in sync, and the largest unacknowledged bytes.", unitNone,
		q{expr: `rocketmq_ha_in_sync_slaves` + s, legend: "{{address}} in sync", optional: "RocketMQ 5.x only"},
		q{expr: `rocketmq_ha_slave_ack_lag_max_bytes` + s, legend: "{{address}} ack lag bytes", optional: "RocketMQ 5.x only"})
	b.timeseries(12, "5.x controller: master epoch", "masterEpoch per group in the 5.x controller; it increases at each master change.", unitNone,
		q{expr: `max by (cluster, broker) (rocketmq_controller_master_epoch` + s + `)`, legend: "{{broker}}", optional: "RocketMQ 5.x controller mode only"})
	return b
}

func consumers() *board {
	b := newBoard("rocketmq-consumers.json", "rocketmq-consumers", "RocketMQ / Consumer groups",
		"Consumer groups: lag in messages and seconds, consumption rate, status verdict, consumers online, retry and dead-letter queues.",
		"job", "cluster", "group", "topic")
	s := sel(cjg)
	g := sel([]string{"group"})

	b.row("Lag")
	b.timeseries(12, "Lag (messages)", "Unconsumed messages per group and topic, over all brokers.", unitCount,
		q{expr: `sum by (cluster, group, topic) (rocketmq_consumer_group_lag_messages` + s + `)`, legend: "{{group}} on {{topic}}"})
	b.timeseries(12, "Lag (age of the oldest unconsumed message)", "How long ago the oldest message not yet consumed was stored.", unitSeconds,
		q{expr: `max by (cluster, group, topic) (rocketmq_consumer_group_lag_seconds` + s + `)`, legend: "{{group}} on {{topic}}"})
	b.timeseries(12, "Consumed", "Messages committed per second (rate of the committed offsets).", unitMsgPerSec,
		q{expr: `sum by (cluster, group, topic) (rate(rocketmq_consumer_group_consumed_messages_total` + s + rateWindow + `))`, legend: "{{group}} on {{topic}}"})
	b.timeseries(12, "Consume TPS reported by clients", "consumeTps the brokers report for each group.", unitMsgPerSec,
		q{expr: `sum by (cluster, group) (rocketmq_consumer_group_consume_messages_per_second` + g + `)`, legend: "{{group}}"})

	b.row("Status")
	b.timeline(12, "Status", "The exporter's verdict per group: ok, lagging (lag growing), stalled (lag while offsets stand still), stopped (lag and no consumer). The worst over brokers.", []state{
		{1, "ok", "green"}, {2, "lagging", "yellow"}, {3, "stalled", "orange"}, {4, "stopped", "red"},
	}, q{expr: `max by (cluster, group) (
  (rocketmq_consumer_group_status` + sel([]string{"group"}, `status="stopped"`) + ` == 1) * 4
  or (rocketmq_consumer_group_status` + sel([]string{"group"}, `status="stalled"`) + ` == 1) * 3
  or (rocketmq_consumer_group_status` + sel([]string{"group"}, `status="lagging"`) + ` == 1) * 2
  or (rocketmq_consumer_group_status` + sel([]string{"group"}, `status="ok"`) + ` == 1)
)`, legend: "{{group}}"})
	b.timeseries(12, "Consumers online", "Consumer connections of each group (the largest count over brokers).", unitNone,
		q{expr: `max by (cluster, group) (rocketmq_consumer_group_consumers` + g + `)`, legend: "{{group}}"})
	b.table(24, "Online groups", "Message model and consume type of online groups.", unitNone, []string{"__name__", "Value", "job", "instance", "broker"},
		q{expr: `max by (cluster, group, message_model, consume_type) (rocketmq_consumer_group_info` + g + `)`})

	b.row("Retry and dead letters")
	b.timeseries(12, "Retry lag", "Unconsumed messages in %RETRY%<group>.", unitCount,
		q{expr: `sum by (cluster, group) (rocketmq_consumer_group_retry_lag_messages` + g + `)`, legend: "{{group}}"})
	b.timeseries(12, "Dead-letter messages", "Messages held in %DLQ%<group>: they failed every retry (maxReconsumeTimes).", unitCount,
		q{expr: `sum by (cluster, group) (rocketmq_consumer_group_dlq_messages` + g + `)`, legend: "{{group}}", optional: "only groups with a DLQ topic"})
	return b
}

func topics() *board {
	b := newBoard("rocketmq-topics.json", "rocketmq-topics", "RocketMQ / Topics",
		"Topics: produce rate, retained messages, queues, and the consumer groups reading them.",
		"job", "cluster", "topic")
	s := sel(cjt, `type="normal"`)

	b.row("Topics")
	b.stat(6, "Topics", "Normal topics with queues on the selected brokers.", unitNone, nil,
		q{expr: `count(count by (topic) (rocketmq_topic_messages_total` + s + `))`})
	b.stat(6, "Messages in", "Messages stored per second in the selected topics.", unitMsgPerSec, nil,
		q{expr: `sum(rate(rocketmq_topic_messages_total` + s + rateWindow + `))`})
	b.stat(6, "Retained messages", "Messages still on disk in the selected topics.", unitCount, nil,
		q{expr: `sum(rocketmq_topic_retained_messages` + s + `)`})
	b.stat(6, "Write queues", "Write queues of the selected topics over all brokers.", unitNone, nil,
		q{expr: `sum(rocketmq_topic_queues` + s + `)`})
	b.timeseries(12, "Messages in per topic", "Messages stored per second (rate of the summed queue max offsets).", unitMsgPerSec,
		q{expr: `sum by (cluster, topic) (rate(rocketmq_topic_messages_total` + s + rateWindow + `))`, legend: "{{topic}}"})
	b.timeseries(12, "Messages in per broker group", "How the selected topics' traffic spreads over broker groups.", unitMsgPerSec,
		q{expr: `sum by (cluster, broker) (rate(rocketmq_topic_messages_total` + s + rateWindow + `))`, legend: "{{broker}}"})
	b.timeseries(12, "Retained messages per topic", "Messages between the min and max offsets of the topic's queues.", unitCount,
		q{expr: `sum by (cluster, topic) (rocketmq_topic_retained_messages` + s + `)`, legend: "{{topic}}"})
	b.timeseries(12, "Time since last write", "Time since a message was last stored in the topic (lastUpdateTimestamp).", unitSeconds,
		q{expr: `time() - max by (cluster, topic) (rocketmq_topic_last_update_timestamp_seconds` + s + `)`, legend: "{{topic}}"})
	b.timeseries(24, "Consumer lag on the selected topics", "Unconsumed messages per consumer group of the selected topics.", unitCount,
		q{expr: `sum by (cluster, group, topic) (rocketmq_consumer_group_lag_messages` + sel(cjt) + `)`, legend: "{{group}} on {{topic}}"})
	return b
}
