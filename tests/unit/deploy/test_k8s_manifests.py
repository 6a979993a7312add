"""The Kubernetes manifests, read as a security policy: least privilege in every pod, secrets
read-only and never world-readable, each pod holding only its own credentials, and network
policies that let only the stamping tier reach signing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meterai_common.broker_users import GRANTS

MANIFEST = Path(__file__).resolve().parents[3] / "deploy" / "k8s" / "meterai.yaml"
DOCUMENTS = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
DEPLOYMENTS = {d["metadata"]["name"]: d for d in DOCUMENTS if d["kind"] == "Deployment"}
POLICIES = {d["metadata"]["name"]: d for d in DOCUMENTS if d["kind"] == "NetworkPolicy"}

IDENTITY = {
    "meterai-quota": "quota",
    "meterai-stamping": "stamping",
    "meterai-finishing-worker": "finishing",
    "meterai-signing": "signing",
    "meterai-signing-worker": "signing",
    "meterai-verify": "verify",
    "meterai-web": "web",
    "meterai-webhooks-worker": "webhooks",
}
NO_TLS = {"meterai-webhooks-worker"}
"""Serves nothing but metrics and calls no platform service: no certificate to hold."""
BROKER_USER = {
    "meterai-quota": "quota",
    "meterai-stamping": "stamping",
    "meterai-finishing-worker": "finishing",
    "meterai-signing-worker": "signing",
    "meterai-webhooks-worker": "webhooks",
}


def _pod(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    return spec


def _env(name: str) -> dict[str, str]:
    (container,) = _pod(name)["containers"]
    return {e["name"]: e.get("value", "<secret>") for e in container["env"]}


def _labels(name: str) -> dict[str, str]:
    labels: dict[str, str] = DEPLOYMENTS[name]["spec"]["template"]["metadata"]["labels"]
    return labels


def _secrets(name: str) -> set[str]:
    return {v["secret"]["secretName"] for v in _pod(name)["volumes"] if "secret" in v}


def test_every_process_kind_has_a_deployment() -> None:
    assert set(DEPLOYMENTS) == set(IDENTITY)


@pytest.mark.parametrize("name", sorted(IDENTITY))
def test_pods_run_unprivileged(name: str) -> None:
    pod = _pod(name)
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("name", sorted(IDENTITY))
def test_secrets_are_mounted_read_only_and_never_world_readable(name: str) -> None:
    pod = _pod(name)
    secret_volumes = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
    (container,) = pod["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    for volume, secret in secret_volumes.items():
        assert mounts[volume].get("readOnly") is True, volume
        assert secret["defaultMode"] & 0o007 == 0, volume


@pytest.mark.parametrize("name", sorted(IDENTITY))
def test_each_pod_holds_only_its_own_credentials(name: str) -> None:
    expected = set() if name in NO_TLS else {f"meterai-tls-{IDENTITY[name]}"}
    if name in BROKER_USER:
        expected.add(f"meterai-amqp-{BROKER_USER[name]}")
    if IDENTITY[name] == "signing":
        expected.add("meterai-signing-key")
    if name in ("meterai-stamping", "meterai-finishing-worker", "meterai-verify", "meterai-web"):
        expected.add("meterai-trust")
    assert _secrets(name) == expected


@pytest.mark.parametrize("name", sorted(IDENTITY))
def test_each_pod_uses_its_own_broker_user_over_tls_or_none(name: str) -> None:
    env = _env(name)
    if name not in BROKER_USER:
        assert "AMQP_URL" not in env
        return
    user = BROKER_USER[name]
    assert user in GRANTS
    assert env["AMQP_URL"].startswith(f"amqps://meterai-{user}@")
    assert ":" not in env["AMQP_URL"].split("//", 1)[1].split("@", 1)[0], "password in the URL"
    assert env["AMQP_PASSWORD_FILE"].startswith("/etc/meterai/amqp/")


@pytest.mark.parametrize("name", sorted(IDENTITY))
def test_workers_serve_only_their_metrics(name: str) -> None:
    (container,) = _pod(name)["containers"]
    served = {port["name"] for port in container["ports"]}
    assert "metrics" in served and _env(name)["METRICS_PORT"] == "9464"
    worker = name in (
        "meterai-signing-worker",
        "meterai-finishing-worker",
        "meterai-webhooks-worker",
    )
    assert (served == {"metrics"}) == worker


def test_metrics_are_reached_from_prometheus_only() -> None:
    (rule,) = POLICIES["meterai-metrics-from-prometheus"]["spec"]["ingress"]
    (source,) = rule["from"]
    assert source["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert rule["ports"] == [{"protocol": "TCP", "port": 9464}]


def test_ingress_is_denied_unless_a_policy_allows_it() -> None:
    deny = POLICIES["meterai-default-deny"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"]
    assert "ingress" not in deny


def test_the_public_reaches_only_quota_stamping_and_verification() -> None:
    public = {n for n in DEPLOYMENTS if _labels(n).get("meterai.id/public") == "true"}
    assert public == {"meterai-quota", "meterai-stamping", "meterai-verify", "meterai-web"}
    selector = POLICIES["meterai-public-ingress"]["spec"]["podSelector"]["matchLabels"]
    assert selector == {"meterai.id/public": "true"}


def test_only_the_stamping_tier_reaches_signing() -> None:
    spec = POLICIES["meterai-signing-from-stamping-only"]["spec"]
    assert spec["podSelector"]["matchLabels"] == {"app": "meterai-signing"}
    (rule,) = spec["ingress"]
    (source,) = rule["from"]
    selector = source["podSelector"]["matchLabels"]
    assert selector == {"meterai.id/tier": "stamping"}
    tier = {n for n in DEPLOYMENTS if _labels(n).get("meterai.id/tier") == "stamping"}
    assert tier == {"meterai-stamping", "meterai-finishing-worker"}


def test_only_platform_pods_reach_the_broker_and_the_database() -> None:
    broker = POLICIES["meterai-broker-from-platform-only"]["spec"]["ingress"]
    (rule,) = broker
    assert rule["from"] == [{"podSelector": {"matchLabels": {"meterai.id/broker": "true"}}}]
    on_broker = {n for n in DEPLOYMENTS if _labels(n).get("meterai.id/broker") == "true"}
    assert on_broker == set(BROKER_USER)
    (rule,) = POLICIES["meterai-database-from-platform-only"]["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"meterai.id/platform": "true"}}}]
    assert all(_labels(n)["meterai.id/platform"] == "true" for n in DEPLOYMENTS)


def test_one_client_keeps_reaching_the_verification_pod_that_judged_its_upload() -> None:
    """A verified upload's revision download lives in the memory of the web pod that judged
    it (``meterai_verify/web/app.py``, never written anywhere), and the site runs more than
    one pod: the Service must send a client's next request to the same one."""
    (service,) = [
        d for d in DOCUMENTS if d["kind"] == "Service" and d["metadata"]["name"] == "meterai-web"
    ]
    assert DEPLOYMENTS["meterai-web"]["spec"]["replicas"] > 1
    assert service["spec"]["sessionAffinity"] == "ClientIP"
    assert service["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] >= 600
