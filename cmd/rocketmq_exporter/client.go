package main

import (
	"log/slog"

	"github.com/rocketmq-exporter/rocketmq_exporter/collector"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// newRocketMQClient builds one remoting client (one pooled connection per
// address) signing with creds, and the typed admin view the collectors use.
// --rocketmq.timeout also bounds requests made without a deadline, though
// every scrape sets one.
func newRocketMQClient(cfg *config, creds *rocketmq.Credentials, logger *slog.Logger) (collector.Client, *rocketmq.Client) {
	c := rocketmq.NewClient(rocketmq.ClientOptions{
		MaxFrameSize:   cfg.maxFrameSize,
		RequestTimeout: cfg.timeout,
		TLS:            cfg.tls,
		Credentials:    creds,
		Logger:         logger.With("component", "remoting"),
	})
	return rocketmq.NewAdmin(c), c
}
