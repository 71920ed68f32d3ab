package rmqsim

import (
	"embed"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// The broker config bodies are the recorded ones (key order and every
// default included) with the node's live values patched in.
//
//go:embed templates/*.properties
var templates embed.FS

func loadTemplate(name string) [][2]string {
	b, err := templates.ReadFile("templates/" + name)
	if err != nil {
		panic("rmqsim: missing embedded template " + name)
	}
	var out [][2]string
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out = append(out, [2]string{k, v})
		}
	}
	return out
}

var (
	template497        = loadTemplate("broker-4.9.7.properties")
	template497DLedger = loadTemplate("broker-4.9.7-dledger.properties")
	template500        = loadTemplate("broker-5.0.0.properties")
)

const storeRoot = "/home/rocketmq/store"

// commitLogPath is the store path the runtime info reports per disk.
func (n *Node) commitLogPath() string {
	if n.g.spec.Mode == DLedger {
		return storeRoot + "/dledger-" + n.selfID() + "/data"
	}
	return storeRoot + "/commitlog"
}

func (n *Node) configText() []byte {
	c, g := n.c, n.g
	var tpl [][2]string
	switch {
	case c.ver.v5:
		tpl = template500
	case g.spec.Mode == DLedger:
		tpl = template497DLedger
	default:
		tpl = template497
	}
	kv := make([][2]string, len(tpl))
	copy(kv, tpl)
	index := make(map[string]int, len(kv))
	for i, e := range kv {
		index[e[0]] = i
	}
	set := func(k, v string) {
		if i, ok := index[k]; ok {
			kv[i][1] = v
			return
		}
		index[k] = len(kv)
		kv = append(kv, [2]string{k, v})
	}
	addr := n.srv.Addr()
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	set("brokerClusterName", g.spec.Cluster)
	set("brokerName", g.spec.Name)
	set("brokerId", strconv.FormatInt(n.brokerID, 10))
	set("brokerRole", n.role)
	set("listenPort", port)
	set("haListenPort", portPlus(addr, 1)[strings.LastIndexByte(portPlus(addr, 1), ':')+1:])
	set("brokerIP1", c.host)
	set("brokerIP2", c.host)
	set("namesrvAddr", c.namesrvList())
	set("aclEnable", strconv.FormatBool(c.acl != nil))
	set("enableDLegerCommitLog", strconv.FormatBool(g.spec.Mode == DLedger))
	if g.spec.Mode == DLedger {
		var peers []string
		for _, p := range g.nodes {
			peers = append(peers, p.selfID()+"-"+p.DLedgerAddr())
		}
		set("dLegerGroup", g.spec.Name)
		set("dLegerPeers", strings.Join(peers, ";"))
		set("dLegerSelfId", n.selfID())
	}
	if c.ver.v5 {
		set("enableControllerMode", strconv.FormatBool(g.spec.Mode == Controller))
		if g.spec.Mode == Controller {
			set("controllerAddr", c.ctrl.Addr())
		}
	}
	for k, v := range n.configOverride {
		set(k, v)
	}
	if c.ver.v5 {
		// 5.0 writes its properties sorted.
		sort.Slice(kv, func(i, j int) bool { return kv[i][0] < kv[j][0] })
	}
	var b strings.Builder
	for _, e := range kv {
		b.WriteString(e[0])
		b.WriteByte('=')
		b.WriteString(e[1])
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

var tpsWindows = []int64{10, 60, 600}

// tpsString renders a StoreStatsService TPS value: the rates over the last
// 10 s, 60 s and 600 s separated by spaces, a window without enough samples
// empty — or "0.0" for getTotalTps.
func tpsString(up, now int64, zeroWhenShort bool, ss ...*series) string {
	parts := make([]string, len(tpsWindows))
	for i, w := range tpsWindows {
		if up < w*1000 {
			if zeroWhenShort {
				parts[i] = "0.0"
			}
			continue
		}
		var sum int64
		for _, s := range ss {
			k, _ := s.sum(now, w*1000)
			sum += k
		}
		parts[i] = javaDouble(float64(sum) / float64(w))
	}
	return strings.Join(parts, " ")
}

func runtimeText(ms int64) string {
	s := ms / 1000
	return fmt.Sprintf("[ %d days, %d hours, %d minutes, %d seconds ]", s/86400, s%86400/3600, s%3600/60, s%60)
}

func ratio(total, free int64) string {
	if total <= 0 {
		return "-1"
	}
	r := float64(total-free) / float64(total)
	return javaDouble(math.Round(r*100) / 100)
}

// Latency histogram buckets of putMessageDistributeTime and a representative
// latency (ms) of each, used for putLatency99/999.
var (
	latencyBuckets = []string{"<=0ms", "0~10ms", "10~50ms", "50~100ms", "100~200ms", "200~500ms", "500ms~1s", "1~2s", "2~3s", "3~4s", "4~5s", "5~10s", "10s~"}
	latencyValues  = []float64{0, 5, 20, 75, 150, 350, 750, 1500, 2500, 3500, 4500, 7500, 10000}
)

func percentile(hist []int64, p float64) float64 {
	var total int64
	for _, v := range hist {
		total += v
	}
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(p * float64(total)))
	var acc int64
	for i, v := range hist {
		acc += v
		if acc >= rank {
			return latencyValues[i]
		}
	}
	return latencyValues[len(latencyValues)-1]
}

func (n *Node) runtimeTable() jmap {
	c, g, s := n.c, n.g, n.stats
	now := c.nowMs()
	up := now - n.bootMs
	kv := map[string]string{}

	putTimes := s.puts.total
	kv["putMessageTimesTotal"] = strconv.FormatInt(max(putTimes, 1), 10)
	kv["putMessageSizeTotal"] = strconv.FormatInt(s.putBytes.total, 10)
	avg := 0.0
	if putTimes > 0 {
		avg = float64(s.putBytes.total) / float64(putTimes)
	}
	kv["putMessageAverageSize"] = javaDouble(avg)
	kv["putMessageFailedTimes"] = "0"
	kv["putTps"] = tpsString(up, now, false, s.puts)
	kv["getFoundTps"] = tpsString(up, now, false, s.found)
	kv["getMissTps"] = tpsString(up, now, false, s.miss)
	kv["getTotalTps"] = tpsString(up, now, true, s.found, s.miss)
	if c.ver.v5 {
		kv["getTransferredTps"] = tpsString(up, now, false, s.found)
	} else {
		kv["getTransferedTps"] = tpsString(up, now, false, s.found)
	}

	lastMin, _ := s.putHist.sum(now, 60_000)
	hist := make([]int64, len(latencyBuckets))
	hist[0] = lastMin * 80 / 100
	hist[1] = lastMin * 18 / 100
	hist[2] = lastMin - hist[0] - hist[1]
	if up < 60_000 {
		// The histogram is a snapshot of the previous full minute.
		kv["putMessageDistributeTime"] = "null"
	} else {
		var b strings.Builder
		for i, name := range latencyBuckets {
			fmt.Fprintf(&b, "[%s]:%d ", name, hist[i])
		}
		kv["putMessageDistributeTime"] = b.String()
	}
	kv["putLatency99"] = fmt.Sprintf("%.2f", percentile(hist, 0.99))
	kv["putLatency999"] = fmt.Sprintf("%.2f", percentile(hist, 0.999))
	kv["putMessageEntireTimeMax"] = "0"
	if putTimes > 0 {
		kv["putMessageEntireTimeMax"] = "39"
	}
	kv["getMessageEntireTimeMax"] = "0"
	if s.found.total > 0 {
		kv["getMessageEntireTimeMax"] = "2"
	}

	today := dayStart(now)
	yesterday := dayStart(today - 1)
	kv["msgPutTotalTodayNow"] = strconv.FormatInt(s.puts.total, 10)
	kv["msgPutTotalTodayMorning"] = strconv.FormatInt(s.putDays.before(today), 10)
	kv["msgPutTotalYesterdayMorning"] = strconv.FormatInt(s.putDays.before(yesterday), 10)
	kv["msgGetTotalTodayNow"] = strconv.FormatInt(s.found.total, 10)
	kv["msgGetTotalTodayMorning"] = strconv.FormatInt(s.getDays.before(today), 10)
	kv["msgGetTotalYesterdayMorning"] = strconv.FormatInt(s.getDays.before(yesterday), 10)

	maxOff := n.commitLogMax()
	minOff := int64(0)
	if maxOff == 0 {
		minOff = -1
	}
	kv["commitLogMaxOffset"] = strconv.FormatInt(maxOff, 10)
	kv["commitLogMinOffset"] = strconv.FormatInt(minOff, 10)
	lastSec, _ := s.puts.sum(now, 1000)
	kv["remainHowManyDataToFlush"] = humanBytes(lastSec * msgSize / 2)
	kv["dispatchBehindBytes"] = "0"
	kv["dispatchMaxBuffer"] = "0"
	kv["pageCacheLockTimeMills"] = "0"
	kv["earliestMessageTimeStamp"] = "-1"
	kv["startAcceptSendRequestTimeStamp"] = "0"
	kv["remainTransientStoreBufferNumbs"] = "2147483647"

	kv["commitLogDirCapacity"] = "Total : " + humanBytes(n.diskTotal) + ", Free : " + humanBytes(n.diskFree) + "."
	r := ratio(n.diskTotal, n.diskFree)
	kv["commitLogDiskRatio"] = r
	kv["commitLogDiskRatio_"+n.commitLogPath()] = r
	kv["consumeQueueDiskRatio"] = r

	for level, v := range g.schedule {
		kv["scheduleMessageOffset_"+strconv.Itoa(level)] = strconv.FormatInt(v[0], 10) + "," + strconv.FormatInt(v[1], 10)
	}
	for _, pool := range []string{"send", "pull", "query"} {
		kv[pool+"ThreadPoolQueueSize"] = "0"
		kv[pool+"ThreadPoolQueueHeadWaitTimeMills"] = "0"
	}
	kv["sendThreadPoolQueueCapacity"] = "10000"
	kv["pullThreadPoolQueueCapacity"] = "100000"
	kv["queryThreadPoolQueueCapacity"] = "20000"
	kv["EndTransactionQueueSize"] = "0"
	kv["EndTransactionThreadPoolQueueCapacity"] = "100000"

	kv["bootTimestamp"] = strconv.FormatInt(n.bootMs, 10)
	kv["runtime"] = runtimeText(up)
	kv["brokerVersion"] = strconv.Itoa(c.ver.code)
	kv["brokerVersionDesc"] = c.ver.desc

	if c.ver.v5 {
		kv["brokerActive"] = strconv.FormatBool(n.isMaster())
		kv["litePullThreadPoolQueueSize"] = "0"
		kv["litePullThreadPoolQueueCapacity"] = "100000"
		kv["litePullThreadPoolQueueHeadWaitTimeMills"] = "0"
		kv["timerReadBehind"] = "0"
		kv["timerOffsetBehind"] = "0"
		kv["timerCongestNum"] = "0"
		kv["timerEnqueueTps"] = "0.0"
		kv["timerDequeueTps"] = "0.0"
	}

	for k, v := range n.runtimeOverride {
		kv[k] = v
	}
	for k := range n.runtimeRemoved {
		delete(kv, k)
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(jmap, len(keys))
	for i, k := range keys {
		out[i] = jentry{jstr(k), jstr(kv[k])}
	}
	return out
}
