package rmqsim

import (
	"sort"
	"strings"
	"time"
)

// msgSize is the commitlog footprint of one simulated message (the recorded
// brokers averaged ~225 bytes).
const msgSize = 225

// maxRuns bounds the timestamp runs kept per queue; beyond it the two oldest
// runs merge (old store times get coarser, nothing is lost).
const maxRuns = 2048

// run is a range of consecutive messages stored at the same millisecond.
type run struct{ start, n, ts int64 }

// queue is one consume queue: its offsets and the store time of every message.
type queue struct {
	min, max int64
	runs     []run
}

func (q *queue) put(n, ts int64) {
	if n <= 0 {
		return
	}
	if k := len(q.runs); k > 0 && q.runs[k-1].ts == ts && q.runs[k-1].start+q.runs[k-1].n == q.max {
		q.runs[k-1].n += n
		q.max += n
		return
	}
	q.runs = append(q.runs, run{start: q.max, n: n, ts: ts})
	q.max += n
	if len(q.runs) > maxRuns {
		q.runs[0].n += q.runs[1].n
		q.runs = append(q.runs[:1], q.runs[2:]...)
	}
}

// storeTime is the store timestamp of the message at off, or -1 when the
// offset holds no message (DefaultMessageStore.getMessageStoreTimeStamp).
func (q *queue) storeTime(off int64) int64 {
	if off < q.min || off >= q.max {
		return -1
	}
	i := sort.Search(len(q.runs), func(i int) bool { return q.runs[i].start+q.runs[i].n > off })
	if i == len(q.runs) {
		return -1
	}
	return q.runs[i].ts
}

func (q *queue) expire(upTo int64) {
	if upTo > q.max {
		upTo = q.max
	}
	if upTo <= q.min {
		return
	}
	q.min = upTo
	i := 0
	for i < len(q.runs) && q.runs[i].start+q.runs[i].n <= upTo {
		i++
	}
	q.runs = append(q.runs[:0], q.runs[i:]...)
}

// topicConf is one TopicConfig plus its queues on one broker group.
type topicConf struct {
	name    string
	perm    int
	order   bool
	sysFlag int
	queues  []*queue
}

func newTopic(name string, queues, perm int) *topicConf {
	t := &topicConf{name: name, perm: perm}
	t.queues = make([]*queue, queues)
	for i := range t.queues {
		t.queues[i] = &queue{}
	}
	return t
}

// dataVersion is the broker's DataVersion stamp of a metadata table.
type dataVersion struct{ counter, ts int64 }

func (d *dataVersion) bump(now int64) {
	d.counter++
	d.ts = now
}

func (d dataVersion) jv(v5 bool) jv {
	b := jbean{"counter": jint(d.counter), "timestamp": jint(d.ts)}
	if v5 {
		b["stateVersion"] = jint(0)
	}
	return b
}

// series counts events over time in buckets of res milliseconds, keeping
// horizon milliseconds of history, plus totals since creation.
type series struct {
	res, horizon int64
	pts          []point
	total        int64
	totalTimes   int64
}

type point struct{ at, n, times int64 }

func newSeries(res, horizon time.Duration) *series {
	return &series{res: res.Milliseconds(), horizon: horizon.Milliseconds()}
}

func (s *series) add(now, n, times int64) {
	s.total += n
	s.totalTimes += times
	at := now - now%s.res
	if k := len(s.pts); k > 0 && s.pts[k-1].at == at {
		s.pts[k-1].n += n
		s.pts[k-1].times += times
	} else {
		s.pts = append(s.pts, point{at: at, n: n, times: times})
	}
	cut := 0
	for cut < len(s.pts) && s.pts[cut].at < now-s.horizon {
		cut++
	}
	if cut > 0 {
		s.pts = append(s.pts[:0], s.pts[cut:]...)
	}
}

// sum counts the events of the last window milliseconds.
func (s *series) sum(now, window int64) (n, times int64) {
	for i := len(s.pts) - 1; i >= 0; i-- {
		if s.pts[i].at <= now-window {
			break
		}
		n += s.pts[i].n
		times += s.pts[i].times
	}
	return n, times
}

// dayCounter keeps daily totals for the msgPutTotal*/msgGetTotal* keys,
// which the broker snapshots at midnight.
type dayCounter map[int64]int64

func dayStart(ms int64) int64 {
	t := time.UnixMilli(ms)
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location()).UnixMilli()
}

func (d dayCounter) add(now, n int64) { d[dayStart(now)] += n }

// before sums the days that started before the given day start.
func (d dayCounter) before(day int64) int64 {
	var s int64
	for k, v := range d {
		if k < day {
			s += v
		}
	}
	return s
}

// nodeStats is what a broker process counts since its boot; a restart starts
// from zero.
type nodeStats struct {
	puts, putBytes, found, miss *series
	putDays, getDays            dayCounter
	items                       map[string]*series // statsName + "\x00" + statsKey
	putHist                     *series            // puts for the latency histogram (1 min)
}

func newNodeStats() *nodeStats {
	return &nodeStats{
		puts:     newSeries(time.Second, 11*time.Minute),
		putBytes: newSeries(time.Second, 11*time.Minute),
		found:    newSeries(time.Second, 11*time.Minute),
		miss:     newSeries(time.Second, 11*time.Minute),
		putDays:  dayCounter{},
		getDays:  dayCounter{},
		items:    make(map[string]*series),
		putHist:  newSeries(time.Second, 2*time.Minute),
	}
}

func (s *nodeStats) item(name, key string) *series {
	k := name + "\x00" + key
	it := s.items[k]
	if it == nil {
		it = newSeries(10*time.Second, 25*time.Hour)
		s.items[k] = it
	}
	return it
}

func (s *nodeStats) lookup(name, key string) *series { return s.items[name+"\x00"+key] }

// Topic name classes, as the broker and the exporter tell them apart.
const (
	retryPrefix = "%RETRY%"
	dlqPrefix   = "%DLQ%"
)

func isRetry(topic string) bool { return strings.HasPrefix(topic, retryPrefix) }
