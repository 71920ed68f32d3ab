package canary

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/rlog"
)

func TestClientLogsGoToSlogOneStepQuieter(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	routeClientLogs(logger, ClientLogInfo)
	defer routeClientLogs(slog.New(slog.DiscardHandler), ClientLogOff)

	rlog.Debug("dropped below the minimum", nil)
	rlog.Info("an info", map[string]interface{}{"b": 2, "a": errors.New("boom")})
	rlog.Warning("a warning", nil)
	rlog.Error("an error", nil)
	rlog.Fatal("a fatal", nil) // must not exit
	if err := rlog.SetOutputPath("/tmp/rocketmq-client.log"); err == nil {
		t.Error("the library may open its own log file")
	}
	rlog.SetLogLevel("debug") // ignored

	out := buf.String()
	for _, want := range []string{
		`level=DEBUG msg="an info" component=rocketmq-client-go a=boom b=2`,
		`level=INFO msg="a warning"`,
		`level=WARN msg="an error"`,
		`level=ERROR msg="a fatal"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "dropped") {
		t.Errorf("a record below the minimum level got through:\n%s", out)
	}

	// The exporter's own level still applies.
	buf = syncBuffer{}
	routeClientLogs(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})), ClientLogDebug)
	rlog.Warning("below the exporter's level", nil)
	rlog.Error("at the exporter's level", nil)
	if out := buf.String(); strings.Contains(out, "below") || !strings.Contains(out, "at the exporter's level") {
		t.Errorf("exporter level not applied:\n%s", out)
	}
}

func TestParseClientLogLevel(t *testing.T) {
	for in, want := range map[string]ClientLogLevel{"debug": ClientLogDebug, "INFO": ClientLogInfo, "warn": ClientLogWarning,
		"warning": ClientLogWarning, "error": ClientLogError, "off": ClientLogOff} {
		got, err := ParseClientLogLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseClientLogLevel(%q) = %v, %v", in, got, err)
		}
		if in == strings.ToLower(in) && in != "warn" && got.String() != in {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	if _, err := ParseClientLogLevel("loud"); err == nil {
		t.Error("accepted an unknown level")
	}
}
