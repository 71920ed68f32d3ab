package deploy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"
)

// object is one Kubernetes object decoded strictly into its Go type.
type object struct {
	where string // kustomization directory or file it came from
	kind  string // apiVersion/kind
	name  string
	obj   any
}

// kinds are the object types the deployment files may contain, each with
// the Go type the API server (or the CRD's controller) decodes it into.
// Decoding with strictYAML rejects unknown and duplicate fields, i.e.
// typos, that kubectl would only warn about or silently drop.
var kinds = map[string]func() any{
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                               func() any { return &corev1.Secret{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"apps/v1/StatefulSet":                     func() any { return &appsv1.StatefulSet{} },
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"monitoring.coreos.com/v1/PodMonitor":     func() any { return &monitoringv1.PodMonitor{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &monitoringv1.ServiceMonitor{} },
	"monitoring.coreos.com/v1/Probe":          func() any { return &monitoringv1.Probe{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return &monitoringv1.PrometheusRule{} },
	"apps.kubeblocks.io/v1/SidecarDefinition": func() any { return &kbSidecarDefinition{} },
}

func decodeObject(where string, raw []byte) (object, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := sigsyaml.Unmarshal(raw, &head); err != nil {
		return object{}, fmt.Errorf("%s: %w", where, err)
	}
	kind := head.APIVersion + "/" + head.Kind
	ctor, ok := kinds[kind]
	if !ok {
		return object{}, fmt.Errorf("%s: %s %q: kind not known to this test; add its Go type to kinds", where, kind, head.Metadata.Name)
	}
	obj := ctor()
	if err := strictYAML(raw, obj); err != nil {
		return object{}, fmt.Errorf("%s: %s %q: %w", where, kind, head.Metadata.Name, err)
	}
	if errs := validation.IsDNS1123Subdomain(head.Metadata.Name); len(errs) > 0 {
		return object{}, fmt.Errorf("%s: %s name %q: %v", where, kind, head.Metadata.Name, errs)
	}
	return object{where: where, kind: kind, name: head.Metadata.Name, obj: obj}, nil
}

// kustomizeBuild runs kustomize (the library kubectl -k embeds) on dir and
// decodes every object it outputs.
func kustomizeBuild(t *testing.T, dir string) []object {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []object
	for _, r := range m.Resources() {
		raw, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		o, err := decodeObject(dir, raw)
		if err != nil {
			t.Error(err)
			continue
		}
		out = append(out, o)
	}
	if len(out) == 0 {
		t.Fatalf("kustomize build %s: no objects", dir)
	}
	return out
}

// decodeFile decodes every document of a manifest file kept outside the
// kustomizations (examples).
func decodeFile(t *testing.T, path string) []object {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []object
	for i, doc := range splitYAML(t, path, b) {
		o, err := decodeObject(fmt.Sprintf("%s#%d", path, i), doc)
		if err != nil {
			t.Error(err)
			continue
		}
		out = append(out, o)
	}
	return out
}

// splitYAML returns the non-empty documents of a YAML stream, re-encoded,
// and fails on anything the YAML parser rejects (including duplicate keys).
func splitYAML(t *testing.T, path string, b []byte) [][]byte {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs [][]byte
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(n.Content) == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
			continue
		}
		doc, err := yaml.Marshal(&n)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc)
	}
	return docs
}

func find[T any](objs []object) []*T {
	var out []*T
	for _, o := range objs {
		if v, ok := o.obj.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

// isExporterImage tells the exporter's containers from the others: the
// image built from this repository, whatever registry and tag.
func isExporterImage(image string) bool {
	ref := image
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref == "rocketmq-exporter" || strings.HasSuffix(ref, "/rocketmq-exporter")
}

// exporterPod is a pod template with exporter containers, as it will run.
type exporterPod struct {
	where  string
	labels map[string]string
	spec   *corev1.PodSpec
}

func podsOf(objs []object) []exporterPod {
	var out []exporterPod
	for _, o := range objs {
		switch w := o.obj.(type) {
		case *appsv1.StatefulSet:
			out = append(out, exporterPod{o.where + " StatefulSet/" + o.name, w.Spec.Template.Labels, &w.Spec.Template.Spec})
		case *appsv1.Deployment:
			out = append(out, exporterPod{o.where + " Deployment/" + o.name, w.Spec.Template.Labels, &w.Spec.Template.Spec})
		}
	}
	return out
}

// secretExamples are the Secrets the manifests expect to exist, from the
// *.example.yaml files that document them.
func secretExamples(t *testing.T) map[string]*corev1.Secret {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*/*.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*corev1.Secret{}
	for _, f := range files {
		for _, s := range find[corev1.Secret](decodeFile(t, f)) {
			out[s.Name] = s
		}
	}
	return out
}

// checkPodSpec is the part of the API server's pod validation that these
// manifests can get wrong, plus references to other objects.
// claims are the StatefulSet's volumeClaimTemplates, volumes too.
func checkPodSpec(t *testing.T, where string, spec *corev1.PodSpec, objs []object, secrets map[string]*corev1.Secret, claims ...string) {
	t.Helper()
	volumes := map[string]corev1.Volume{}
	for _, c := range claims {
		volumes[c] = corev1.Volume{Name: c}
	}
	for _, v := range spec.Volumes {
		if _, dup := volumes[v.Name]; dup {
			t.Errorf("%s: volume %q declared twice", where, v.Name)
		}
		volumes[v.Name] = v
		switch {
		case v.ConfigMap != nil:
			cm := findNamed[corev1.ConfigMap](objs, v.ConfigMap.Name)
			if cm == nil && (v.ConfigMap.Optional == nil || !*v.ConfigMap.Optional) {
				t.Errorf("%s: volume %q: ConfigMap %q is not in the same kustomization", where, v.Name, v.ConfigMap.Name)
			}
			for _, it := range v.ConfigMap.Items {
				if cm != nil && cm.Data[it.Key] == "" {
					t.Errorf("%s: volume %q: ConfigMap %q has no key %q", where, v.Name, cm.Name, it.Key)
				}
			}
		case v.Secret != nil:
			s := findNamed[corev1.Secret](objs, v.Secret.SecretName)
			if s == nil {
				s = secrets[v.Secret.SecretName]
			}
			if s == nil {
				t.Errorf("%s: volume %q: Secret %q is neither in the kustomization nor documented by an *.example.yaml", where, v.Name, v.Secret.SecretName)
				continue
			}
			for _, it := range v.Secret.Items {
				if _, ok := s.StringData[it.Key]; !ok {
					if _, ok := s.Data[it.Key]; !ok {
						t.Errorf("%s: volume %q: Secret %q has no key %q", where, v.Name, s.Name, it.Key)
					}
				}
			}
		}
	}
	names := map[string]bool{}
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		if errs := validation.IsDNS1123Label(c.Name); len(errs) > 0 {
			t.Errorf("%s: container name %q: %v", where, c.Name, errs)
		}
		if names[c.Name] {
			t.Errorf("%s: container %q declared twice", where, c.Name)
		}
		names[c.Name] = true
		checkContainer(t, where+" container "+c.Name, c, volumes)
	}
}

func checkContainer(t *testing.T, where string, c corev1.Container, volumes map[string]corev1.Volume) {
	t.Helper()
	if c.Image == "" {
		t.Errorf("%s: no image", where)
	}
	ports := map[string]bool{}
	for _, p := range c.Ports {
		if p.ContainerPort < 1 || p.ContainerPort > 65535 {
			t.Errorf("%s: port %d out of range", where, p.ContainerPort)
		}
		if p.Name != "" {
			if errs := validation.IsValidPortName(p.Name); len(errs) > 0 {
				t.Errorf("%s: port name %q: %v", where, p.Name, errs)
			}
			if ports[p.Name] {
				t.Errorf("%s: port name %q used twice", where, p.Name)
			}
			ports[p.Name] = true
		}
	}
	for _, pr := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
		if pr == nil {
			continue
		}
		var port *intstr.IntOrString
		switch {
		case pr.HTTPGet != nil:
			port = &pr.HTTPGet.Port
		case pr.TCPSocket != nil:
			port = &pr.TCPSocket.Port
		}
		if port != nil {
			if _, ok := containerPort(c, *port); !ok {
				t.Errorf("%s: probe port %s is not a port of the container", where, port.String())
			}
		}
	}
	for _, m := range c.VolumeMounts {
		if volumes != nil {
			if _, ok := volumes[m.Name]; !ok {
				t.Errorf("%s: mounts volume %q, which the pod does not declare", where, m.Name)
			}
		}
		if !filepath.IsAbs(m.MountPath) {
			t.Errorf("%s: mount path %q is not absolute", where, m.MountPath)
		}
	}
	for _, e := range c.Env {
		if errs := validation.IsEnvVarName(e.Name); len(errs) > 0 {
			t.Errorf("%s: env %q: %v", where, e.Name, errs)
		}
	}
	for _, q := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
		for name, v := range q {
			if v.Sign() <= 0 {
				t.Errorf("%s: resource %s %s is not positive", where, name, v.String())
			}
		}
	}
	for name, req := range c.Resources.Requests {
		if lim, ok := c.Resources.Limits[name]; ok && req.Cmp(lim) > 0 {
			t.Errorf("%s: %s request %s above its limit %s", where, name, req.String(), lim.String())
		}
	}
}

// containerPort resolves a probe or Service port (name or number) against
// a container's ports.
func containerPort(c corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

func findNamed[T any](objs []object, name string) *T {
	for _, o := range objs {
		if v, ok := o.obj.(*T); ok && o.name == name {
			return v
		}
	}
	return nil
}

// exporterCheck is what checkExporterContainer learned about one container.
type exporterCheck struct {
	flags map[string][]string
	env   map[string]string
	port  corev1.ContainerPort
}

// checkExporterContainer checks an exporter container against the binary:
// flags, port, probe paths, environment, secrets as files, resources and
// the restricted security context.
func checkExporterContainer(t *testing.T, where string, c corev1.Container, pod *corev1.PodSpec, portName string) exporterCheck {
	t.Helper()
	var ec exporterCheck
	if len(c.Command) > 0 {
		t.Errorf("%s: command %q replaces the image's entrypoint; give flags in args", where, c.Command)
	}
	flags, err := exporterArgs(c.Args)
	if err != nil {
		t.Errorf("%s: %v", where, err)
	}
	ec.flags = flags
	port, err := listenPort(flags)
	if err != nil {
		t.Errorf("%s: %v", where, err)
	}
	if port != bin.defaultPort {
		t.Errorf("%s: listens on %d; the exporter's port is %d", where, port, bin.defaultPort)
	}
	found := false
	for _, p := range c.Ports {
		if p.ContainerPort == int32(port) {
			found = true
			ec.port = p
			if p.Name != portName {
				t.Errorf("%s: port %d is named %q, want %q", where, port, p.Name, portName)
			}
			if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
				t.Errorf("%s: port %d protocol %s", where, port, p.Protocol)
			}
		}
	}
	if !found {
		t.Errorf("%s: no containerPort %d", where, port)
	}
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"readiness", c.ReadinessProbe, "/-/ready"}, {"liveness", c.LivenessProbe, "/-/healthy"}} {
		switch {
		case pr.probe == nil || pr.probe.HTTPGet == nil:
			t.Errorf("%s: no HTTP %s probe", where, pr.name)
		case pr.probe.HTTPGet.Path != pr.path:
			t.Errorf("%s: %s probe path %q, want %q", where, pr.name, pr.probe.HTTPGet.Path, pr.path)
		default:
			if p, ok := containerPort(c, pr.probe.HTTPGet.Port); !ok || int(p) != port {
				t.Errorf("%s: %s probe port %s is not the exporter's port %d", where, pr.name, pr.probe.HTTPGet.Port.String(), port)
			}
			if s := pr.probe.HTTPGet.Scheme; s != "" && s != corev1.URISchemeHTTP {
				t.Errorf("%s: %s probe scheme %s; the exporter serves HTTP unless --web.config.file enables TLS", where, pr.name, s)
			}
		}
	}

	ec.env = map[string]string{}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			v = "placeholder-" + e.Name
		}
		ec.env[e.Name] = v
		if strings.HasPrefix(e.Name, "ROCKETMQ_") && !bin.envs[e.Name] {
			t.Errorf("%s: env %s is not read by the exporter (not in --help)", where, e.Name)
		}
	}

	// Secrets: only as files (or env from a Secret); never on the command line.
	for name := range flags {
		if strings.Contains(name, "secret") && !strings.HasSuffix(name, "-file") {
			t.Errorf("%s: --%s puts a secret on the command line", where, name)
		}
	}
	if pod != nil {
		for name, values := range flags {
			if !strings.HasSuffix(name, "-file") {
				continue
			}
			for _, v := range values {
				checkMountedFile(t, where, "--"+name, v, c, pod)
			}
		}
	}

	limits, requests := c.Resources.Limits, c.Resources.Requests
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := requests[r]; !ok {
			t.Errorf("%s: no %s request", where, r)
		}
		if _, ok := limits[r]; !ok {
			t.Errorf("%s: no %s limit", where, r)
		}
	}
	if mem, ok := limits[corev1.ResourceMemory]; ok {
		gml, ok := ec.env["GOMEMLIMIT"]
		if !ok {
			t.Errorf("%s: memory limit without GOMEMLIMIT: the Go heap would not know about it", where)
		} else if n, err := parseGoMemLimit(gml); err != nil {
			t.Errorf("%s: GOMEMLIMIT %q: %v", where, gml, err)
		} else if n*10 > mem.Value()*9 {
			t.Errorf("%s: GOMEMLIMIT %s leaves less than 10%% of the %s limit for the rest of the process", where, gml, mem.String())
		}
	}

	sc := c.SecurityContext
	var psc *corev1.PodSecurityContext
	if pod != nil {
		psc = pod.SecurityContext
	}
	nonRoot := (sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
	if !nonRoot {
		t.Errorf("%s: runAsNonRoot not set", where)
	}
	for _, uid := range []*int64{userOf(sc), podUserOf(psc)} {
		if uid != nil && *uid == 0 {
			t.Errorf("%s: runs as uid 0", where)
		}
	}
	switch {
	case sc == nil:
		t.Errorf("%s: no securityContext", where)
	default:
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem not set", where)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation not false", where)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", where)
		}
		dropsAll := false
		if sc.Capabilities != nil {
			for _, d := range sc.Capabilities.Drop {
				dropsAll = dropsAll || d == "ALL"
			}
			if len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: adds capabilities %v", where, sc.Capabilities.Add)
			}
		}
		if !dropsAll {
			t.Errorf("%s: capabilities not dropped (drop: [ALL])", where)
		}
	}
	return ec
}

func userOf(sc *corev1.SecurityContext) *int64 {
	if sc == nil {
		return nil
	}
	return sc.RunAsUser
}

func podUserOf(sc *corev1.PodSecurityContext) *int64 {
	if sc == nil {
		return nil
	}
	return sc.RunAsUser
}

// checkMountedFile checks that a file flag points into a read-only volume
// mount of the container, and into a key the volume really provides.
func checkMountedFile(t *testing.T, where, flag, path string, c corev1.Container, pod *corev1.PodSpec) {
	t.Helper()
	var mount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Errorf("%s: %s=%s is not inside any volume mount", where, flag, path)
		return
	}
	if !mount.ReadOnly {
		t.Errorf("%s: %s: mount %s is not read-only", where, flag, mount.MountPath)
	}
	rel := strings.TrimPrefix(path, strings.TrimSuffix(mount.MountPath, "/")+"/")
	for _, v := range pod.Volumes {
		if v.Name != mount.Name {
			continue
		}
		var items []corev1.KeyToPath
		switch {
		case v.Secret != nil:
			items = v.Secret.Items
		case v.ConfigMap != nil:
			items = v.ConfigMap.Items
		default:
			t.Errorf("%s: %s comes from volume %q, which is neither a Secret nor a ConfigMap", where, flag, v.Name)
			return
		}
		if len(items) == 0 {
			t.Errorf("%s: %s: volume %q projects all keys; list them in items so a missing key fails at pod start, not at exporter start", where, flag, v.Name)
			return
		}
		for _, it := range items {
			if it.Path == rel {
				return
			}
		}
		t.Errorf("%s: %s=%s: volume %q has no item with path %q", where, flag, path, v.Name, rel)
	}
}

// parseGoMemLimit reads GOMEMLIMIT the way the Go runtime does (a number
// with an optional B, KiB, MiB, GiB or TiB suffix).
func parseGoMemLimit(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v * u.mult, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// checkWorkload checks selector and template labels agree (the API server
// rejects the object otherwise) for every Deployment and StatefulSet.
func checkWorkloads(t *testing.T, objs []object) {
	t.Helper()
	for _, o := range objs {
		var sel *metav1.LabelSelector
		var tmpl map[string]string
		switch w := o.obj.(type) {
		case *appsv1.StatefulSet:
			sel, tmpl = w.Spec.Selector, w.Spec.Template.Labels
			if w.Spec.ServiceName != "" {
				svc := findNamed[corev1.Service](objs, w.Spec.ServiceName)
				switch {
				case svc == nil:
					t.Errorf("%s StatefulSet/%s: serviceName %q is not in the kustomization", o.where, o.name, w.Spec.ServiceName)
				case svc.Spec.ClusterIP != corev1.ClusterIPNone:
					t.Errorf("%s StatefulSet/%s: Service %q is not headless", o.where, o.name, svc.Name)
				case !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(tmpl)):
					t.Errorf("%s StatefulSet/%s: Service %q does not select its pods", o.where, o.name, svc.Name)
				}
			}
		case *appsv1.Deployment:
			sel, tmpl = w.Spec.Selector, w.Spec.Template.Labels
		default:
			continue
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil || s.Empty() || !s.Matches(labels.Set(tmpl)) {
			t.Errorf("%s %s/%s: selector %v does not match the template labels %v (%v)", o.where, o.kind, o.name, sel, tmpl, err)
		}
	}
}

// checkServices checks every Service selects pods of the kustomization and
// that its target ports exist in them.
func checkServices(t *testing.T, objs []object) {
	t.Helper()
	for _, svc := range find[corev1.Service](objs) {
		var matched []exporterPod
		for _, p := range podsOf(objs) {
			if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(p.labels)) {
				matched = append(matched, p)
			}
		}
		if len(svc.Spec.Selector) == 0 || len(matched) == 0 {
			t.Errorf("Service %s selects no pod of the kustomization", svc.Name)
			continue
		}
		for _, sp := range svc.Spec.Ports {
			tp := sp.TargetPort
			if tp.Type == intstr.Int && tp.IntVal == 0 {
				tp = intstr.FromInt32(sp.Port)
			}
			for _, p := range matched {
				ok := false
				for _, c := range p.spec.Containers {
					if _, found := containerPort(c, tp); found {
						ok = true
					}
				}
				if !ok {
					t.Errorf("Service %s port %s: target %s is not a container port of %s", svc.Name, sp.Name, tp.String(), p.where)
				}
			}
		}
	}
}

// checkScrapeTiming: Prometheus refuses a scrape timeout above the interval.
func checkScrapeTiming(t *testing.T, where string, interval, timeout monitoringv1.Duration) {
	t.Helper()
	if interval == "" || timeout == "" {
		t.Errorf("%s: set interval and scrapeTimeout explicitly (the exporter sizes its work by the timeout)", where)
		return
	}
	i, err1 := time.ParseDuration(string(interval))
	d, err2 := time.ParseDuration(string(timeout))
	if err1 != nil || err2 != nil {
		t.Errorf("%s: interval %q / scrapeTimeout %q: %v %v", where, interval, timeout, err1, err2)
		return
	}
	if d > i {
		t.Errorf("%s: scrapeTimeout %s above interval %s", where, d, i)
	}
}

// jobSelector is the job selector of the alerts' exporter-down rule: every
// scrape job of the deployment files must match it, or the alert that says
// monitoring is blind would itself be blind.
func jobSelector(t *testing.T) *regexp.Regexp {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "alerts", "rocketmq-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`up\{job=~"([^"]+)"\}`).FindSubmatch(b)
	if m == nil {
		t.Fatal(`alerts/rocketmq-alerts.yml has no up{job=~"…"} selector; update jobSelector`)
	}
	return regexp.MustCompile("^(?:" + string(m[1]) + ")$")
}

func TestKubernetesSidecar(t *testing.T) {
	objs := kustomizeBuild(t, "kubernetes/sidecar")
	secrets := secretExamples(t)
	checkWorkloads(t, objs)
	checkServices(t, objs)
	jobs := jobSelector(t)

	sts := find[appsv1.StatefulSet](objs)
	if len(sts) != 1 {
		t.Fatalf("want one StatefulSet, got %d", len(sts))
	}
	ss := sts[0]
	spec := &ss.Spec.Template.Spec
	var claims []string
	for _, c := range ss.Spec.VolumeClaimTemplates {
		claims = append(claims, c.Name)
	}
	checkPodSpec(t, "StatefulSet/"+ss.Name, spec, objs, secrets, claims...)

	var exp, broker *corev1.Container
	for i, c := range spec.Containers {
		switch {
		case isExporterImage(c.Image):
			exp = &spec.Containers[i]
		case strings.HasPrefix(c.Image, "apache/rocketmq:"):
			broker = &spec.Containers[i]
		}
	}
	if exp == nil || broker == nil {
		t.Fatalf("StatefulSet %s: want a broker and an exporter container", ss.Name)
	}
	if exp.Name != "metrics" {
		t.Errorf("exporter sidecar is named %q, want metrics", exp.Name)
	}
	ec := checkExporterContainer(t, "sidecar", *exp, spec, "metrics")

	// The sidecar reads its own broker over the pod's loopback, at the port
	// the broker container and its broker.conf use.
	addrs := ec.flags["rocketmq.broker-address"]
	if len(addrs) != 1 || len(ec.flags["rocketmq.namesrv-address"]) != 0 {
		t.Fatalf("sidecar: want exactly one --rocketmq.broker-address and no NameServer, got %v", ec.flags)
	}
	host, port, err := net.SplitHostPort(addrs[0])
	if err != nil || host != "127.0.0.1" {
		t.Errorf("sidecar reads %q; it must read its own broker at 127.0.0.1", addrs[0])
	}
	if bp, ok := containerPort(*broker, intstr.FromString("broker")); !ok || strconv.Itoa(int(bp)) != port {
		t.Errorf("sidecar reads port %s, the broker container's port \"broker\" is %d", port, bp)
	}
	for _, cm := range find[corev1.ConfigMap](objs) {
		if conf, ok := cm.Data["broker.conf"]; ok {
			if lp := properties(conf)["listenPort"]; lp != port {
				t.Errorf("broker.conf listenPort=%s, sidecar reads port %s", lp, port)
			}
			if properties(conf)["aclEnable"] == "true" && len(ec.flags["rocketmq.access-key-file"]) == 0 {
				t.Error("broker.conf enables ACL but the sidecar has no --rocketmq.access-key-file")
			}
		}
	}

	pms := find[monitoringv1.PodMonitor](objs)
	if len(pms) != 1 {
		t.Fatalf("want one PodMonitor, got %d", len(pms))
	}
	pm := pms[0]
	sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(ss.Spec.Template.Labels)) {
		t.Errorf("PodMonitor %s selector %v does not select the broker pods %v", pm.Name, pm.Spec.Selector, ss.Spec.Template.Labels)
	}
	if !jobs.MatchString(pm.Namespace + "/" + pm.Name) {
		t.Errorf("PodMonitor job <namespace>/%s does not match the alerts' job selector %s", pm.Name, jobs)
	}
	if len(pm.Spec.PodMetricsEndpoints) != 1 {
		t.Fatalf("PodMonitor %s: want one endpoint", pm.Name)
	}
	ep := pm.Spec.PodMetricsEndpoints[0]
	if ep.Port == nil || *ep.Port != ec.port.Name {
		t.Errorf("PodMonitor endpoint port %q, the sidecar's port is %q", deref(ep.Port), ec.port.Name)
	}
	checkScrapeTiming(t, "PodMonitor "+pm.Name, ep.Interval, ep.ScrapeTimeout)
	scrape := ep.Path
	if scrape == "" {
		scrape = "/metrics"
	}

	r := startExporter(t, exp.Args, ec.env)
	checkServes(t, r, exp.ReadinessProbe.HTTPGet.Path, exp.LivenessProbe.HTTPGet.Path, scrape)
}

func TestKubernetesCluster(t *testing.T) {
	objs := kustomizeBuild(t, "kubernetes/cluster")
	checkClusterMode(t, objs)
}

// checkClusterMode checks the cluster-mode Deployment, Service and
// ServiceMonitor and returns the running exporter.
func checkClusterMode(t *testing.T, objs []object) (*running, *appsv1.Deployment, exporterCheck) {
	t.Helper()
	secrets := secretExamples(t)
	checkWorkloads(t, objs)
	checkServices(t, objs)
	jobs := jobSelector(t)

	deps := find[appsv1.Deployment](objs)
	if len(deps) != 1 {
		t.Fatalf("want one Deployment, got %d", len(deps))
	}
	d := deps[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("Deployment %s: want 1 replica (more would report every series twice)", d.Name)
	}
	spec := &d.Spec.Template.Spec
	checkPodSpec(t, "Deployment/"+d.Name, spec, objs, secrets)
	if len(spec.Containers) != 1 || !isExporterImage(spec.Containers[0].Image) {
		t.Fatalf("Deployment %s: want the exporter container alone", d.Name)
	}
	c := spec.Containers[0]
	ec := checkExporterContainer(t, "cluster-mode", c, spec, "metrics")
	if len(ec.flags["rocketmq.namesrv-address"]) == 0 || len(ec.flags["rocketmq.broker-address"]) != 0 {
		t.Errorf("cluster mode: want --rocketmq.namesrv-address and no --rocketmq.broker-address, got %v", ec.flags)
	}

	sms := find[monitoringv1.ServiceMonitor](objs)
	if len(sms) != 1 {
		t.Fatalf("want one ServiceMonitor, got %d", len(sms))
	}
	sm := sms[0]
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	var svc *corev1.Service
	for _, s := range find[corev1.Service](objs) {
		if sel.Matches(labels.Set(s.Labels)) {
			svc = s
		}
	}
	if svc == nil || sel.Empty() {
		t.Fatalf("ServiceMonitor %s selects no Service of the kustomization", sm.Name)
	}
	if sm.Spec.JobLabel == "" && !jobs.MatchString(svc.Name) {
		t.Errorf("ServiceMonitor job %q (the Service name) does not match the alerts' job selector %s", svc.Name, jobs)
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor %s: want one endpoint", sm.Name)
	}
	ep := sm.Spec.Endpoints[0]
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Name == ep.Port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		t.Fatalf("ServiceMonitor endpoint port %q is not a port of Service %s", ep.Port, svc.Name)
	}
	if p, ok := containerPort(c, sp.TargetPort); !ok || p != ec.port.ContainerPort {
		t.Errorf("Service %s port %s does not lead to the exporter's port %d", svc.Name, sp.Name, ec.port.ContainerPort)
	}
	checkScrapeTiming(t, "ServiceMonitor "+sm.Name, ep.Interval, ep.ScrapeTimeout)
	scrape := ep.Path
	if scrape == "" {
		scrape = "/metrics"
	}
	r := startExporter(t, c.Args, ec.env)
	checkServes(t, r, c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path, scrape)
	return r, d, ec
}

func TestKubernetesProbe(t *testing.T) {
	objs := kustomizeBuild(t, "kubernetes/probe")
	r, d, ec := checkClusterMode(t, objs)
	jobs := jobSelector(t)

	allowed := ec.flags["probe.allowed-targets"]
	if len(allowed) != 1 {
		t.Fatalf("Deployment %s: /probe needs exactly one --probe.allowed-targets, got %q", d.Name, allowed)
	}
	// The exporter anchors the pattern the same way.
	re := regexp.MustCompile("^(?:" + allowed[0] + ")$")

	probes := find[monitoringv1.Probe](objs)
	if len(probes) != 1 {
		t.Fatalf("want one Probe, got %d", len(probes))
	}
	p := probes[0]
	if !jobs.MatchString(p.Spec.JobName) {
		t.Errorf("Probe job %q does not match the alerts' job selector %s", p.Spec.JobName, jobs)
	}
	checkScrapeTiming(t, "Probe "+p.Name, p.Spec.Interval, p.Spec.ScrapeTimeout)
	if p.Spec.ProberSpec.Path != "/probe" {
		t.Errorf("Probe prober path %q, want /probe", p.Spec.ProberSpec.Path)
	}
	// prober.url is the exporter's Service: <service>.<namespace>.svc:<port>.
	host, port, err := net.SplitHostPort(p.Spec.ProberSpec.URL)
	if err != nil {
		t.Fatalf("Probe prober url %q: %v", p.Spec.ProberSpec.URL, err)
	}
	svcName, _, _ := strings.Cut(host, ".")
	svc := findNamed[corev1.Service](objs, svcName)
	if svc == nil {
		t.Fatalf("Probe prober url %q: no Service %q in the kustomization", p.Spec.ProberSpec.URL, svcName)
	}
	portOK := false
	for _, sp := range svc.Spec.Ports {
		portOK = portOK || strconv.Itoa(int(sp.Port)) == port
	}
	if !portOK {
		t.Errorf("Probe prober url port %s is not a port of Service %s", port, svc.Name)
	}

	q := url.Values{}
	for _, prm := range p.Spec.Params {
		switch prm.Name {
		case "kind":
			for _, v := range prm.Values {
				if v != "broker" && v != "namesrv" {
					t.Errorf("Probe param kind=%q; the exporter knows broker and namesrv", v)
				}
			}
		case "collect[]", "auth_module":
		default:
			t.Errorf("Probe param %q is not one /probe reads", prm.Name)
		}
		for _, v := range prm.Values {
			q.Add(prm.Name, v)
		}
	}
	if p.Spec.Targets.StaticConfig == nil || len(p.Spec.Targets.StaticConfig.Targets) == 0 {
		t.Fatal("Probe has no static targets")
	}
	for _, target := range p.Spec.Targets.StaticConfig.Targets {
		if !re.MatchString(target) {
			t.Errorf("Probe target %q is not allowed by --probe.allowed-targets=%s: the exporter would answer 403", target, allowed[0])
		}
		tq := url.Values{}
		for k, v := range q {
			tq[k] = v
		}
		tq.Set("target", target)
		code, body := r.get(t, p.Spec.ProberSpec.Path+"?"+tq.Encode())
		if code != http.StatusOK || !strings.Contains(body, "rocketmq_up{") {
			t.Errorf("GET /probe?%s = %d\n%.300s", tq.Encode(), code, body)
		}
	}
	// And the pattern does restrict: an arbitrary address is refused.
	if code, _ := r.get(t, "/probe?target=attacker.example.com:80&kind=namesrv"); code != http.StatusForbidden {
		t.Errorf("/probe of a target outside --probe.allowed-targets answered %d, want 403", code)
	}
}

// properties parses a Java .properties file the simple way broker.conf is
// written: key=value lines and # comments.
func properties(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "!") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out
}

// TestKubernetesResourceSizing keeps the requests and limits of every
// exporter container in line with the measured figures the manifests quote:
// 4 concurrent scrapes of the measured 12.6k-series broker peaked at 76 MiB,
// so no exporter's memory limit may go below that.
func TestKubernetesResourceSizing(t *testing.T) {
	measuredPeak := resource.MustParse("76Mi")
	containers := map[string]corev1.Container{}
	for _, dir := range []string{"kubernetes/sidecar", "kubernetes/cluster"} {
		for _, p := range podsOf(kustomizeBuild(t, dir)) {
			for _, c := range p.spec.Containers {
				containers[p.where+" "+c.Name] = c
			}
		}
	}
	for _, sd := range find[kbSidecarDefinition](kustomizeBuild(t, "kubeblocks")) {
		for _, c := range sd.Spec.Containers {
			containers["SidecarDefinition/"+sd.Name+" "+c.Name] = c
		}
	}
	n := 0
	for where, c := range containers {
		if !isExporterImage(c.Image) {
			continue
		}
		n++
		if lim := c.Resources.Limits[corev1.ResourceMemory]; lim.Cmp(measuredPeak) < 0 {
			t.Errorf("%s: memory limit %s below the measured peak %s", where, lim.String(), measuredPeak.String())
		}
	}
	if n != 3 {
		t.Errorf("found %d exporter containers, want 3 (sidecar, cluster mode, KubeBlocks)", n)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<unset>"
	}
	return *s
}
