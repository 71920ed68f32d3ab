package main

import (
	"bufio"
	"bytes"
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
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq/rmqsim"
)

// testCert is a self-signed certificate for 127.0.0.1 that is its own CA.
type testCert struct {
	certFile, keyFile string
	pool              *x509.CertPool
	tls               tls.Certificate
}

func newTestCert(t *testing.T) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "rocketmq-exporter-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := &testCert{certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem"), pool: x509.NewCertPool()}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	writeSecFile(t, c.certFile, string(certPEM))
	writeSecFile(t, c.keyFile, string(keyPEM))
	c.pool.AppendCertsFromPEM(certPEM)
	if c.tls, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return c
}

func writeSecFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitLog waits for the exporter to log substr: its output reaches us
// through a pipe, possibly after the answer that followed it.
func waitLog(p *exporterProc, substr string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.logs.String(), substr) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// stopExporter ends the exporter with SIGTERM and waits until its output is
// complete; the exit status stays in p.done for startExporter's cleanup.
func stopExporter(t *testing.T, p *exporterProc) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(15 * time.Second):
		t.Fatalf("exporter ignored SIGTERM\n%s", p.logs)
	}
}

// httpsURL is the exporter's address over https.
func httpsURL(p *exporterProc) string { return strings.Replace(p.url, "http://", "https://", 1) }

func getWith(t *testing.T, client *http.Client, url, user, pass string) (int, http.Header, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

// TestBinaryWebConfigTLSAndBasicAuth serves over HTTPS with basic auth from
// --web.config.file: only a client that trusts the certificate and sends the
// password gets metrics; the password and its hash never reach the logs.
func TestBinaryWebConfigTLSAndBasicAuth(t *testing.T) {
	t.Parallel()
	const user, password = "prometheus", "W3b-Passw0rd-Z7"
	sim := startSim(t, oneGroup())
	master := sim.Nodes()[0].Addr()
	cert := newTestCert(t)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(t.TempDir(), "web.yml")
	writeSecFile(t, webConfig, "tls_server_config:\n  cert_file: "+cert.certFile+"\n  key_file: "+cert.keyFile+
		"\nbasic_auth_users:\n  "+user+": "+string(hash)+"\n")
	p := startExporter(t, nil, "--rocketmq.broker-address="+master, "--web.config.file="+webConfig,
		`--probe.allowed-targets=127\.0\.0\.1:\d+`, "--log.level=debug")
	if !waitLog(p, "TLS is enabled") {
		t.Fatalf("TLS not enabled:\n%s", p.logs)
	}
	trusting := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.pool}}}
	defer trusting.CloseIdleConnections()
	base := httpsURL(p)

	code, _, body, err := getWith(t, trusting, base+"/metrics", user, password)
	if err != nil || code != http.StatusOK || !strings.Contains(body, upLine("broker", master, 1)) {
		t.Errorf("authenticated HTTPS scrape: %d %v\n%s", code, err, body)
	}
	code, _, body, err = getWith(t, trusting, base+"/probe?target="+master, user, password)
	if err != nil || code != http.StatusOK || !strings.Contains(body, upLine("broker", master, 1)) {
		t.Errorf("authenticated HTTPS probe: %d %v\n%s", code, err, body)
	}
	for _, path := range []string{"/metrics", "/probe?target=" + master, "/"} {
		for _, cred := range [][2]string{{"", ""}, {user, "wrong"}, {"other", password}} {
			code, hdr, body, err := getWith(t, trusting, base+path, cred[0], cred[1])
			if err != nil || code != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s as %q/%q: %d %v, want 401 with a challenge", path, cred[0], cred[1], code, err)
			}
			if strings.Contains(body, "rocketmq_") {
				t.Errorf("GET %s without valid credentials leaked metrics", path)
			}
		}
	}

	// A client that does not trust the certificate fails the handshake.
	distrust := &http.Client{Timeout: 10 * time.Second}
	defer distrust.CloseIdleConnections()
	if _, _, _, err := getWith(t, distrust, base+"/metrics", user, password); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate accepted: %v", err)
	}
	// Plain HTTP to the TLS port gets no metrics.
	plain := &http.Client{Timeout: 10 * time.Second}
	defer plain.CloseIdleConnections()
	if code, _, body, err := getWith(t, plain, p.url+"/metrics", user, password); err == nil && (code == http.StatusOK || strings.Contains(body, "rocketmq_")) {
		t.Errorf("plain HTTP on the TLS port: %d\n%s", code, body)
	}

	stopExporter(t, p)
	logs := p.logs.String()
	for _, secret := range []string{password, string(hash)} {
		if strings.Contains(logs, secret) {
			t.Errorf("the web password or its hash is in the logs")
		}
	}
}

// canary is a listener that counts the connections it gets: a target the
// exporter must never dial.
type canary struct {
	ln    net.Listener
	conns atomic.Int32
	wg    sync.WaitGroup
}

func newCanary(t *testing.T) *canary {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &canary{ln: ln}
	c.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.conns.Add(1)
			conn.Close()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		c.wg.Wait()
	})
	return c
}

func (c *canary) addr() string { return c.ln.Addr().String() }

// TestBinaryProbeAllowList allows exactly one target: everything else,
// however close to it, is refused with 403 before anything is dialed.
func TestBinaryProbeAllowList(t *testing.T) {
	t.Parallel()
	sim := startSim(t, oneGroup())
	master := sim.Nodes()[0].Addr()
	ns := sim.NameServerAddrs()[0]
	bait := newCanary(t)
	host, port, _ := net.SplitHostPort(master)
	_, baitPort, _ := net.SplitHostPort(bait.addr())
	p := startExporter(t, nil, "--rocketmq.broker-address="+deadAddr(t),
		"--probe.allowed-targets="+regexp.QuoteMeta(master)+"|"+regexp.QuoteMeta(ns))

	mustContain(t, p.scrape(t, "/probe?target="+master), upLine("broker", master, 1))
	mustContain(t, p.scrape(t, "/probe?kind=namesrv&target="+ns), upLine("namesrv", ns, 1))

	for _, target := range []string{
		bait.addr(),                  // another port on the same host
		host + ":" + port + baitPort, // the allowed target as a prefix
		"1" + master,                 // ... as a suffix
		"localhost:" + port,          // another spelling of the same host
		"[::1]:" + port,
		"127.0.0.1:" + baitPort + "#" + master,
	} {
		for _, kind := range []string{"broker", "namesrv"} {
			code, body := p.get(t, "/probe?kind="+kind+"&target="+url.QueryEscape(target))
			if code != http.StatusForbidden && code != http.StatusBadRequest {
				t.Errorf("probe %s %q: %d %q, want 403 (or 400 for a malformed target)", kind, target, code, body)
			}
		}
	}
	if n := bait.conns.Load(); n != 0 {
		t.Errorf("the exporter dialed a target outside --probe.allowed-targets %d times", n)
	}
	if !waitLog(p, "Probe of a target not allowed") {
		t.Errorf("refused probes are not logged:\n%s", p.logs)
	}
}

// TestBinarySlowlorisClosed opens a connection and trickles a request
// header one byte at a time: the server must drop it once its header
// timeout passes, and serve everyone else meanwhile.
func TestBinarySlowlorisClosed(t *testing.T) {
	t.Parallel()
	sim := startSim(t, oneGroup())
	master := sim.Nodes()[0].Addr()
	p := startExporter(t, nil, "--rocketmq.broker-address="+master)
	addr := strings.TrimPrefix(p.url, "http://")

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "GET /metrics HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan time.Duration, 1)
	go func() {
		// Whatever the server sends (nothing, or a 408), the read ends
		// when it closes the connection.
		_, _ = io.Copy(io.Discard, conn)
		closed <- time.Since(start)
	}()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	limit := time.After(readHeaderTimeout + 10*time.Second)
	scraped := false
	for {
		select {
		case d := <-closed:
			if d < readHeaderTimeout-time.Second {
				t.Errorf("connection closed after %v, before the %v header timeout", d, readHeaderTimeout)
			}
			if !scraped {
				t.Error("no scrape was served while the slow client held its connection")
			}
			return
		case <-tick.C:
			// One more header byte: never a complete request.
			_, _ = conn.Write([]byte("X"))
			if !scraped {
				mustContain(t, p.scrape(t, "/metrics"), upLine("broker", master, 1))
				scraped = true
			}
		case <-limit:
			t.Fatalf("a client trickling its header was still connected after %v (header timeout %v)", time.Since(start), readHeaderTimeout)
		}
	}
}

// permissiveTLS is a broker port in front of a plaintext one that serves
// TLS and plaintext alike, as a broker with tls.server.mode=permissive
// does: a first byte of 0x16 (TLS handshake record) means TLS.
type permissiveTLS struct {
	ln       net.Listener
	upstream string
	cfg      *tls.Config
	tlsConns atomic.Int32
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

func startPermissiveTLS(t *testing.T, upstream string, cert tls.Certificate) *permissiveTLS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &permissiveTLS{ln: ln, upstream: upstream, cfg: &tls.Config{Certificates: []tls.Certificate{cert}}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *permissiveTLS) addr() string { return p.ln.Addr().String() }

func (p *permissiveTLS) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *permissiveTLS) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(c)
		p.wg.Go(func() { p.serve(c) })
	}
}

// bufferedConn is a net.Conn whose first bytes were peeked.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func (p *permissiveTLS) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	first, err := br.Peek(1)
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var client net.Conn = &bufferedConn{Conn: c, r: br}
	if first[0] == 0x16 {
		tc := tls.Server(client, p.cfg)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			return
		}
		_ = c.SetDeadline(time.Time{})
		p.tlsConns.Add(1)
		client = tc
	}
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	p.track(up)
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, client); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, up); done <- struct{}{} }()
	<-done
}

// TestBinaryTLSToBrokers scrapes a broker behind a permissive TLS port:
// with the CA file, verification succeeds; without it, the self-signed
// certificate is refused unless verification is switched off explicitly
// (it is on by default); plaintext still works on the same port; and TLS to
// a plaintext-only port fails within the scrape.
func TestBinaryTLSToBrokers(t *testing.T) {
	t.Parallel()
	sim := startSim(t, oneGroup())
	master := sim.Nodes()[0].Addr()
	cert := newTestCert(t)
	broker := startPermissiveTLS(t, master, cert.tls)

	cases := []struct {
		name    string
		target  string
		args    []string
		up      int
		wantLog string
	}{
		{"ca-file", broker.addr(), []string{"--rocketmq.tls", "--rocketmq.tls.ca-file=" + cert.certFile}, 1, ""},
		{"verification-on-by-default", broker.addr(), []string{"--rocketmq.tls"}, 0, "certificate"},
		{"insecure-skip-verify", broker.addr(), []string{"--rocketmq.tls", "--rocketmq.tls.insecure-skip-verify"}, 1, ""},
		{"wrong-server-name", broker.addr(), []string{"--rocketmq.tls", "--rocketmq.tls.ca-file=" + cert.certFile, "--rocketmq.tls.server-name=broker.example"}, 0, "certificate"},
		{"plaintext-on-permissive-port", broker.addr(), nil, 1, ""},
		{"tls-to-plaintext-port", master, []string{"--rocketmq.tls", "--rocketmq.tls.insecure-skip-verify"}, 0, "TLS handshake"},
	}
	for _, tc := range cases {
		before := broker.tlsConns.Load()
		p := startExporter(t, nil, append([]string{"--rocketmq.broker-address=" + tc.target}, tc.args...)...)
		start := time.Now()
		body := p.scrape(t, "/metrics", "X-Prometheus-Scrape-Timeout-Seconds", "5")
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("%s: scrape took %v", tc.name, d)
		}
		if !strings.Contains(body, upLine("broker", tc.target, tc.up)) {
			t.Errorf("%s: want %s\n%s", tc.name, upLine("broker", tc.target, tc.up), p.logs)
		}
		if tc.wantLog != "" && !waitLog(p, tc.wantLog) {
			t.Errorf("%s: no log line mentions %q:\n%s", tc.name, tc.wantLog, p.logs)
		}
		tlsUsed := broker.tlsConns.Load() > before
		if wantTLS := tc.target == broker.addr() && tc.up == 1 && len(tc.args) > 0; tlsUsed != wantTLS {
			t.Errorf("%s: TLS connections made: %v, want %v", tc.name, tlsUsed, wantTLS)
		}
	}
}

const (
	leakAccess = "leakcheck-ak"
	leakSecret = "S3cr3t-Never-Shown-4711"
	leakToken  = "T0ken-Never-Shown-0815"
)

// TestBinarySecretsNowhere runs the exporter with ACL secrets from a file and
// from the environment, with the right and a wrong secret, at debug level in
// both log formats, then looks for the secrets (and the security token) in
// everything it says: logs, /metrics, /probe, the landing and error pages.
// It also checks that configuration errors name files, not their content.
func TestBinarySecretsNowhere(t *testing.T) {
	t.Parallel()
	spec := oneGroup()
	spec.ACL = &rmqsim.ACL{Accounts: []rmqsim.Account{{AccessKey: leakAccess, SecretKey: leakSecret, Admin: true}}}
	sim := startSim(t, spec)
	master := sim.Nodes()[0].Addr()

	dir := t.TempDir()
	ak, sk, tok, wrongSK := filepath.Join(dir, "ak"), filepath.Join(dir, "sk"), filepath.Join(dir, "tok"), filepath.Join(dir, "wrong")
	writeSecFile(t, ak, leakAccess+"\n")
	writeSecFile(t, sk, leakSecret+"\n")
	writeSecFile(t, tok, leakToken+"\n")
	writeSecFile(t, wrongSK, "x"+leakSecret+"\n")
	modules := filepath.Join(dir, "modules.yml")
	writeSecFile(t, modules, "auth_modules:\n  good:\n    access_key_file: "+ak+"\n    secret_key_file: "+sk+
		"\n    security_token_file: "+tok+"\n  bad:\n    access_key_file: "+ak+"\n    secret_key_file: "+wrongSK+"\n")
	probeFlag := `--probe.allowed-targets=127\.0\.0\.1:\d+`

	runs := []struct {
		name string
		env  []string
		args []string
		up   int
	}{
		{"file", nil, []string{"--rocketmq.access-key-file=" + ak, "--rocketmq.secret-key-file=" + sk, "--rocketmq.security-token-file=" + tok}, 1},
		{"env", []string{"ROCKETMQ_ACCESS_KEY=" + leakAccess, "ROCKETMQ_SECRET_KEY=" + leakSecret, "ROCKETMQ_SECURITY_TOKEN=" + leakToken}, nil, 1},
		{"wrong-file", nil, []string{"--rocketmq.access-key-file=" + ak, "--rocketmq.secret-key-file=" + wrongSK}, 0},
		{"wrong-env", []string{"ROCKETMQ_ACCESS_KEY=" + leakAccess, "ROCKETMQ_SECRET_KEY=x" + leakSecret}, nil, 0},
	}
	for _, format := range []string{"logfmt", "json"} {
		for _, run := range runs {
			args := append([]string{"--rocketmq.broker-address=" + master, "--log.level=debug", "--log.format=" + format,
				probeFlag, "--config.file=" + modules}, run.args...)
			p := startExporter(t, run.env, args...)
			var seen strings.Builder
			metrics := p.scrape(t, "/metrics")
			seen.WriteString(metrics)
			if !strings.Contains(metrics, upLine("broker", master, run.up)) {
				t.Errorf("%s/%s: want %s", run.name, format, upLine("broker", master, run.up))
			}
			good := p.scrape(t, "/probe?auth_module=good&target="+master)
			mustContain(t, good, upLine("broker", master, 1))
			bad := p.scrape(t, "/probe?auth_module=bad&target="+master)
			mustContain(t, bad, upLine("broker", master, 0))
			seen.WriteString(good + bad)
			for _, path := range []string{"/", "/-/healthy", "/-/ready", "/nope", "/probe", "/probe?target=10.0.0.1:1",
				"/probe?target=" + master + "&auth_module=nope", "/metrics?collect[]=nope"} {
				_, body := p.get(t, path)
				seen.WriteString(body)
			}
			stopExporter(t, p)
			for where, text := range map[string]string{"output": seen.String(), "logs": p.logs.String()} {
				for _, secret := range []string{leakSecret, leakToken} {
					if strings.Contains(text, secret) {
						t.Errorf("%s/%s: a secret appears in the %s", run.name, format, where)
					}
				}
			}
			if run.up == 0 && !regexp.MustCompile(`(?i)level.{0,3}(warn|error)`).MatchString(p.logs.String()) {
				t.Errorf("%s/%s: a refused signature is not logged", run.name, format)
			}
		}
	}

	// Configuration errors: the secret must not be echoed from a file the
	// exporter refuses, whatever the reason.
	inline := filepath.Join(dir, "inline.yml")
	writeSecFile(t, inline, "auth_modules:\n  m:\n    access_key_file: "+ak+"\n    secret_key: "+leakSecret+"\n")
	notYAML := filepath.Join(dir, "notyaml.yml")
	writeSecFile(t, notYAML, leakSecret+": [\n")
	big := filepath.Join(dir, "big")
	writeSecFile(t, big, strings.Repeat(leakSecret, 5000))
	for _, args := range [][]string{
		{"--config.file=" + inline},
		{"--config.file=" + notYAML},
		{"--rocketmq.access-key-file=" + ak, "--rocketmq.secret-key-file=" + big},
		{"--rocketmq.secret-key-file=" + sk},
	} {
		cmd := exec.Command(binary, append([]string{"--web.listen-address=127.0.0.1:0"}, args...)...)
		cmd.Env = []string{}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%v: err %v, want exit 2\n%s", args, err, out.String())
		}
		if strings.Contains(out.String(), leakSecret) {
			t.Errorf("%v: the error message echoes the secret:\n%s", args, out.String())
		}
	}
}
