package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// manifests are the Kubernetes objects of docs/deploy/k8s, decoded.
type manifests struct {
	config     *corev1.ConfigMap
	deployment *appsv1.Deployment
	service    *corev1.Service
	pdb        *policyv1.PodDisruptionBudget
	job        *batchv1.Job
}

// decode decodes one manifest strictly: an unknown field, a duplicate one
// or a wrong type is an error.
func decode(name string, b []byte, into any) error {
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// decodeAll decodes the files (name to YAML) by their kind.
func decodeAll(files map[string][]byte) (*manifests, error) {
	m := &manifests{}
	for name, b := range files {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(b, &tm); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		var err error
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ConfigMap":
			m.config = &corev1.ConfigMap{}
			err = decode(name, b, m.config)
		case "apps/v1 Deployment":
			m.deployment = &appsv1.Deployment{}
			err = decode(name, b, m.deployment)
		case "v1 Service":
			m.service = &corev1.Service{}
			err = decode(name, b, m.service)
		case "policy/v1 PodDisruptionBudget":
			m.pdb = &policyv1.PodDisruptionBudget{}
			err = decode(name, b, m.pdb)
		case "batch/v1 Job":
			m.job = &batchv1.Job{}
			err = decode(name, b, m.job)
		default:
			err = fmt.Errorf("%s: unexpected kind %q %q", name, tm.APIVersion, tm.Kind)
		}
		if err != nil {
			return nil, err
		}
	}
	if m.config == nil || m.deployment == nil || m.service == nil || m.pdb == nil || m.job == nil {
		return nil, errors.New("want a ConfigMap, a Deployment, a Service, a PodDisruptionBudget and a Job")
	}
	return m, nil
}

// drainOf reads drain-delay and drain-timeout from the ConfigMap's
// config.json (uno serve's defaults where absent).
func drainOf(cm *corev1.ConfigMap) (delay, timeout time.Duration, err error) {
	var cfg struct {
		DrainDelay   string `json:"drain-delay"`
		DrainTimeout string `json:"drain-timeout"`
	}
	raw, ok := cm.Data["config.json"]
	if !ok {
		return 0, 0, errors.New("the ConfigMap has no config.json")
	}
	if err := yaml.Unmarshal([]byte(raw), &cfg); err != nil {
		return 0, 0, fmt.Errorf("config.json: %w", err)
	}
	timeout = 30 * time.Second
	if cfg.DrainTimeout != "" {
		if timeout, err = time.ParseDuration(cfg.DrainTimeout); err != nil {
			return 0, 0, err
		}
	}
	if cfg.DrainDelay != "" {
		if delay, err = time.ParseDuration(cfg.DrainDelay); err != nil {
			return 0, 0, err
		}
	}
	return delay, timeout, nil
}

// check returns what breaks the invariants between the manifests and uno.
func (m *manifests) check() []string {
	var p []string
	d := m.deployment
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		return []string{"want one container in the Deployment"}
	}
	c := pod.Containers[0]
	ports := map[string]int32{}
	for _, cp := range c.Ports {
		ports[cp.Name] = cp.ContainerPort
	}
	if ports["http"] != 8080 {
		p = append(p, "the container's port http is not 8080 (uno serve's --addr in config.json)")
	}
	probe := func(what string, pr *corev1.Probe, path string) {
		if pr == nil || pr.HTTPGet == nil {
			p = append(p, what+" probe: want an httpGet")
			return
		}
		if pr.HTTPGet.Path != path {
			p = append(p, fmt.Sprintf("%s probe: path %q, uno serves %q", what, pr.HTTPGet.Path, path))
		}
		port := pr.HTTPGet.Port
		if port.IntValue() != 8080 && ports[port.String()] != 8080 {
			p = append(p, fmt.Sprintf("%s probe: port %s is not the container's 8080", what, port.String()))
		}
	}
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("startup", c.StartupProbe, "/healthz")
	nonRoot := func(what string, ps *corev1.PodSecurityContext, cs *corev1.SecurityContext) {
		// The container's setting wins over the pod's.
		var nonRoot *bool
		if ps != nil {
			nonRoot = ps.RunAsNonRoot
		}
		if cs != nil && cs.RunAsNonRoot != nil {
			nonRoot = cs.RunAsNonRoot
		}
		if nonRoot == nil || !*nonRoot {
			p = append(p, what+": runAsNonRoot is not set")
		}
		if cs == nil || cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem {
			p = append(p, what+": readOnlyRootFilesystem is not set")
		}
		if cs == nil || cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation {
			p = append(p, what+": allowPrivilegeEscalation is not false")
		}
		if cs == nil || cs.Capabilities == nil || len(cs.Capabilities.Drop) != 1 || cs.Capabilities.Drop[0] != "ALL" {
			p = append(p, what+": capabilities do not drop ALL")
		}
	}
	nonRoot("Deployment", pod.SecurityContext, c.SecurityContext)
	jc := m.job.Spec.Template.Spec
	if len(jc.Containers) != 1 {
		p = append(p, "want one container in the migration Job")
	} else {
		nonRoot("migration Job", jc.SecurityContext, jc.Containers[0].SecurityContext)
		if args := jc.Containers[0].Args; len(args) < 2 || args[0] != "migrate" || args[1] != "up" {
			p = append(p, fmt.Sprintf("migration Job: args %q do not run uno migrate up", args))
		}
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		p = append(p, "the container sets no memory request and limit")
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	podLabels := labels.Set(d.Spec.Template.Labels)
	if err != nil || !sel.Matches(podLabels) {
		p = append(p, "the Deployment's selector does not match its pod labels")
	}
	if sel, err := metav1.LabelSelectorAsSelector(m.pdb.Spec.Selector); err != nil || sel.Empty() || !sel.Matches(podLabels) {
		p = append(p, "the PodDisruptionBudget's selector does not match the Deployment's pods")
	}
	if len(m.service.Spec.Selector) == 0 || !labels.SelectorFromSet(m.service.Spec.Selector).Matches(podLabels) {
		p = append(p, "the Service's selector does not match the Deployment's pods")
	}
	if labels.SelectorFromSet(m.service.Spec.Selector).Matches(labels.Set(m.job.Spec.Template.Labels)) {
		p = append(p, "the Service's selector matches the migration Job's pods")
	}
	for _, sp := range m.service.Spec.Ports {
		if tp := sp.TargetPort; tp.IntValue() != 8080 && ports[tp.String()] != 8080 {
			p = append(p, fmt.Sprintf("the Service's port %d targets %s, not the container's 8080", sp.Port, tp.String()))
		}
	}
	delay, timeout, err := drainOf(m.config)
	if err != nil {
		p = append(p, err.Error())
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= delay+timeout {
		p = append(p, fmt.Sprintf("terminationGracePeriodSeconds is not above drain-delay %s + drain-timeout %s", delay, timeout))
	}
	if delay <= 0 {
		p = append(p, "drain-delay is 0: the Service may route new connections to a draining pod")
	}
	secret := false
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			secret = true
		}
	}
	if !secret {
		p = append(p, "the JWT key does not come from a Secret volume")
	}
	return p
}

func readManifests(t *testing.T) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(root, "docs/deploy/k8s/*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests in docs/deploy/k8s: %v", err)
	}
	files := map[string][]byte{}
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(path)] = b
	}
	return files
}

func TestKubernetesManifests(t *testing.T) {
	files := readManifests(t)
	m, err := decodeAll(files)
	if err != nil {
		t.Fatal(err)
	}
	if p := m.check(); len(p) > 0 {
		t.Fatalf("docs/deploy/k8s:\n%s", strings.Join(p, "\n"))
	}

	// Each broken copy is refused: by the strict decoding, or by check.
	broken := []struct{ name, file, from, to, want string }{
		{"typo'd field", "deployment.yaml", "readinessProbe:", "readinesProbe:", "unknown field"},
		{"wrong type", "deployment.yaml", "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: \"45s\"", "cannot unmarshal"},
		{"duplicate field", "service.yaml", "  selector:\n", "  type: ClusterIP\n  type: NodePort\n  selector:\n", "already set"},
		{"PDB selector mismatch", "pdb.yaml", "matchLabels:\n      app.kubernetes.io/name: uno\n", "matchLabels:\n      app.kubernetes.io/name: uno-web\n", "PodDisruptionBudget's selector"},
		{"Service selector mismatch", "service.yaml", "  selector:\n    app.kubernetes.io/name: uno", "  selector:\n    app: uno", "Service's selector"},
		{"Service targets another port", "service.yaml", "targetPort: http", "targetPort: 9090", "targets"},
		{"readiness on liveness", "deployment.yaml", "path: /readyz", "path: /ready", "readiness probe"},
		{"grace period too short", "deployment.yaml", "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds"},
		{"root container", "deployment.yaml", "            runAsNonRoot: true\n", "            runAsNonRoot: false\n", "runAsNonRoot"},
		{"writable root", "deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
		{"no drain delay", "configmap.yaml", `"drain-delay": "5s",`, "", "drain-delay is 0"},
	}
	for _, bc := range broken {
		t.Run(bc.name, func(t *testing.T) {
			if !bytes.Contains(files[bc.file], []byte(bc.from)) {
				t.Fatalf("%s has no %q to break", bc.file, bc.from)
			}
			copied := map[string][]byte{}
			for k, v := range files {
				copied[k] = v
			}
			copied[bc.file] = bytes.Replace(files[bc.file], []byte(bc.from), []byte(bc.to), 1)
			var problems string
			if m, err := decodeAll(copied); err != nil {
				problems = err.Error()
			} else {
				problems = strings.Join(m.check(), "\n")
			}
			if !strings.Contains(problems, bc.want) {
				t.Errorf("problems %q, want one naming %q", problems, bc.want)
			}
		})
	}
}
