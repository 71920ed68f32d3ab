// Package canary is the exporter's end-to-end probe: a real producer and
// push consumer (rocketmq-client-go) exchange probe messages over a probe
// topic, which proves what broker statistics cannot — that clients can
// publish and consume right now — and measures produce and end-to-end
// latency, loss and duplicates.
//
// The probe runs in the background on its own schedule. A scrape only reads
// what it recorded (Canary is a prometheus.Collector for the exporter's
// long-lived registry), so a hung client never blocks or slows a scrape.
//
// In cluster mode the canary probes every broker group hosting the topic and
// labels everything by broker group. In sidecar mode it probes the queues of
// the local broker groups only: the producer's queue selector and the
// consumer's queue allocation both pick queues of those groups, and only
// probes received from them count, so each broker gets its own verdict.
//
// Every canary instance tags its probes with a random run id and counts only
// its own: several exporters (sidecars of one broker group, a redundant
// pair) can share the topic and the consumer group. Each of them consumes
// the queues it probes whatever the group's other members do, so the group's
// committed offsets are shared, not partitioned.
package canary

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// Defaults of Config.
const (
	DefaultTopic       = "rocketmq_exporter_canary"
	DefaultGroup       = "rocketmq_exporter_canary"
	DefaultInterval    = time.Second
	DefaultSLA         = time.Second
	DefaultLostAfter   = time.Minute
	DefaultSendTimeout = 3 * time.Second
)

// Bounds on everything that waits on the client library.
const (
	// startTimeout bounds discovery plus the start of producer and
	// consumer (route reads, first heartbeats).
	startTimeout = 30 * time.Second
	// shutdownTimeout bounds the shutdown of producer and consumer
	// (offset persistence, connection close).
	shutdownTimeout = 10 * time.Second
	// lookupTimeout bounds each DNS lookup of a NameServer host name.
	lookupTimeout = 5 * time.Second
	// sendGrace is how much longer than SendTimeout the prober waits for a
	// send before it moves on; the library applies its own timeouts too.
	sendGrace = time.Second
	// consumeTimeout is the push consumer's ConsumeTimeout. The callback
	// returns at once; the value matters because one library goroutine
	// sleeps that long before it looks at the shutdown signal.
	consumeTimeout = 10 * time.Second
	// retryBackoffMax caps the wait between failed client starts.
	retryBackoffMax = 30 * time.Second
	// autoCreateKey is the default topic brokers copy when they auto-create
	// a topic.
	autoCreateKey = "TBW102"
	// probeTag is the tag of every probe message.
	probeTag = "rocketmq_exporter_canary"
	// maxWindow bounds the sequence numbers remembered for duplicate and
	// late detection.
	maxWindow = 1 << 20
)

// Config configures a Canary.
type Config struct {
	// NameServers the clients use. In sidecar mode, empty means the
	// NameServers the local brokers are registered with (namesrvAddr).
	NameServers []string
	// LocalBrokers switches to sidecar mode: only the broker groups of
	// these broker addresses are probed.
	LocalBrokers []string
	// Admin reads routes and broker configs with the exporter's client.
	Admin Admin

	// Topic must exist on the probed broker groups, or be auto-creatable
	// (autoCreateTopicEnable). Group is the consumer (and producer) group.
	Topic, Group string

	// Interval between probes.
	Interval time.Duration
	// SLA is the end-to-end latency target; histogram buckets are built
	// around it.
	SLA time.Duration
	// LostAfter is how long an acknowledged probe may stay unseen before it
	// counts as lost.
	LostAfter time.Duration
	// SendTimeout bounds one send.
	SendTimeout time.Duration

	// Credentials sign every request when ACL is on (nil: none). The
	// account needs PUB on the topic and SUB on the topic and group.
	Credentials *rocketmq.Credentials

	Logger *slog.Logger
	// ClientLogLevel is the lowest client library level that reaches
	// Logger (default error).
	ClientLogLevel ClientLogLevel
}

var (
	validTopicName = regexp.MustCompile(`^[%|a-zA-Z0-9_-]+$`)
	validGroupName = regexp.MustCompile(`^[%|a-zA-Z0-9_-]+$`)
)

func (c *Config) applyDefaults() {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.SLA == 0 {
		c.SLA = DefaultSLA
	}
	if c.LostAfter == 0 {
		c.LostAfter = DefaultLostAfter
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = DefaultSendTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ClientLogLevel == 0 {
		c.ClientLogLevel = ClientLogError
	}
}

// Validate applies the defaults to a copy of c and checks it; a missing
// Admin is not reported, so flags can be checked before any client exists.
func (c Config) Validate() error {
	c.applyDefaults()
	if c.Admin == nil {
		c.Admin = noAdmin{}
	}
	return c.validate()
}

// noAdmin only stands in for Validate.
type noAdmin struct{}

func (noAdmin) BrokerConfig(context.Context, string) (rocketmq.BrokerConfig, error) {
	return nil, errors.New("no admin client")
}

func (noAdmin) TopicRoute(context.Context, string, string) (*rocketmq.TopicRouteData, error) {
	return nil, errors.New("no admin client")
}

// Validate checks a Config after defaults are applied.
func (c *Config) validate() error {
	var errs []error
	if len(c.Topic) > 127 || !validTopicName.MatchString(c.Topic) {
		errs = append(errs, fmt.Errorf("topic %q: want 1-127 characters of [%%|a-zA-Z0-9_-]", c.Topic))
	}
	if len(c.Group) > 255 || !validGroupName.MatchString(c.Group) {
		errs = append(errs, fmt.Errorf("group %q: want 1-255 characters of [%%|a-zA-Z0-9_-]", c.Group))
	}
	if c.Interval < time.Millisecond {
		errs = append(errs, errors.New("interval must be at least 1ms"))
	}
	if c.SLA <= 0 {
		errs = append(errs, errors.New("SLA must be positive"))
	}
	if c.LostAfter <= c.SLA {
		errs = append(errs, errors.New("lost-after must be longer than the SLA"))
	}
	if c.SendTimeout <= 0 {
		errs = append(errs, errors.New("send timeout must be positive"))
	}
	if c.Interval > 0 && c.LostAfter/c.Interval > maxWindow/4 {
		errs = append(errs, fmt.Errorf("lost-after / interval must stay below %d probes in flight", maxWindow/4))
	}
	if c.Admin == nil {
		errs = append(errs, errors.New("an admin client is needed"))
	}
	if len(c.LocalBrokers) == 0 && len(c.NameServers) == 0 {
		errs = append(errs, errors.New("cluster mode needs NameServers"))
	}
	return errors.Join(errs...)
}

// Canary is the background prober and its prometheus.Collector.
type Canary struct {
	cfg    Config
	log    *slog.Logger
	run    string
	m      *metrics
	ledger *ledger
	up     atomic.Bool

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	startOnce sync.Once
	closeOnce sync.Once
	sessions  atomic.Int64
}

// New validates cfg and builds a stopped Canary; Start starts it.
func New(cfg Config) (*Canary, error) {
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("canary: %w", err)
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("canary: run id: %w", err)
	}
	window := uint64(2*(cfg.LostAfter/cfg.Interval)) + 1024
	c := &Canary{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "canary"),
		run:    hex.EncodeToString(id[:]),
		m:      newMetrics(cfg.SLA.Seconds()),
		ledger: newLedger(hex.EncodeToString(id[:]), cfg.LostAfter, window),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

func (c *Canary) mode() string {
	if len(c.cfg.LocalBrokers) > 0 {
		return "sidecar"
	}
	return "cluster"
}

// Start starts probing in the background. The client library's logging is
// routed into Config.Logger from here on (process-wide: the library has a
// single logger).
func (c *Canary) Start() {
	c.startOnce.Do(func() {
		routeClientLogs(c.cfg.Logger, c.cfg.ClientLogLevel)
		c.log.Info("Canary starting", "topic", c.cfg.Topic, "group", c.cfg.Group, "mode", c.mode(),
			"interval", c.cfg.Interval, "sla", c.cfg.SLA, "run", c.run)
		c.wg.Add(1)
		go c.loop()
	})
}

// Close stops probing, shuts producer and consumer down and waits for the
// canary's goroutines, at most until ctx ends. Goroutines of the client
// library may outlive it briefly (see docs/canary.md).
func (c *Canary) Close(ctx context.Context) error {
	var err error
	c.closeOnce.Do(func() {
		c.cancel()
		done := make(chan struct{})
		go func() {
			c.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("canary: stopping: %w", ctx.Err())
		}
	})
	return err
}

// loop (re)starts the clients until they run, then probes until Close.
func (c *Canary) loop() {
	defer c.wg.Done()
	backoff := time.Second
	for {
		s, err := c.connect()
		if err == nil {
			c.up.Store(true)
			c.log.Info("Canary clients started", "nameservers", s.target.nameServers, "instance", s.instance)
			c.probe(s)
			c.up.Store(false)
			s.shutdown(c)
			return
		}
		if c.ctx.Err() != nil {
			return
		}
		c.m.startFailures.Inc()
		c.log.Warn("Canary clients did not start; retrying", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, retryBackoffMax)
	}
}

// sender and receiver are the parts of the library's producer and push
// consumer the canary uses (their types are unexported).
type sender interface {
	Start() error
	Shutdown() error
	SendSync(ctx context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error)
}

type receiver interface {
	Start() error
	Shutdown() error
}

// session is one started producer/consumer pair.
type session struct {
	target   target
	instance string
	producer sender
	consumer receiver
	sel      *selector
	// sending is set while a send call is in the library.
	sending atomic.Bool
}

// connect discovers the targets and starts producer and consumer, all
// within startTimeout.
func (c *Canary) connect() (*session, error) {
	ctx, cancel := context.WithTimeout(c.ctx, startTimeout)
	defer cancel()
	t, err := discover(ctx, &c.cfg)
	if err != nil {
		return nil, err
	}
	// The library's consumer does not start without a route to the topic,
	// and each failed start leaves statistics goroutines of the library
	// asleep until the next month: look before starting anything.
	routed, routeErr := route(ctx, c.cfg.Admin, t.nameServers, c.cfg.Topic)
	// Every probed broker group gets its counters at 0 from the start, so
	// the first failure or loss is an increase() an alert can see.
	for b := range t.local {
		c.m.initBroker(b)
	}
	for _, b := range routed {
		if t.allows(b) {
			c.m.initBroker(b)
		}
	}
	switch {
	case errors.Is(routeErr, errNoRoute):
		if _, err := route(ctx, c.cfg.Admin, t.nameServers, autoCreateKey); err != nil {
			return nil, fmt.Errorf("probe topic %s has no route and cannot be auto-created (no route to %s either): "+
				"create it on the broker groups to probe", c.cfg.Topic, autoCreateKey)
		}
	case routeErr != nil:
		return nil, routeErr
	}
	res := newNSResolver(t.nameServers, lookupTimeout)
	if len(res.Resolve()) == 0 {
		return nil, fmt.Errorf("no address for the NameServers %v", t.nameServers)
	}
	s := &session{
		target: t,
		// Unique per session: the library keeps one client per instance name
		// in a process-wide table.
		instance: fmt.Sprintf("rocketmq_exporter_canary_%d_%s_%d", os.Getpid(), c.run, c.sessions.Add(1)),
		sel:      newSelector(t, c.ledger),
	}
	var creds primitive.Credentials
	if c.cfg.Credentials != nil {
		creds = primitive.Credentials{AccessKey: c.cfg.Credentials.AccessKey, SecretKey: c.cfg.Credentials.SecretKey,
			SecurityToken: c.cfg.Credentials.SecurityToken}
	}
	p, err := producer.NewDefaultProducer(
		producer.WithNsResolver(res),
		producer.WithGroupName(c.cfg.Group),
		producer.WithInstanceName(s.instance),
		// One attempt per probe: a retry on another broker would hide the
		// failure the probe exists to see.
		producer.WithRetry(0),
		producer.WithQueueSelector(s.sel),
		producer.WithSendMsgTimeout(c.cfg.SendTimeout),
		producer.WithCreateTopicKey(autoCreateKey),
		producer.WithCredentials(creds),
	)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	s.producer = p
	if abandoned, err := c.bounded(ctx, s, p.Start); err != nil {
		if !abandoned {
			s.shutdown(c)
		}
		return nil, fmt.Errorf("producer start: %w", err)
	}
	if routeErr != nil {
		if err := c.autoCreate(ctx, s); err != nil {
			return nil, err
		}
	}
	pc, err := consumer.NewPushConsumer(
		consumer.WithNsResolver(res),
		consumer.WithGroupName(c.cfg.Group),
		consumer.WithInstance(s.instance),
		consumer.WithCredentials(creds),
		consumer.WithConsumerModel(consumer.Clustering),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromLastOffset),
		consumer.WithStrategy(t.allocate(c.cfg.Topic)),
		consumer.WithConsumeTimeout(consumeTimeout),
		consumer.WithConsumeGoroutineNums(4),
	)
	if err != nil {
		s.shutdown(c)
		return nil, fmt.Errorf("consumer: %w", err)
	}
	s.consumer = pc
	if err := pc.Subscribe(c.cfg.Topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "*"}, c.onMessages(t)); err != nil {
		s.shutdown(c)
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	if abandoned, err := c.bounded(ctx, s, pc.Start); err != nil {
		if !abandoned {
			s.shutdown(c)
		}
		return nil, fmt.Errorf("consumer start: %w", err)
	}
	return s, nil
}

// autoCreate sends one message (not a probe) so that a broker with
// autoCreateTopicEnable creates the probe topic from TBW102, then waits for
// the topic's route. The session is shut down on failure.
func (c *Canary) autoCreate(ctx context.Context, s *session) error {
	msg := primitive.NewMessage(c.cfg.Topic, []byte(bodyPrefix+" creating the probe topic"))
	msg.WithTag(probeTag)
	send := func() error {
		sctx, cancel := context.WithTimeout(ctx, c.cfg.SendTimeout)
		defer cancel()
		_, err := s.producer.SendSync(sctx, msg)
		return err
	}
	abandoned, err := c.bounded(ctx, s, send)
	s.sel.pickedFor(msg)
	if err != nil {
		if !abandoned {
			s.shutdown(c)
		}
		return fmt.Errorf("auto-creating probe topic %s: %w", c.cfg.Topic, err)
	}
	for {
		if _, err := route(ctx, c.cfg.Admin, s.target.nameServers, c.cfg.Topic); err == nil {
			c.log.Info("Canary probe topic auto-created", "topic", c.cfg.Topic)
			return nil
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			s.shutdown(c)
			return fmt.Errorf("probe topic %s: sent to, but no route yet: %w", c.cfg.Topic, ctx.Err())
		}
	}
}

// bounded runs f, a call into the library, waiting at most until ctx ends.
// When it gives up (abandoned), the goroutine left running owns the
// session: it shuts it down once f returns, so a start and a shutdown never
// run at the same time.
func (c *Canary) bounded(ctx context.Context, s *session, f func() error) (abandoned bool, err error) {
	var (
		mu               sync.Mutex
		finished, gaveUp bool
		ferr             error
	)
	done := make(chan struct{})
	c.wg.Go(func() {
		e := f()
		mu.Lock()
		finished, ferr = true, e
		g := gaveUp
		mu.Unlock()
		if g {
			s.shutdown(c)
		}
		close(done)
	})
	select {
	case <-done:
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		if !finished {
			gaveUp = true
			return true, ctx.Err()
		}
	}
	return false, ferr
}

// shutdown stops consumer then producer, waiting at most shutdownTimeout.
// It is safe to call more than once and on a half-built session.
func (s *session) shutdown(c *Canary) {
	done := make(chan struct{})
	c.wg.Go(func() {
		defer close(done)
		if s.consumer != nil {
			if err := s.consumer.Shutdown(); err != nil {
				c.log.Debug("Canary consumer shutdown", "err", err)
			}
		}
		if s.producer != nil {
			if err := s.producer.Shutdown(); err != nil {
				c.log.Debug("Canary producer shutdown", "err", err)
			}
		}
	})
	t := time.NewTimer(shutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		c.log.Warn("Canary clients did not shut down in time", "timeout", shutdownTimeout)
	}
}

// probe sends one probe per interval and expires unseen ones until Close.
func (c *Canary) probe(s *session) {
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	forgetAfter := max(10*c.cfg.LostAfter, 10*time.Minute)
	c.send(s)
	for {
		select {
		case <-c.ctx.Done():
			return
		case now := <-tick.C:
			lost, forgotten := c.ledger.expire(now, forgetAfter)
			for broker, n := range lost {
				c.m.lost.WithLabelValues(broker).Add(float64(n))
				c.log.Debug("Canary probes lost", "broker", broker, "count", n)
			}
			for _, broker := range forgotten {
				c.m.forget(broker)
			}
			c.send(s)
		}
	}
}

// send starts one probe and waits for it at most SendTimeout plus a grace.
// The call into the library runs in its own goroutine, which records the
// outcome whenever it returns; while one is still inside the library, the
// next probe is not sent but counted as a failure, so a hung client shows
// as failures instead of piling up goroutines.
func (c *Canary) send(s *session) {
	if !s.sending.CompareAndSwap(false, true) {
		c.m.produced.WithLabelValues(s.sel.defaultBroker()).Inc()
		c.m.produceFailed.WithLabelValues(s.sel.defaultBroker()).Inc()
		c.log.Debug("Canary probe skipped: the previous send is still running")
		return
	}
	seq := c.ledger.nextSeq()
	start := time.Now()
	msg := primitive.NewMessage(c.cfg.Topic, encodeBody(c.run, seq, start))
	msg.WithTag(probeTag)
	done := make(chan struct{})
	c.wg.Go(func() {
		defer close(done)
		defer s.sending.Store(false)
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.SendTimeout)
		res, err := s.producer.SendSync(ctx, msg)
		cancel()
		if c.ctx.Err() != nil {
			// Interrupted by Close: not the cluster's fault.
			return
		}
		c.recordSend(s, msg, seq, start, res, err)
	})
	t := time.NewTimer(c.cfg.SendTimeout + sendGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-c.ctx.Done():
	}
}

func (c *Canary) recordSend(s *session, msg *primitive.Message, seq uint64, start time.Time, res *primitive.SendResult, err error) {
	broker := s.sel.pickedFor(msg)
	if broker == "" && res != nil && res.MessageQueue != nil {
		broker = res.MessageQueue.BrokerName
	}
	c.m.produced.WithLabelValues(broker).Inc()
	if err != nil || res == nil {
		c.m.produceFailed.WithLabelValues(broker).Inc()
		c.log.Debug("Canary probe send failed", "broker", broker, "seq", seq, "err", err)
		return
	}
	if res.Status != primitive.SendOK {
		// Stored but not flushed or replicated in time: the user sees a
		// failure, the message may still arrive.
		c.m.produceFailed.WithLabelValues(broker).Inc()
		c.log.Debug("Canary probe send not OK", "broker", broker, "seq", seq, "status", res.Status)
	} else {
		c.m.produceLatency.WithLabelValues(broker).Observe(time.Since(start).Seconds())
	}
	c.ledger.sent(seq, broker, start)
}

// onMessages is the push consumer's callback: it judges this run's probes
// from the probed broker groups and ignores everything else.
func (c *Canary) onMessages(t target) func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	return func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		now := time.Now()
		for _, m := range msgs {
			run, seq, sent, ok := parseBody(m.Body)
			if !ok || run != c.run {
				continue
			}
			broker := ""
			if m.Queue != nil {
				broker = m.Queue.BrokerName
			}
			if !t.allows(broker) {
				continue
			}
			r := c.ledger.received(seq, broker, sent, now)
			switch {
			case r.duplicate:
				c.m.duplicates.WithLabelValues(r.broker).Inc()
			case r.observe:
				c.m.e2eLatency.WithLabelValues(r.broker).Observe(max(r.latency, 0).Seconds())
			}
		}
		return consumer.ConsumeSuccess, nil
	}
}
