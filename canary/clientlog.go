package canary

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/apache/rocketmq-client-go/v2/rlog"
)

// The client library logs through one process-wide logger (rlog), by
// default logrus on stderr at info, and its Fatal exits the process. It is
// replaced once by libLog, which forwards into the exporter's slog logger:
// one step quieter than the library thinks (its info is our debug, its
// warnings our info, its errors our warnings) and never exiting. The target
// is swappable because the library's own goroutines may outlive a canary.
var (
	libLog     = &libLogger{}
	libLogOnce sync.Once
)

// libTarget is where library records go and from which library level on.
type libTarget struct {
	logger *slog.Logger
	min    ClientLogLevel
}

type libLogger struct {
	target atomic.Pointer[libTarget]
}

// ClientLogLevel is a level of the client library's own scale.
type ClientLogLevel int

// Client library levels, lowest first. The zero value means the default,
// ClientLogError.
const (
	ClientLogDebug ClientLogLevel = iota + 1
	ClientLogInfo
	ClientLogWarning
	ClientLogError
	ClientLogOff
)

// ParseClientLogLevel reads debug|info|warning|error|off.
func ParseClientLogLevel(s string) (ClientLogLevel, error) {
	switch strings.ToLower(s) {
	case "debug":
		return ClientLogDebug, nil
	case "info":
		return ClientLogInfo, nil
	case "warn", "warning":
		return ClientLogWarning, nil
	case "error":
		return ClientLogError, nil
	case "off", "none":
		return ClientLogOff, nil
	}
	return 0, fmt.Errorf("unknown client log level %q (want debug, info, warning, error or off)", s)
}

func (l ClientLogLevel) String() string {
	switch l {
	case ClientLogDebug:
		return "debug"
	case ClientLogInfo:
		return "info"
	case ClientLogWarning:
		return "warning"
	case ClientLogError:
		return "error"
	case ClientLogOff:
		return "off"
	}
	return "default"
}

// routeClientLogs points the library's logger at logger, keeping records
// from min on.
func routeClientLogs(logger *slog.Logger, min ClientLogLevel) {
	libLog.target.Store(&libTarget{logger: logger.With("component", "rocketmq-client-go"), min: min})
	libLogOnce.Do(func() { rlog.SetLogger(libLog) })
}

func (l *libLogger) emit(lib ClientLogLevel, level slog.Level, msg string, fields map[string]interface{}) {
	t := l.target.Load()
	if t == nil || lib < t.min || (msg == "" && len(fields) == 0) {
		return
	}
	ctx := context.Background()
	if !t.logger.Enabled(ctx, level) {
		return
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		v := fields[k]
		if err, ok := v.(error); ok {
			v = err.Error()
		}
		attrs = append(attrs, slog.Any(k, v))
	}
	t.logger.LogAttrs(ctx, level, msg, attrs...)
}

func (l *libLogger) Debug(msg string, fields map[string]interface{}) {
	l.emit(ClientLogDebug, slog.LevelDebug-4, msg, fields)
}

func (l *libLogger) Info(msg string, fields map[string]interface{}) {
	l.emit(ClientLogInfo, slog.LevelDebug, msg, fields)
}

func (l *libLogger) Warning(msg string, fields map[string]interface{}) {
	l.emit(ClientLogWarning, slog.LevelInfo, msg, fields)
}

func (l *libLogger) Error(msg string, fields map[string]interface{}) {
	l.emit(ClientLogError, slog.LevelWarn, msg, fields)
}

// Fatal is logged as an error; the library does not get to exit the
// exporter.
func (l *libLogger) Fatal(msg string, fields map[string]interface{}) {
	l.emit(ClientLogError, slog.LevelError, msg, fields)
}

// Level is ignored: the exporter's flags decide.
func (l *libLogger) Level(string) {}

// OutputPath is refused: the library must not open log files of its own.
func (l *libLogger) OutputPath(string) error {
	return fmt.Errorf("rocketmq_exporter: client library logs go to the exporter's logger")
}
