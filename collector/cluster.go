package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// clusterCollector reports the topology the NameServer publishes. It only
// works in cluster mode: a sidecar knows its own broker, not the cluster.
type clusterCollector struct {
	logger *slog.Logger

	memberID *prometheus.Desc
	members  *prometheus.Desc
	masters  *prometheus.Desc
	topics   *prometheus.Desc
}

func newClusterCollector(_ Options, logger *slog.Logger) (Collector, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	name := func(n string) string { return prometheus.BuildFQName(Namespace, "cluster", n) }
	groupLabels := []string{"cluster", "broker"}
	return &clusterCollector{
		logger: logger,
		memberID: prometheus.NewDesc(name("broker_member_id"),
			"brokerId the NameServer lists for this broker address (GET_BROKER_CLUSTER_INFO brokerAddrTable[].brokerAddrs key; 0 = master or DLedger leader).",
			brokerLabelNames(), nil),
		members: prometheus.NewDesc(name("broker_group_members"),
			"Broker addresses the NameServer lists for the broker group (GET_BROKER_CLUSTER_INFO brokerAddrTable[].brokerAddrs).",
			groupLabels, nil),
		masters: prometheus.NewDesc(name("broker_group_masters"),
			"Members of the broker group registered with brokerId 0 (GET_BROKER_CLUSTER_INFO); 0 means the group has no master or DLedger leader right now.",
			groupLabels, nil),
		topics: prometheus.NewDesc(name("topics"),
			"Topics known to the NameServer, including retry, DLQ and system topics (GET_ALL_TOPIC_LIST_FROM_NAMESERVER topicList); absent when the NameServer disables the list.",
			nil, nil),
	}, nil
}

func (c *clusterCollector) Update(ctx context.Context, s *Scrape, ch chan<- prometheus.Metric) error {
	if s.Mode != ModeCluster {
		return nil
	}
	ci := s.ClusterInfo
	if ci == nil {
		return errors.New("no NameServer answered GET_BROKER_CLUSTER_INFO")
	}

	// The cluster of a group is the one its own BrokerData names; the
	// clusterAddrTable is only consulted for groups that do not say, so one
	// NameServer serving several clusters labels every group right.
	clusterOf := make(map[string]string)
	for cluster, groups := range ci.ClusterAddrTable {
		for _, g := range groups {
			clusterOf[g] = cluster
		}
	}
	names := make([]string, 0, len(ci.BrokerAddrTable))
	for name := range ci.BrokerAddrTable {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		bd := ci.BrokerAddrTable[name]
		cluster := bd.Cluster
		if cluster == "" {
			cluster = clusterOf[name]
		}
		masters := 0
		for id, addr := range bd.BrokerAddrs {
			if id == 0 {
				masters++
			}
			ch <- prometheus.MustNewConstMetric(c.memberID, prometheus.GaugeValue, float64(id), cluster, name, addr)
		}
		ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(len(bd.BrokerAddrs)), cluster, name)
		ch <- prometheus.MustNewConstMetric(c.masters, prometheus.GaugeValue, float64(masters), cluster, name)
	}
	// A group the cluster table still names but with no live member at all.
	for cluster, groups := range ci.ClusterAddrTable {
		for _, g := range groups {
			if _, ok := ci.BrokerAddrTable[g]; ok {
				continue
			}
			ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, 0, cluster, g)
			ch <- prometheus.MustNewConstMetric(c.masters, prometheus.GaugeValue, 0, cluster, g)
		}
	}
	return c.topicCount(ctx, s, ch)
}

// topicCount asks one NameServer that answered the cluster info for its topic
// list. A 5.x NameServer with enableAllTopicList=false refuses with
// SYSTEM_ERROR "disable"; that is configuration, not a failure.
func (c *clusterCollector) topicCount(ctx context.Context, s *Scrape, ch chan<- prometheus.Metric) error {
	for _, ns := range s.NameServers {
		if ns.Err != nil {
			continue
		}
		tl, err := s.Client.TopicList(ctx, ns.Addr)
		if err != nil {
			var re *rocketmq.ResponseError
			if errors.As(err, &re) && re.Code == rocketmq.ResponseSystemError && strings.Contains(re.Remark, "disable") {
				c.logger.Debug("NameServer has the topic list disabled", "namesrv", ns.Addr)
				return nil
			}
			return fmt.Errorf("namesrv %s: topic list: %w", ns.Addr, err)
		}
		n := 0
		if tl != nil {
			n = len(tl.TopicList)
		}
		ch <- prometheus.MustNewConstMetric(c.topics, prometheus.GaugeValue, float64(n))
		return nil
	}
	return nil
}
