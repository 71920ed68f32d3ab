package rocketmq

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// TLSOptions describe the TLS settings of a deployment; Config turns them into
// a *tls.Config for ClientOptions.TLS.
//
// Brokers serve TLS and plaintext on the same port by default
// (tls.server.mode=permissive), and in tls.test.mode (also the default) they
// present a self-signed certificate that only InsecureSkipVerify accepts.
type TLSOptions struct {
	Enabled bool
	// CAFile is a PEM bundle to verify the server with (default: system roots).
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and key, for
	// brokers with tls.server.need.client.auth.
	CertFile, KeyFile string
	// ServerName overrides the name checked in the server certificate
	// (default: the host part of the address dialled).
	ServerName         string
	InsecureSkipVerify bool
}

// Config loads the files named in o. It returns nil, nil when TLS is not
// enabled.
func (o TLSOptions) Config() (*tls.Config, error) {
	if !o.Enabled {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         o.ServerName,
		InsecureSkipVerify: o.InsecureSkipVerify,
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("rocketmq: TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("rocketmq: TLS CA file %s: no PEM certificate found", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case o.CertFile != "" && o.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("rocketmq: TLS client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case o.CertFile != "":
		return nil, errors.New("rocketmq: TLS client certificate given without a key file")
	case o.KeyFile != "":
		return nil, errors.New("rocketmq: TLS key file given without a client certificate")
	}
	return cfg, nil
}

// tlsClient runs the TLS handshake on nc before any frame is sent, bounded by
// ctx. nc is closed on failure.
func tlsClient(ctx context.Context, nc net.Conn, cfg *tls.Config, addr string) (net.Conn, error) {
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg.ServerName = host
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}
