"""What can be checked of the compose file, image, dashboard, alerts and manifests without an engine."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from streamer.metrics import Metrics
from streamer.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
SETTING_VARS = {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def metric_names() -> set[str]:
    """Exposed series names, also of labelled metrics that have no sample yet."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    return {f.name + s for f in Metrics().registry.collect() for s in suffixes[f.type]}


def streamer_envs(env: dict[str, Any]) -> set[str]:
    return {k for k in env if k.startswith(ENV_PREFIX) and not k.startswith(ENV_PREFIX + "KAFKA_")}


def test_compose_has_the_stack_and_only_known_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "topics", "bedrock-sim", "streamer", "producer", "prometheus", "grafana"} <= set(
        services
    )
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "8080:8080" in services["streamer"]["ports"]
    for name, svc in services.items():
        unknown = streamer_envs(svc.get("environment", {})) - SETTING_VARS
        assert not unknown, f"{name} sets unknown settings {unknown}"
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert prom["scrape_configs"][0]["static_configs"][0]["targets"] == ["streamer:8080"]


def test_image_is_slim_non_root_without_build_stage_tools_and_has_a_healthcheck() -> None:
    text = (ROOT / "deploy/Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) == 2 and all(s.startswith("python:3.11-slim") for s in stages)
    final = stages[-1]
    assert re.search(r"^USER 10001$", final, re.M)
    assert "HEALTHCHECK" in final and "/healthz" in final
    assert "apt-get" not in final and "gcc" not in final


def _queries() -> list[str]:
    dash = json.loads((ROOT / "deploy/grafana/streamer-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    return exprs + [r["expr"] for g in rules["groups"] for r in g["rules"]]


def test_dashboard_and_alerts_only_use_metrics_the_code_defines() -> None:
    known = metric_names()
    used = {m for q in _queries() for m in re.findall(r"\bstreamer_[a-z_]+", q)}
    assert used and used <= known, used - known
    titles = " ".join(
        p["title"]
        for p in json.loads((ROOT / "deploy/grafana/streamer-dashboard.json").read_text())["panels"]
    )
    for topic in ("Throughput", "lag", "LLM latency", "In flight", "Throttles", "Cost", "status", "Oldest"):
        assert topic in titles


def test_metric_names_follow_conventions() -> None:
    for family in Metrics().registry.collect():
        assert family.name.startswith("streamer_")
        assert family.type in ("counter", "gauge", "histogram")
        if family.type == "histogram":
            assert family.name.endswith(("_seconds", "_bytes")), family.name


def _kustomize() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render deploy/k8s/base"
    out = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "deploy/k8s/base")], check=True, capture_output=True, text=True
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_kubernetes_manifests_keep_their_invariants() -> None:
    docs = {d["kind"]: d for d in _kustomize()}
    assert {
        "Deployment",
        "ConfigMap",
        "ServiceAccount",
        "Service",
        "PodMonitor",
        "PodDisruptionBudget",
        "ScaledObject",
    } <= set(docs)
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    config = docs["ConfigMap"]["data"]
    assert streamer_envs(config) <= SETTING_VARS
    grace = float(config.get("STREAMER_SHUTDOWN_GRACE_S", Settings().shutdown_grace_s))
    assert pod["terminationGracePeriodSeconds"] > grace
    assert "eks.amazonaws.com/role-arn" in docs["ServiceAccount"]["metadata"]["annotations"]
    assert docs["ScaledObject"]["spec"]["triggers"][0]["type"] == "kafka"
    assert (
        docs["ScaledObject"]["spec"]["triggers"][0]["metadata"]["consumerGroup"]
        == config["STREAMER_GROUP_ID"]
    )


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [v for v in SETTING_VARS if f"`{v}`" not in readme and v != "STREAMER_KAFKA"]
    assert not missing, missing
