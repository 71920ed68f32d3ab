// Command rmqsim runs the simulated RocketMQ demo deployment (package
// rocketmq/rmqsim) until interrupted: NameServer, a master/slave group and a
// 3-node DLedger group in DemoCluster plus a second cluster, with live
// traffic and an optional periodic DLedger leader kill.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq/rmqsim"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	namesrv     string
	brokerBase  int
	dledgerBase int
	version     string
	traffic     time.Duration
	failover    time.Duration
	logLevel    string
	logFormat   string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	app := kingpin.New("rmqsim", "Simulated RocketMQ cluster speaking the real remoting protocol (demo topology).")
	app.UsageWriter(stderr)
	app.ErrorWriter(stderr)
	app.HelpFlag.Short('h')
	app.Flag("namesrv-address", "NameServer listen address.").Default("127.0.0.1:9876").StringVar(&o.namesrv)
	app.Flag("broker-base-port", "First broker port; node i listens on base+10*i (0 = ephemeral ports).").Default("10911").IntVar(&o.brokerBase)
	app.Flag("dledger-base-port", "First DLedger port; DLedger node i listens on base+i (0 = ephemeral ports).").Default("40911").IntVar(&o.dledgerBase)
	app.Flag("rocketmq-version", "RocketMQ release to imitate: 4.9.7 or 5.0.0.").Default(rmqsim.V4_9_7).EnumVar(&o.version, rmqsim.V4_9_7, rmqsim.V5_0_0)
	app.Flag("traffic-interval", "Period of the simulated producers and consumers.").Default("1s").DurationVar(&o.traffic)
	app.Flag("failover-interval", "Kill the DLedger leader this often and restart it a quarter of the interval later (0 = off).").Default("2m").DurationVar(&o.failover)
	app.Flag("log.level", "Log level: debug, info, warn, error.").Default("info").EnumVar(&o.logLevel, "debug", "info", "warn", "error")
	app.Flag("log.format", "Log format: logfmt or json.").Default("logfmt").EnumVar(&o.logFormat, "logfmt", "json")
	if _, err := app.Parse(args); err != nil {
		return nil, err
	}
	if o.traffic <= 0 {
		return nil, fmt.Errorf("--traffic-interval must be positive")
	}
	if o.failover < 0 {
		return nil, fmt.Errorf("--failover-interval must not be negative")
	}
	if o.brokerBase < 0 || o.brokerBase > 65535-100 || o.dledgerBase < 0 || o.dledgerBase > 65535-10 {
		return nil, fmt.Errorf("base ports out of range")
	}
	return o, nil
}

func newLogger(o *options, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(o.logLevel))
	hopts := &slog.HandlerOptions{Level: lvl}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, hopts))
	}
	return slog.New(slog.NewTextHandler(w, hopts))
}

func run(parent context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "rmqsim: error: %v\n", err)
		return 2
	}
	log := newLogger(o, stderr)
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := rmqsim.Demo(ctx, rmqsim.DemoOptions{
		NameServer: o.namesrv, BrokerBase: o.brokerBase, DLedgerBase: o.dledgerBase, Version: o.version,
		TrafficInterval: o.traffic, FailoverInterval: o.failover, Logger: log,
	})
	if err != nil {
		log.Error("cannot start the simulated cluster", "err", err)
		return 1
	}
	defer c.Close()
	for _, line := range c.Describe() {
		fmt.Fprintln(stdout, line)
	}
	log.Info("simulated RocketMQ cluster running", "namesrv", c.NameServerAddrs()[0], "version", c.Version(),
		"failover_interval", o.failover, "traffic_interval", o.traffic)
	<-ctx.Done()
	log.Info("shutting down")
	return 0
}
