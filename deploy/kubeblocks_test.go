package deploy

import (
	"net"
	"os"
	"regexp"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The KubeBlocks types below mirror the fields of apps.kubeblocks.io/v1 the
// files here use, with the JSON names of github.com/apecloud/kubeblocks
// apis/apps/v1 (sidecardefinition_types.go, componentdefinition_types.go;
// checked at v1.0.1 and at the 1.2 development head). Importing that module
// would pull the operator's whole dependency graph (controller-runtime,
// cue, docker, …) into this one; a strict decode into the subset catches
// the same typos in the fields we write, and any field we do not model is
// an error rather than silently accepted. Containers use the real
// corev1.Container, as KubeBlocks does.

type kbSidecarDefinition struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Name       string             `json:"name"`
		Owner      string             `json:"owner"`
		Selectors  []string           `json:"selectors"`
		Containers []corev1.Container `json:"containers"`
		Vars       []kbEnvVar         `json:"vars,omitempty"`
	} `json:"spec"`
}

type kbEnvVar struct {
	Name      string `json:"name"`
	Value     string `json:"value,omitempty"`
	ValueFrom *struct {
		CredentialVarRef *kbCredentialVarSelector `json:"credentialVarRef,omitempty"`
	} `json:"valueFrom,omitempty"`
}

type kbCredentialVarSelector struct {
	CompDef  string  `json:"compDef,omitempty"`
	Name     string  `json:"name"`
	Optional *bool   `json:"optional,omitempty"`
	Username *string `json:"username,omitempty"`
	Password *string `json:"password,omitempty"`
}

// kbExporterPatch is the merge patch of componentdefinition-exporter.patch.yaml
// (ComponentDefinitionSpec.exporter).
type kbExporterPatch struct {
	Spec struct {
		Exporter struct {
			ContainerName string `json:"containerName"`
			ScrapePath    string `json:"scrapePath"`
			ScrapePort    string `json:"scrapePort"`
			ScrapeScheme  string `json:"scrapeScheme"`
		} `json:"exporter"`
	} `json:"spec"`
}

// Facts about the RocketMQ addon (apecloud/kubeblocks-addons addons/rocketmq)
// the KubeBlocks files depend on.
var (
	// ComponentDefinition names: rocketmq-<kind>-4-<chart version>.
	kbBrokerCompDefs   = []string{"rocketmq-broker-4-1.0.1", "rocketmq-broker-4-1.2.0-alpha.0"}
	kbNameSrvCompDefs  = []string{"rocketmq-namesrv-4-1.0.1", "rocketmq-namesrv-4-1.2.0-alpha.0"}
	kbOtherCompDefs    = []string{"rocketmq-exporter-1.0.1", "rocketmq-dashboard-1.0.1"}
	kbBrokerVars       = []string{"ALL_BROKER_FQDN", "ALL_NAMESRV_FQDN", "ROCKETMQ_USER", "ROCKETMQ_PASSWORD", "LOG_PATH", "NAMESRV_PORT", "BROKER_PORT", "DLEDGER_PORT", "ROCKETMQ_AGENT", "DATA_DIR", "MY_CLUSTER_NAME", "MY_COMP_NAME", "MY_CLUSTER_COMP_NAME", "MY_POD_LIST"}
	kbBrokerPort       = "10911" // values.yaml broker.port
	kbBrokerContainers = map[string][]string{"rocketmq-broker": {"broker", "vip-channel", "ha", "dledger"}, "jmx-exporter": {"metrics"}, "agent": {"agent"}}
	kbAdminAccount     = "rocketmq-admin"
	// Labels KubeBlocks puts on the pods of a sharded component.
	kbPodLabels = map[string]string{
		"app.kubernetes.io/managed-by":      "kubeblocks",
		"app.kubernetes.io/instance":        "rocketmq-cluster",
		"apps.kubeblocks.io/component-name": "broker-x7k",
		"apps.kubeblocks.io/sharding-name":  "broker",
	}
)

// kbDefNameMatched is KubeBlocks' rule for definition name patterns: equal,
// or a regexp if the pattern has regexp metacharacters.
func kbDefNameMatched(name, pattern string) bool {
	if name == pattern {
		return true
	}
	if regexp.QuoteMeta(pattern) == pattern {
		return false
	}
	re, err := regexp.Compile(pattern)
	return err == nil && re.MatchString(name)
}

func TestKubeBlocks(t *testing.T) {
	objs := kustomizeBuild(t, "kubeblocks")
	jobs := jobSelector(t)
	sds := find[kbSidecarDefinition](objs)
	if len(sds) != 1 {
		t.Fatalf("want one SidecarDefinition, got %d", len(sds))
	}
	sd := sds[0]
	if sd.Namespace != "" {
		t.Errorf("SidecarDefinition is cluster-scoped; drop metadata.namespace %q", sd.Namespace)
	}

	// Owner and selectors: regexps KubeBlocks accepts, selecting the broker
	// definitions and owned by a definition every RocketMQ cluster has,
	// without overlap (the SidecarDefinition controller refuses overlap).
	for _, p := range append([]string{sd.Spec.Owner}, sd.Spec.Selectors...) {
		if _, err := regexp.Compile(p); err != nil {
			t.Errorf("pattern %q: %v", p, err)
		}
	}
	matches := func(name string, patterns []string) bool {
		for _, p := range patterns {
			if kbDefNameMatched(name, p) {
				return true
			}
		}
		return false
	}
	for _, n := range kbBrokerCompDefs {
		if !matches(n, sd.Spec.Selectors) {
			t.Errorf("selectors %q do not select the broker definition %s", sd.Spec.Selectors, n)
		}
		if kbDefNameMatched(n, sd.Spec.Owner) {
			t.Errorf("owner %q also matches the broker definition %s: owner and selectors must not overlap", sd.Spec.Owner, n)
		}
	}
	for _, n := range kbNameSrvCompDefs {
		if !kbDefNameMatched(n, sd.Spec.Owner) {
			t.Errorf("owner %q does not match the NameServer definition %s", sd.Spec.Owner, n)
		}
	}
	for _, n := range append(append([]string{}, kbNameSrvCompDefs...), kbOtherCompDefs...) {
		if matches(n, sd.Spec.Selectors) {
			t.Errorf("selectors %q also select %s", sd.Spec.Selectors, n)
		}
	}

	// Vars: the admin account's credentials, under names the exporter reads
	// and the broker definition does not already define.
	env := map[string]string{}
	for _, v := range sd.Spec.Vars {
		if !bin.envs[v.Name] {
			t.Errorf("var %s is not read by the exporter", v.Name)
		}
		for _, b := range kbBrokerVars {
			if v.Name == b {
				t.Errorf("var %s conflicts with the broker ComponentDefinition's vars", v.Name)
			}
		}
		if v.ValueFrom == nil || v.ValueFrom.CredentialVarRef == nil {
			t.Errorf("var %s: want a credentialVarRef", v.Name)
			continue
		}
		ref := v.ValueFrom.CredentialVarRef
		if ref.Name != kbAdminAccount || ref.CompDef != "" {
			t.Errorf("var %s: want the component's own %s account, got %+v", v.Name, kbAdminAccount, ref)
		}
		switch {
		case ref.Username != nil && ref.Password == nil && *ref.Username == "Required":
			if v.Name != "ROCKETMQ_ACCESS_KEY" {
				t.Errorf("var %s carries the username; the exporter reads the access key from ROCKETMQ_ACCESS_KEY", v.Name)
			}
		case ref.Password != nil && ref.Username == nil && *ref.Password == "Required":
			if v.Name != "ROCKETMQ_SECRET_KEY" {
				t.Errorf("var %s carries the password; the exporter reads the secret key from ROCKETMQ_SECRET_KEY", v.Name)
			}
		default:
			t.Errorf("var %s: want exactly one of username/password: Required", v.Name)
		}
		env[v.Name] = "placeholder-" + v.Name
	}
	if env["ROCKETMQ_ACCESS_KEY"] == "" || env["ROCKETMQ_SECRET_KEY"] == "" {
		t.Error("SidecarDefinition must pass both ACL keys")
	}

	if len(sd.Spec.Containers) != 1 {
		t.Fatalf("want one sidecar container, got %d", len(sd.Spec.Containers))
	}
	c := sd.Spec.Containers[0]
	if c.Name != "metrics" || sd.Spec.Name != "metrics" {
		t.Errorf("sidecar %q / container %q: want both named metrics", sd.Spec.Name, c.Name)
	}
	if _, clash := kbBrokerContainers[c.Name]; clash {
		t.Errorf("container name %q clashes with the broker pod's containers", c.Name)
	}
	checkContainer(t, "SidecarDefinition container", c, nil)
	ec := checkExporterContainer(t, "KubeBlocks sidecar", c, nil, "rmq-metrics")
	for _, ports := range kbBrokerContainers {
		for _, p := range ports {
			if p == ec.port.Name {
				t.Errorf("port name %q is already used in the broker pod", p)
			}
		}
	}
	if len(c.VolumeMounts) > 0 {
		t.Error("a SidecarDefinition cannot declare volumes; the sidecar must not mount any")
	}
	addrs := ec.flags["rocketmq.broker-address"]
	if len(addrs) != 1 {
		t.Fatalf("want one --rocketmq.broker-address, got %q", addrs)
	}
	if host, port, err := net.SplitHostPort(addrs[0]); err != nil || host != "127.0.0.1" || port != kbBrokerPort {
		t.Errorf("sidecar reads %q; the addon's broker listens on 127.0.0.1:%s in the same pod", addrs[0], kbBrokerPort)
	}
	for k, v := range ec.env {
		env[k] = v
	}

	pms := find[monitoringv1.PodMonitor](objs)
	if len(pms) != 1 {
		t.Fatalf("want one PodMonitor, got %d", len(pms))
	}
	pm := pms[0]
	sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(kbPodLabels)) {
		t.Errorf("PodMonitor selector %v does not select KubeBlocks broker pods %v", pm.Spec.Selector, kbPodLabels)
	}
	for _, l := range pm.Spec.PodTargetLabels {
		if _, ok := kbPodLabels[l]; !ok {
			t.Errorf("podTargetLabels: KubeBlocks sets no pod label %q", l)
		}
	}
	if !jobs.MatchString(pm.Namespace + "/" + pm.Name) {
		t.Errorf("PodMonitor job <namespace>/%s does not match the alerts' job selector %s", pm.Name, jobs)
	}
	if len(pm.Spec.PodMetricsEndpoints) != 1 {
		t.Fatalf("PodMonitor: want one endpoint")
	}
	ep := pm.Spec.PodMetricsEndpoints[0]
	if ep.Port == nil || *ep.Port != ec.port.Name {
		t.Errorf("PodMonitor port %q, the sidecar's port is %q", deref(ep.Port), ec.port.Name)
	}
	checkScrapeTiming(t, "PodMonitor "+pm.Name, ep.Interval, ep.ScrapeTimeout)

	// The optional ComponentDefinition patch names the same container, port
	// and path.
	b, err := os.ReadFile("kubeblocks/componentdefinition-exporter.patch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var patch kbExporterPatch
	if err := strictYAML(b, &patch); err != nil {
		t.Fatalf("componentdefinition-exporter.patch.yaml: %v", err)
	}
	ex := patch.Spec.Exporter
	if ex.ContainerName != c.Name || ex.ScrapePort != ec.port.Name || ex.ScrapeScheme != "http" {
		t.Errorf("exporter patch %+v does not describe container %q port %q over http", ex, c.Name, ec.port.Name)
	}
	if ep.Path != "" && ex.ScrapePath != ep.Path {
		t.Errorf("exporter patch path %q, PodMonitor path %q", ex.ScrapePath, ep.Path)
	}
	if _, ok := containerPort(c, intstr.FromString(ex.ScrapePort)); !ok {
		t.Errorf("exporter patch port %q is not a port of the sidecar", ex.ScrapePort)
	}

	// The container as KubeBlocks runs it: credentials in the environment.
	r := startExporter(t, c.Args, env)
	scrape := ep.Path
	if scrape == "" {
		scrape = "/metrics"
	}
	checkServes(t, r, c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path, scrape)
	if code, _ := r.get(t, ex.ScrapePath); code != 200 {
		t.Errorf("exporter patch scrape path %s answers %d", ex.ScrapePath, code)
	}
	if strings.Contains(r.log.String(), "placeholder-ROCKETMQ_SECRET_KEY") {
		t.Error("the exporter logged the secret key")
	}
}

func TestKubeBlocksDefNameMatched(t *testing.T) {
	for _, c := range []struct {
		name, pattern string
		want          bool
	}{
		{"rocketmq-broker-4-1.0.1", "rocketmq-broker-4-1.0.1", true},
		{"rocketmq-broker-4-1.0.1", "rocketmq-broker-4", false}, // plain strings match exactly
		{"rocketmq-broker-4-1.0.1", "^rocketmq-broker-4-.*$", true},
		{"rocketmq-namesrv-4-1.0.1", "^rocketmq-broker-4-.*$", false},
	} {
		if got := kbDefNameMatched(c.name, c.pattern); got != c.want {
			t.Errorf("kbDefNameMatched(%q, %q) = %v", c.name, c.pattern, got)
		}
	}
}
