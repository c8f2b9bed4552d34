"""Dockerfile.cuda (hadolint; no engine here to build it) and deploy/kubernetes (kustomize, schemas)."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
K8S = REPO / "deploy" / "kubernetes"


def test_dockerfile_is_hadolint_clean():
    result = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(REPO / "Dockerfile.cuda")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_has_what_production_needs():
    text = (REPO / "Dockerfile.cuda").read_text()
    base = next(line for line in text.splitlines() if line.startswith("FROM "))
    assert base.startswith("FROM vllm/vllm-openai:v") and ":latest" not in base
    assert 'ENTRYPOINT ["serve-with-monitoring", "--stack", "none"]' in text
    assert "HEALTHCHECK" in text and '"serve-with-monitoring", "health"' in text
    assert "EXPOSE 8000 9402" in text
    assert "USER 10001:10001" in text


def test_dockerignore_keeps_tests_venvs_and_state_out():
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    for entry in (".venv", "tests", "state", ".git", ".tools"):
        assert entry in ignored, entry


def build_kustomization() -> list[dict]:
    result = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def test_generated_manifests_are_in_sync_with_observability():
    result = subprocess.run(
        [sys.executable, "-m", "observability.kubernetes_manifests", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_kustomization_builds_and_core_kinds_pass_strict_validation(tmp_path):
    documents = build_kustomization()
    kinds = sorted(document["kind"] for document in documents)
    assert kinds == [
        "ConfigMap",
        "ConfigMap",
        "ConfigMap",
        "Deployment",
        "NetworkPolicy",
        "PrometheusRule",
        "Service",
        "ServiceMonitor",
    ]
    core = tmp_path / "core.yaml"
    core_kinds = ("ConfigMap", "Deployment", "Service", "NetworkPolicy")
    core.write_text(yaml.safe_dump_all([d for d in documents if d["kind"] in core_kinds]))
    result = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "-k", "1.30.0", "--quiet", str(core)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_deployment_requests_a_gpu_probes_health_and_outlasts_the_grace_period():
    deployment = next(d for d in build_kustomization() if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    assert pod["terminationGracePeriodSeconds"] > 30 + 2
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_the_api_key_comes_from_a_secret_and_never_from_args():
    container = next(d for d in build_kustomization() if d["kind"] == "Deployment")["spec"]["template"]["spec"][
        "containers"
    ][0]
    env = {variable["name"]: variable for variable in container["env"]}
    assert env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "vllm-api-key", "key": "api-key"}
    assert not any("api-key" in str(arg) for arg in container["args"])


def test_the_network_policy_opens_the_api_to_clients_and_the_exporter_to_monitoring_only():
    policy = next(d for d in build_kustomization() if d["kind"] == "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    clients, monitoring = policy["spec"]["ingress"]
    assert "from" not in clients and [p["port"] for p in clients["ports"]] == ["http"]
    assert monitoring["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert [p["port"] for p in monitoring["ports"]] == ["exporter"]


def test_the_keda_component_builds_and_scales_on_vllms_queue(tmp_path):
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(K8S, overlay)],
                "components": [os.path.relpath(K8S / "components" / "keda-autoscaling", overlay)],
            }
        )
    )
    result = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    scaled = next(d for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "serve-with-monitoring"
    assert scaled["spec"]["minReplicaCount"] >= 1
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "prometheus" and "vllm:num_requests_waiting" in trigger["metadata"]["query"]


def test_servicemonitor_scrapes_vllm_and_the_exporter_with_the_alerts_job_labels():
    monitor = next(d for d in build_kustomization() if d["kind"] == "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    endpoints = {e["port"]: e for e in monitor["spec"]["endpoints"]}
    assert set(endpoints) == {"http", "exporter"}
    jobs = {port: e["relabelings"][0]["replacement"] for port, e in endpoints.items()}
    assert jobs == {"http": "vllm", "exporter": "swm-exporter"}
    service = next(d for d in build_kustomization() if d["kind"] == "Service")
    assert {p["name"] for p in service["spec"]["ports"]} == set(endpoints)
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()


def test_prometheusrule_carries_every_shipped_rule_and_is_well_formed():
    rule = next(d for d in build_kustomization() if d["kind"] == "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    shipped = []
    for path in sorted((REPO / "observability" / "prometheus" / "rules").glob("*.yml")):
        shipped += yaml.safe_load(path.read_text())["groups"]
    assert rule["spec"]["groups"] == shipped
    for group in rule["spec"]["groups"]:
        assert group["name"] and group["rules"]
        for entry in group["rules"]:
            assert ("alert" in entry) != ("record" in entry)
            assert isinstance(entry["expr"], str) and entry["expr"].strip()


def test_dashboards_ship_as_configmaps_for_the_grafana_sidecar():
    maps = [d for d in build_kustomization() if d["kind"] == "ConfigMap"]
    assert all(m["metadata"]["labels"]["grafana_dashboard"] == "1" for m in maps)
    committed = {path.name: path.read_text() for path in (REPO / "observability" / "grafana" / "dashboards").glob("*")}
    assert {key: value for m in maps for key, value in m["data"].items()} == committed


_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def quantity(value: str | int) -> float:
    """A Kubernetes resource quantity in bytes (or plain units)."""
    text = str(value)
    for suffix, factor in _UNITS.items():
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * factor
    return float(text)


def pod_specs() -> list[dict]:
    """Every pod the kustomization makes, the optional KEDA component's objects included (none today)."""
    return [
        document["spec"]["template"]["spec"]
        for document in build_kustomization()
        if document["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")
    ]


def test_every_container_requests_and_is_limited_in_memory_and_disk():
    pods = pod_specs()
    assert pods
    for pod in pods:
        for container in pod.get("initContainers", []) + pod["containers"]:
            requests, limits = container["resources"]["requests"], container["resources"]["limits"]
            for resource in ("memory", "ephemeral-storage"):
                assert resource in requests and resource in limits, (container["name"], resource)
                assert quantity(requests[resource]) <= quantity(limits[resource]), (container["name"], resource)


def test_every_empty_dir_is_bounded_and_fits_in_the_pods_limits():
    """A disk emptyDir counts against ephemeral-storage, a memory one (tmpfs) against the memory limit:
    a full one must meet its own sizeLimit first, not evict the pod for the container's limit."""
    for pod in pod_specs():
        containers = pod.get("initContainers", []) + pod["containers"]
        memory = sum(quantity(c["resources"]["limits"]["memory"]) for c in pod["containers"])
        disk = sum(quantity(c["resources"]["limits"]["ephemeral-storage"]) for c in pod["containers"])
        on_disk = on_tmpfs = 0.0
        for volume in pod["volumes"]:
            if "emptyDir" not in volume:
                continue
            empty_dir = volume["emptyDir"] or {}
            assert "sizeLimit" in empty_dir, volume["name"]
            if empty_dir.get("medium") == "Memory":
                on_tmpfs += quantity(empty_dir["sizeLimit"])
            else:
                on_disk += quantity(empty_dir["sizeLimit"])
        assert containers and on_disk <= disk and on_tmpfs < memory


def test_no_pod_gets_a_service_account_token():
    """Nothing in the pod calls the Kubernetes API (the cluster's Prometheus discovers it through the
    ServiceMonitor, with its own account), so a token in the pod would only serve whoever broke in."""
    for pod in pod_specs():
        assert pod["automountServiceAccountToken"] is False
