package rocketmq

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// testPKI is a throw-away CA with a server certificate for 127.0.0.1 and a
// client certificate, all written as PEM files.
type testPKI struct {
	dir                           string
	caFile, otherCAFile           string
	serverCert                    tls.Certificate
	clientCertFile, clientKeyFile string
	pool                          *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	caKey, caDER := makeCert(t, "test CA", nil, nil, true, 0)
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p.pool = x509.NewCertPool()
	p.pool.AddCert(caCert)
	p.caFile = p.writePEM(t, "ca.pem", "CERTIFICATE", caDER)
	_, otherDER := makeCert(t, "other CA", nil, nil, true, 0)
	p.otherCAFile = p.writePEM(t, "other-ca.pem", "CERTIFICATE", otherDER)

	srvKey, srvDER := makeCert(t, "broker", caCert, caKey, false, x509.ExtKeyUsageServerAuth)
	p.serverCert = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}

	cliKey, cliDER := makeCert(t, "exporter", caCert, caKey, false, x509.ExtKeyUsageClientAuth)
	p.clientCertFile = p.writePEM(t, "client.pem", "CERTIFICATE", cliDER)
	keyDER, err := x509.MarshalECPrivateKey(cliKey)
	if err != nil {
		t.Fatal(err)
	}
	p.clientKeyFile = p.writePEM(t, "client-key.pem", "EC PRIVATE KEY", keyDER)
	return p
}

// makeCert returns a key and a DER certificate signed by parent (self-signed
// when parent is nil), valid for 127.0.0.1.
func makeCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool, usage x509.ExtKeyUsage) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"broker.test"}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func (p *testPKI) writePEM(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTLSOptionsConfig(t *testing.T) {
	p := newTestPKI(t)
	garbage := filepath.Join(p.dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate"), 0o600)

	cfg, err := TLSOptions{CAFile: p.caFile}.Config()
	if cfg != nil || err != nil {
		t.Errorf("disabled: %v, %v", cfg, err)
	}
	cfg, err = TLSOptions{Enabled: true}.Config()
	if err != nil || cfg.InsecureSkipVerify || cfg.RootCAs != nil || cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
	cfg, err = TLSOptions{Enabled: true, CAFile: p.caFile, CertFile: p.clientCertFile, KeyFile: p.clientKeyFile,
		ServerName: "broker.test", InsecureSkipVerify: true}.Config()
	if err != nil || cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.ServerName != "broker.test" || !cfg.InsecureSkipVerify {
		t.Errorf("full: %+v, %v", cfg, err)
	}

	bad := []struct {
		name string
		opts TLSOptions
		want string
	}{
		{"unreadable CA", TLSOptions{CAFile: filepath.Join(p.dir, "missing.pem")}, "CA file"},
		{"CA without certificate", TLSOptions{CAFile: garbage}, "no PEM certificate"},
		{"cert without key", TLSOptions{CertFile: p.clientCertFile}, "without a key"},
		{"key without cert", TLSOptions{KeyFile: p.clientKeyFile}, "without a client certificate"},
		{"key does not match", TLSOptions{CertFile: p.caFile, KeyFile: p.clientKeyFile}, "client certificate"},
		{"garbage key", TLSOptions{CertFile: p.clientCertFile, KeyFile: garbage}, "client certificate"},
	}
	for _, tc := range bad {
		tc.opts.Enabled = true
		if cfg, err := tc.opts.Config(); err == nil || cfg != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, %v (want error containing %q)", tc.name, cfg, err, tc.want)
		}
	}
}

func TestInvokeOverTLS(t *testing.T) {
	p := newTestPKI(t)
	srvCfg := &tls.Config{Certificates: []tls.Certificate{p.serverCert}}
	srv := startFakeTLS(t, srvCfg, func(nc net.Conn, n int) {
		if _, ok := nc.(*tls.Conn); !ok {
			t.Error("plaintext connection")
		}
		serve(echo)(nc, n)
	})
	ask := func(opts TLSOptions) error {
		opts.Enabled = true
		cfg, err := opts.Config()
		if err != nil {
			t.Fatal(err)
		}
		c := NewClient(ClientOptions{TLS: cfg})
		defer c.Close()
		resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, map[string]string{"k": "v"}, nil))
		if err == nil && resp.ExtFields["k"] != "v" {
			t.Errorf("response = %+v", resp)
		}
		return err
	}
	// ServerName defaults to the dialled host, checked against the IP SAN.
	if err := ask(TLSOptions{CAFile: p.caFile}); err != nil {
		t.Errorf("trusted CA: %v", err)
	}
	if err := ask(TLSOptions{CAFile: p.caFile, ServerName: "broker.test"}); err != nil {
		t.Errorf("explicit server name: %v", err)
	}
	// Like a broker in tls.test.mode: a certificate nobody can verify.
	if err := ask(TLSOptions{CAFile: p.otherCAFile, InsecureSkipVerify: true}); err != nil {
		t.Errorf("insecure: %v", err)
	}
	for _, opts := range []TLSOptions{{CAFile: p.otherCAFile}, {CAFile: p.caFile, ServerName: "other.test"}} {
		err := ask(opts)
		var verr *tls.CertificateVerificationError
		if !errors.As(err, &verr) || !strings.Contains(err.Error(), srv.addr()) {
			t.Errorf("%+v: err = %v, want a verification error naming the address", opts, err)
		}
	}
}

func TestTLSClientCertificate(t *testing.T) {
	p := newTestPKI(t)
	srvCfg := &tls.Config{
		Certificates: []tls.Certificate{p.serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.pool,
	}
	srv := startFakeTLS(t, srvCfg, serve(echo))
	for _, withCert := range []bool{true, false} {
		opts := TLSOptions{Enabled: true, CAFile: p.caFile}
		if withCert {
			opts.CertFile, opts.KeyFile = p.clientCertFile, p.clientKeyFile
		}
		cfg, err := opts.Config()
		if err != nil {
			t.Fatal(err)
		}
		c := NewClient(ClientOptions{TLS: cfg})
		_, err = c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
		c.Close()
		if withCert && err != nil {
			t.Errorf("with client certificate: %v", err)
		}
		// With TLS 1.3 the refusal arrives after our handshake completed,
		// as a broken connection; either way it must be an error.
		if !withCert && (err == nil || errors.Is(err, context.DeadlineExceeded)) {
			t.Errorf("without client certificate: %v", err)
		}
	}
}

func TestTLSHandshakeBounded(t *testing.T) {
	// Accepts TCP and never says a word: the handshake must time out.
	srv := startFake(t, func(nc net.Conn, _ int) { io.Copy(io.Discard, nc) })
	cfg, err := TLSOptions{Enabled: true, InsecureSkipVerify: true}.Config()
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(ClientOptions{TLS: cfg, DialTimeout: 100 * time.Millisecond})
	start := time.Now()
	_, err = c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "TLS handshake") {
		t.Errorf("err = %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("handshake took %v", el)
	}
	c.Close()
	srv.close()
	goleak.VerifyNone(t)
}
