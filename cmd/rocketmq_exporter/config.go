package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	webflag "github.com/prometheus/exporter-toolkit/web/kingpinflag"
	"go.yaml.in/yaml/v2"

	prober "github.com/rocketmq-exporter/rocketmq_exporter/canary"
	"github.com/rocketmq-exporter/rocketmq_exporter/collector"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

const (
	exporterName       = "rocketmq_exporter"
	defaultBrokerAddr  = "127.0.0.1:10911"
	defaultListenAddr  = ":9187"
	envAccessKey       = "ROCKETMQ_ACCESS_KEY"
	envSecretKey       = "ROCKETMQ_SECRET_KEY"
	envSecurityToken   = "ROCKETMQ_SECURITY_TOKEN"
	maxSecretFileBytes = 64 << 10
)

// config is everything the flags, the environment and the optional config
// file decide, validated. Secrets are held only inside rocketmq.Credentials,
// whose String/LogValue redact them.
type config struct {
	web           *web.FlagConfig
	telemetryPath string
	maxRequests   int
	logConfig     *promslog.Config

	targets       collector.Targets
	timeout       time.Duration
	timeoutOffset time.Duration
	maxFrameSize  int

	credentials *rocketmq.Credentials
	// credentialSources names where each part came from (file path or
	// environment variable), for the startup log; never the values.
	credentialSources []string
	tls               *tls.Config

	enabled map[string]bool
	options collector.Options

	// probeAllowed is nil when /probe is disabled.
	probeAllowed *regexp.Regexp
	configFile   string
	authModules  map[string]authModule

	// canary configures the end-to-end canary (canary.go); nil when off.
	canary *prober.Config
}

// authModule is one named set of ACL credentials for /probe?auth_module=.
type authModule struct {
	credentials *rocketmq.Credentials
	sources     []string
}

// fileConfig is the optional --config.file.
type fileConfig struct {
	AuthModules map[string]fileAuthModule `yaml:"auth_modules"`
}

type fileAuthModule struct {
	AccessKeyFile     string `yaml:"access_key_file"`
	SecretKeyFile     string `yaml:"secret_key_file"`
	SecurityTokenFile string `yaml:"security_token_file"`
}

// newApp declares every flag on a fresh kingpin application, so tests can
// parse any command line without touching global state. The returned
// function turns the parsed values into a validated config.
func newApp(env func(string) string) (*kingpin.Application, func() (*config, error)) {
	app := kingpin.New(exporterName, "Prometheus exporter for Apache RocketMQ: brokers, topics, consumer groups, DLedger and HA state over the remoting protocol.")
	app.Version(version.Print(exporterName))
	app.HelpFlag.Short('h')

	c := &config{logConfig: &promslog.Config{}}
	c.web = webflag.AddFlags(app, defaultListenAddr)
	app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&c.telemetryPath)
	app.Flag("web.max-requests", "Maximum number of scrapes (/metrics and /probe) served at once; more are answered 503. 0 means no limit.").Default("40").IntVar(&c.maxRequests)
	promslogflag.AddFlags(app, c.logConfig)

	brokers := app.Flag("rocketmq.broker-address", "Broker remoting address (host:port) to scrape in sidecar mode. Repeatable. Default "+defaultBrokerAddr+" when no NameServer is given.").Strings()
	namesrvs := app.Flag("rocketmq.namesrv-address", "NameServer address (host:port). Repeatable, in order of preference. When given, the exporter runs in cluster mode and scrapes every broker the NameServer lists.").Strings()
	app.Flag("rocketmq.timeout", "Deadline of a scrape when Prometheus does not send X-Prometheus-Scrape-Timeout-Seconds.").Default("10s").DurationVar(&c.timeout)
	app.Flag("rocketmq.timeout-offset", "Time subtracted from X-Prometheus-Scrape-Timeout-Seconds so the answer arrives before Prometheus gives up.").Default("500ms").DurationVar(&c.timeoutOffset)
	concurrency := app.Flag("rocketmq.concurrency", "Maximum requests in flight per fan-out (brokers resolved at once, and per collector).").Default(strconv.Itoa(collector.DefaultConcurrency)).Int()
	frame := app.Flag("rocketmq.max-frame-size", "Largest remoting frame accepted from a peer.").Default("64MiB").Bytes()
	akFile := app.Flag("rocketmq.access-key-file", "File holding the ACL access key (else env "+envAccessKey+").").PlaceHolder("FILE").String()
	skFile := app.Flag("rocketmq.secret-key-file", "File holding the ACL secret key (else env "+envSecretKey+").").PlaceHolder("FILE").String()
	tokFile := app.Flag("rocketmq.security-token-file", "File holding the ACL security token, if any (else env "+envSecurityToken+").").PlaceHolder("FILE").String()

	var tlsOpts rocketmq.TLSOptions
	app.Flag("rocketmq.tls", "Connect to RocketMQ over TLS.").BoolVar(&tlsOpts.Enabled)
	app.Flag("rocketmq.tls.ca-file", "PEM CA bundle to verify the RocketMQ servers with (default: system roots).").PlaceHolder("FILE").StringVar(&tlsOpts.CAFile)
	app.Flag("rocketmq.tls.cert-file", "PEM client certificate, for brokers that require client authentication.").PlaceHolder("FILE").StringVar(&tlsOpts.CertFile)
	app.Flag("rocketmq.tls.key-file", "PEM key of --rocketmq.tls.cert-file.").PlaceHolder("FILE").StringVar(&tlsOpts.KeyFile)
	app.Flag("rocketmq.tls.server-name", "Name to verify in the server certificate (default: the host dialed).").StringVar(&tlsOpts.ServerName)
	app.Flag("rocketmq.tls.insecure-skip-verify", "Do not verify the server certificate (brokers in tls.test.mode present a self-signed one).").BoolVar(&tlsOpts.InsecureSkipVerify)

	regs := collector.Registrations()
	collectorFlags := make(map[string]*bool, len(regs))
	collectorSet := make(map[string]*bool, len(regs))
	for _, r := range regs {
		set := new(bool)
		collectorSet[r.Name] = set
		collectorFlags[r.Name] = app.Flag("collector."+r.Name, r.Help+" (default: "+onOff(r.Default)+")").
			Default(strconv.FormatBool(r.Default)).IsSetByUser(set).Bool()
	}
	disableDefaults := app.Flag("collector.disable-defaults", "Disable every collector not explicitly enabled with --collector.<name>.").Bool()
	topicInclude := app.Flag("collector.topic.include", "Regexp (anchored) of topics to export; default all.").String()
	topicExclude := app.Flag("collector.topic.exclude", "Regexp (anchored) of topics not to export.").String()
	app.Flag("collector.topic.system", "Also export system topics (TBW102, RMQ_SYS_*, SCHEDULE_TOPIC_XXXX, …).").BoolVar(&c.options.SystemTopics)
	app.Flag("collector.topic.retry", "Also export %RETRY% topics as topic series (one per consumer group and broker group, a GET_TOPIC_STATS_INFO each); their backlog and total are in rocketmq_consumer_group_retry_* anyway.").BoolVar(&c.options.RetryTopics)
	groupInclude := app.Flag("collector.consumer.include", "Regexp (anchored) of consumer groups to export; default all.").String()
	groupExclude := app.Flag("collector.consumer.exclude", "Regexp (anchored) of consumer groups not to export.").String()
	app.Flag("collector.per-queue", "Add per-queue series (topic offsets, consumer lag). Multiplies the series count by the queue count.").BoolVar(&c.options.PerQueue)
	app.Flag("collector.consumer.lag-seconds", "Export consumer lag in seconds (QUERY_CONSUME_TIME_SPAN, cached).").Default("true").BoolVar(&c.options.LagSeconds)
	app.Flag("collector.dledger.term-probe", "Read each DLedger node's term with a stale-term HEART_BEAT (protocol abuse; opt-in).").BoolVar(&c.options.DLedgerTermProbe)

	probeAllowed := app.Flag("probe.allowed-targets", "Regexp (anchored) of host:port targets /probe may dial. Empty disables /probe; \".*\" allows any target.").String()
	app.Flag("config.file", "Optional YAML file with auth_modules for /probe?auth_module=.").PlaceHolder("FILE").StringVar(&c.configFile)
	canaryFlags := addCanaryFlags(app)

	finish := func() (*config, error) {
		var errs []error
		fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

		if !strings.HasPrefix(c.telemetryPath, "/") {
			fail("--web.telemetry-path %q must start with /", c.telemetryPath)
		}
		switch c.telemetryPath {
		case "/", "/probe", "/-/healthy", "/-/ready":
			fail("--web.telemetry-path %q collides with another endpoint", c.telemetryPath)
		}
		if c.maxRequests < 0 {
			fail("--web.max-requests must be >= 0")
		}
		if c.timeout <= 0 {
			fail("--rocketmq.timeout must be positive")
		}
		if c.timeoutOffset < 0 {
			fail("--rocketmq.timeout-offset must not be negative")
		}
		if *concurrency < 1 {
			fail("--rocketmq.concurrency must be >= 1")
		}
		if *frame < 1<<10 || *frame > 1<<30 {
			fail("--rocketmq.max-frame-size must be between 1KiB and 1GiB")
		}
		c.maxFrameSize = int(*frame)

		switch {
		case len(*namesrvs) > 0 && len(*brokers) > 0:
			fail("give either --rocketmq.namesrv-address (cluster mode) or --rocketmq.broker-address (sidecar mode), not both")
		case len(*namesrvs) > 0:
			c.targets = collector.Targets{Mode: collector.ModeCluster, NameServers: *namesrvs}
		case len(*brokers) > 0:
			c.targets = collector.Targets{Mode: collector.ModeSidecar, Brokers: *brokers}
		default:
			c.targets = collector.Targets{Mode: collector.ModeSidecar, Brokers: []string{defaultBrokerAddr}}
		}
		for _, a := range append(slices.Clone(c.targets.NameServers), c.targets.Brokers...) {
			if err := checkHostPort(a); err != nil {
				fail("address %q: %v", a, err)
			}
		}
		c.targets.Concurrency = *concurrency
		// Log a target going down and coming back, not every failed scrape.
		c.targets.States = collector.NewTargetStates(0)
		c.options.Concurrency = *concurrency

		creds, sources, err := loadCredentials(*akFile, *skFile, *tokFile, env)
		if err != nil {
			errs = append(errs, err)
		}
		c.credentials, c.credentialSources = creds, sources

		if !tlsOpts.Enabled && (tlsOpts.CAFile != "" || tlsOpts.CertFile != "" || tlsOpts.KeyFile != "" || tlsOpts.ServerName != "" || tlsOpts.InsecureSkipVerify) {
			fail("--rocketmq.tls.* options need --rocketmq.tls")
		}
		if c.tls, err = tlsOpts.Config(); err != nil {
			errs = append(errs, err)
		}

		c.enabled = make(map[string]bool, len(regs))
		for _, r := range regs {
			c.enabled[r.Name] = *collectorFlags[r.Name] && (!*disableDefaults || *collectorSet[r.Name])
		}
		if c.options.Topics, err = collector.NewFilter(*topicInclude, *topicExclude); err != nil {
			fail("--collector.topic.*: %v", err)
		}
		if c.options.Groups, err = collector.NewFilter(*groupInclude, *groupExclude); err != nil {
			fail("--collector.consumer.*: %v", err)
		}

		if *probeAllowed != "" {
			if c.probeAllowed, err = regexp.Compile("^(?:" + *probeAllowed + ")$"); err != nil {
				fail("--probe.allowed-targets: %v", err)
			}
		}
		if c.configFile != "" {
			if c.authModules, err = loadConfigFile(c.configFile); err != nil {
				errs = append(errs, err)
			}
		}
		if c.canary, err = canaryFlags.config(c); err != nil {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		return c, nil
	}
	return app, finish
}

// parseConfig parses a command line (without the program name) and validates
// it. env is os.Getenv in production. --help and --version print and exit
// through kingpin as usual.
func parseConfig(args []string, env func(string) string) (*config, error) {
	app, finish := newApp(env)
	if _, err := app.Parse(args); err != nil {
		return nil, err
	}
	return finish()
}

func onOff(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("missing host")
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// loadCredentials reads the ACL account from the key files, each falling back
// to its environment variable. Secrets never travel on the command line,
// where any local user can read them from /proc.
func loadCredentials(akFile, skFile, tokFile string, env func(string) string) (*rocketmq.Credentials, []string, error) {
	var sources []string
	read := func(file, envName, what string) (string, error) {
		if file != "" {
			v, err := readSecretFile(file)
			if err != nil {
				return "", fmt.Errorf("%s: %w", what, err)
			}
			sources = append(sources, what+" from file "+file)
			return v, nil
		}
		if v := strings.TrimRight(env(envName), "\r\n"); v != "" {
			sources = append(sources, what+" from env "+envName)
			return v, nil
		}
		return "", nil
	}
	var c rocketmq.Credentials
	var errs []error
	var err error
	if c.AccessKey, err = read(akFile, envAccessKey, "access key"); err != nil {
		errs = append(errs, err)
	}
	if c.SecretKey, err = read(skFile, envSecretKey, "secret key"); err != nil {
		errs = append(errs, err)
	}
	if c.SecurityToken, err = read(tokFile, envSecurityToken, "security token"); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	switch {
	case c.AccessKey == "" && c.SecretKey == "" && c.SecurityToken == "":
		return nil, nil, nil
	case c.AccessKey == "":
		return nil, nil, errors.New("ACL: a secret key or security token is set but no access key")
	case c.SecretKey == "":
		return nil, nil, errors.New("ACL: an access key is set but no secret key")
	}
	return &c, sources, nil
}

// readSecretFile reads a small file and drops the trailing newline editors
// and `echo` add; anything else is part of the secret.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxSecretFileBytes {
		return "", fmt.Errorf("%s: larger than %d bytes", path, maxSecretFileBytes)
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", fmt.Errorf("%s: empty", path)
	}
	return v, nil
}

func loadConfigFile(path string) (map[string]authModule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config.file: %w", err)
	}
	var fc fileConfig
	if err := yaml.UnmarshalStrict(b, &fc); err != nil {
		return nil, fmt.Errorf("--config.file %s: %w", path, err)
	}
	out := make(map[string]authModule, len(fc.AuthModules))
	for name, m := range fc.AuthModules {
		if name == "" {
			return nil, fmt.Errorf("--config.file %s: auth module with an empty name", path)
		}
		if m.AccessKeyFile == "" || m.SecretKeyFile == "" {
			return nil, fmt.Errorf("--config.file %s: auth module %q needs access_key_file and secret_key_file", path, name)
		}
		// Module credentials come from their files only: the environment
		// belongs to the default account.
		creds, sources, err := loadCredentials(m.AccessKeyFile, m.SecretKeyFile, m.SecurityTokenFile, func(string) string { return "" })
		if err != nil {
			return nil, fmt.Errorf("--config.file %s: auth module %q: %w", path, name, err)
		}
		out[name] = authModule{credentials: creds, sources: sources}
	}
	return out, nil
}

// scrapeTimeout is the deadline of one scrape: Prometheus' own timeout minus
// the offset when it says (half of it when it is not above the offset), else
// --rocketmq.timeout; never more than max, so
// the answer can still be written before the server's write timeout.
func scrapeTimeout(header string, fallback, offset, max time.Duration) (time.Duration, error) {
	d := fallback
	var err error
	if header != "" {
		secs, perr := strconv.ParseFloat(header, 64)
		switch {
		case perr != nil || math.IsNaN(secs) || secs <= 0:
			err = fmt.Errorf("bad X-Prometheus-Scrape-Timeout-Seconds %q", header)
		case secs > max.Seconds()+offset.Seconds():
			d = max
		case time.Duration(secs*float64(time.Second))-offset <= 0:
			// A scrape timeout shorter than the offset still bounds the
			// scrape: answering after Prometheus gave up is useless, so use
			// half of it rather than the (longer) fallback.
			d = time.Duration(secs * float64(time.Second) / 2)
			err = fmt.Errorf("X-Prometheus-Scrape-Timeout-Seconds %q is not above --rocketmq.timeout-offset %v; using half of it", header, offset)
		default:
			d = time.Duration(secs*float64(time.Second)) - offset
		}
	}
	if d > max {
		d = max
	}
	return d, err
}
