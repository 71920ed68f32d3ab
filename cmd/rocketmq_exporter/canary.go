package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alecthomas/kingpin/v2"

	prober "github.com/rocketmq-exporter/rocketmq_exporter/canary"
	"github.com/rocketmq-exporter/rocketmq_exporter/collector"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// canaryCloseTimeout bounds the canary's shutdown at exit (its clients'
// shutdown is bounded at 10 s inside).
const canaryCloseTimeout = 15 * time.Second

// canaryFlags holds the --canary.* flags until the rest of the config is
// known.
type canaryFlags struct {
	enable                                bool
	topic, group, clientLogLevel          string
	interval, sla, lostAfter, sendTimeout time.Duration
	namesrvs                              []string
}

// addCanaryFlags declares the --canary.* flags.
func addCanaryFlags(app *kingpin.Application) *canaryFlags {
	f := &canaryFlags{}
	app.Flag("canary.enable", "Run the end-to-end canary: a producer and a push consumer exchanging probe messages over --canary.topic "+
		"(writes to the cluster; see docs/canary.md).").BoolVar(&f.enable)
	app.Flag("canary.topic", "Probe topic. It must exist on the probed broker groups or be auto-creatable (autoCreateTopicEnable).").
		Default(prober.DefaultTopic).StringVar(&f.topic)
	app.Flag("canary.group", "Consumer and producer group of the canary (created on the brokers by the first heartbeat).").
		Default(prober.DefaultGroup).StringVar(&f.group)
	app.Flag("canary.interval", "Time between two probe messages.").Default(prober.DefaultInterval.String()).DurationVar(&f.interval)
	app.Flag("canary.sla", "End-to-end latency target; the latency histograms' buckets are multiples of it.").
		Default(prober.DefaultSLA.String()).DurationVar(&f.sla)
	app.Flag("canary.lost-after", "A probe not received this long after its send counts as lost.").
		Default(prober.DefaultLostAfter.String()).DurationVar(&f.lostAfter)
	app.Flag("canary.send-timeout", "Deadline of one probe send.").Default(prober.DefaultSendTimeout.String()).DurationVar(&f.sendTimeout)
	app.Flag("canary.namesrv-address", "NameServer the canary's clients use (repeatable). Default: --rocketmq.namesrv-address in cluster mode, "+
		"the local brokers' namesrvAddr in sidecar mode.").StringsVar(&f.namesrvs)
	app.Flag("canary.client-log-level", "Lowest level of the RocketMQ client library's own messages to log (debug, info, warning, error, off); "+
		"they are logged one level lower than the library rates them.").Default("error").StringVar(&f.clientLogLevel)
	return f
}

// config turns the flags into the canary's configuration, nil when the
// canary is off. Credentials come from the exporter's ACL account.
func (f *canaryFlags) config(c *config) (*prober.Config, error) {
	if !f.enable {
		return nil, nil
	}
	var errs []error
	if c.tls != nil {
		errs = append(errs, errors.New("--canary.enable: the canary's client library (rocketmq-client-go v2.1.2) cannot use TLS; drop --rocketmq.tls or the canary"))
	}
	for _, a := range f.namesrvs {
		if err := checkHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("--canary.namesrv-address %q: %v", a, err))
		}
	}
	level, err := prober.ParseClientLogLevel(f.clientLogLevel)
	if err != nil {
		errs = append(errs, fmt.Errorf("--canary.client-log-level: %w", err))
	}
	cc := &prober.Config{
		NameServers: f.namesrvs,
		Topic:       f.topic, Group: f.group,
		Interval: f.interval, SLA: f.sla, LostAfter: f.lostAfter, SendTimeout: f.sendTimeout,
		Credentials:    c.credentials,
		ClientLogLevel: level,
	}
	if c.targets.Mode == collector.ModeSidecar {
		cc.LocalBrokers = c.targets.Brokers
	} else if len(cc.NameServers) == 0 {
		cc.NameServers = c.targets.NameServers
	}
	if err := cc.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--canary.*: %w", err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cc, nil
}

// startCanary starts the canary when it is enabled: with its own remoting
// client for route and config reads, registered in the long-lived registry
// (scrapes read its last results), stopped when the server closes.
func (s *server) startCanary(settings *prober.Config) error {
	if settings == nil {
		return nil
	}
	cc := *settings
	logger := s.logger.With("component", "canary")
	raw := rocketmq.NewClient(rocketmq.ClientOptions{
		MaxFrameSize:   s.cfg.maxFrameSize,
		RequestTimeout: s.cfg.timeout,
		Credentials:    s.cfg.credentials,
		Logger:         logger.With("component", "remoting"),
	})
	cc.Admin = rocketmq.NewAdmin(raw)
	cc.Logger = s.logger
	cn, err := prober.New(cc)
	if err != nil {
		_ = raw.Close()
		return err
	}
	if err := s.selfReg.Register(cn); err != nil {
		_ = raw.Close()
		return fmt.Errorf("registering the canary: %w", err)
	}
	cn.Start()
	s.closers = append(s.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), canaryCloseTimeout)
		defer cancel()
		err := cn.Close(ctx)
		return errors.Join(err, raw.Close())
	})
	return nil
}
