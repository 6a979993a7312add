"""What ``deploy/`` gives an operator is valid before anyone applies it.

Every manifest under ``deploy/k8s`` is checked against the Kubernetes API's own JSON schemas
(``kubernetes-validate``, strict: unknown fields fail, as ``kubectl apply --validate=strict``
does); KEDA's objects against the CRD schemas KEDA installs (vendored under ``crds/``), with
the same unknown-field rule the API server applies to custom resources. The scaling objects
must point at the Deployments and queues that exist; the Grafana dashboard and the alert rules
must be well formed and reference only metrics the platform exports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from meterai_common.messaging import SIGNING_QUEUE, STAMPING_EVENTS
from meterai_common.metrics import exposed_names

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
CRDS = Path(__file__).resolve().parent / "crds"
KUBERNETES_VERSION = "1.30.0"
"""The oldest Kubernetes the manifests promise to work on (policy/v1, autoscaling/v2)."""
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))
DOCUMENTS = [
    pytest.param(document, id=f"{path.name}:{document['kind']}/{document['metadata']['name']}")
    for path in MANIFESTS
    for document in yaml.safe_load_all(path.read_text())
    if document
]
METRIC = re.compile(r"\bmeterai_[a-z0-9_]+\b")


def _all(kind: str) -> dict[str, dict[str, Any]]:
    return {
        document.values[0]["metadata"]["name"]: document.values[0]
        for document in DOCUMENTS
        if document.values[0]["kind"] == kind
    }


def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → openAPIV3Schema of every vendored CRD version."""
    schemas = {}
    for path in CRDS.glob("*.yaml"):
        for crd in yaml.safe_load_all(path.read_text()):
            spec = crd["spec"]
            for version in spec["versions"]:
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


CRD_SCHEMAS = _crd_schemas()


def _unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> Iterator[str]:
    """Fields the API server would drop (or refuse, under strict validation) as unknown."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                yield from _unknown_fields(item, properties[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                yield from _unknown_fields(item, extra, f"{path}.{key}")
            elif properties is not None and key not in ("apiVersion", "kind", "metadata"):
                yield f"{path}.{key}"
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from _unknown_fields(item, schema["items"], f"{path}[{index}]")


def test_there_are_manifests_of_each_kind_to_check() -> None:
    names = {path.name for path in MANIFESTS}
    assert {"meterai.yaml", "keda.yaml", "pdb.yaml"} <= names
    assert set(CRD_SCHEMAS) >= {
        ("keda.sh/v1alpha1", "ScaledObject"),
        ("keda.sh/v1alpha1", "TriggerAuthentication"),
    }


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_manifest_matches_its_schema(document: dict[str, Any]) -> None:
    key = (document["apiVersion"], document["kind"])
    if key[0].startswith("keda.sh/"):
        assert key in CRD_SCHEMAS, f"no vendored CRD schema for {key}"
        schema = CRD_SCHEMAS[key]
        jsonschema.validate(document, schema, cls=jsonschema.Draft7Validator)
        assert list(_unknown_fields(document, schema)) == []
    else:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_a_typo_in_a_manifest_fails_validation() -> None:
    """The checks above can fail: a misspelt field is caught by both kinds of schema."""
    (pdb, *_) = _all("PodDisruptionBudget").values()
    broken = {**pdb, "spec": {**pdb["spec"], "maxUnavailabe": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    scaled = _all("ScaledObject")["meterai-signing-worker"]
    typo = {**scaled, "spec": {**scaled["spec"], "minReplicas": 2}}
    schema = CRD_SCHEMAS[("keda.sh/v1alpha1", "ScaledObject")]
    assert list(_unknown_fields(typo, schema)) == [".spec.minReplicas"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {**scaled, "spec": {**scaled["spec"], "minReplicaCount": "two"}},
            schema,
            cls=jsonschema.Draft7Validator,
        )


def test_every_deployment_has_a_disruption_budget_selecting_its_pods() -> None:
    deployments = _all("Deployment")
    budgets = _all("PodDisruptionBudget")
    assert set(budgets) == set(deployments)
    for name, budget in budgets.items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        selector = budget["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items(), name


def test_workers_scale_on_the_queue_they_consume() -> None:
    deployments = _all("Deployment")
    scaled = _all("ScaledObject")
    auth = _all("TriggerAuthentication")
    queue_of = {
        "meterai-signing-worker": SIGNING_QUEUE,
        "meterai-finishing-worker": STAMPING_EVENTS.name,
    }
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scaled.values()} == set(queue_of)
    for scaled_object in scaled.values():
        target = scaled_object["spec"]["scaleTargetRef"]["name"]
        assert target in deployments
        (queue,) = [t for t in scaled_object["spec"]["triggers"] if t["type"] == "rabbitmq"]
        assert queue["metadata"]["queueName"] == queue_of[target]
        assert queue["metadata"]["mode"] == "QueueLength"
        assert queue["authenticationRef"]["name"] in auth


def test_keda_takes_over_the_cpu_autoscaler_instead_of_fighting_it() -> None:
    """meterai.yaml's CPU HPA is the fallback without KEDA; with it, one HPA per Deployment."""
    hpas = _all("HorizontalPodAutoscaler")
    for name, scaled_object in _all("ScaledObject").items():
        target = scaled_object["spec"]["scaleTargetRef"]["name"]
        existing = [n for n, h in hpas.items() if h["spec"]["scaleTargetRef"]["name"] == target]
        if not existing:
            continue
        annotations = scaled_object["metadata"].get("annotations", {})
        assert annotations.get("scaledobject.keda.sh/transfer-hpa-ownership") == "true", name
        hpa_config = scaled_object["spec"]["advanced"]["horizontalPodAutoscalerConfig"]
        assert [hpa_config["name"]] == existing, name


def _alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_alert_rules_are_well_formed() -> None:
    document = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    assert set(document) == {"groups"}
    groups = [group["name"] for group in document["groups"]]
    assert len(groups) == len(set(groups))
    rules = _alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["expr"].strip() and rule["annotations"]["summary"], rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


def test_alerts_cover_backlog_refusals_outbox_and_dead_letters() -> None:
    expressions = " ".join(rule["expr"] for rule in _alert_rules())
    for metric in (
        "meterai_backlog_oldest_age_seconds",
        "meterai_submits_refused_total",
        "meterai_outbox_oldest_age_seconds",
        "meterai_dead_letters_pending",
    ):
        assert metric in expressions, metric


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(
        (DEPLOY / "grafana" / "meterai-dashboard.json").read_text()
    )
    return dashboard


def test_the_dashboard_is_a_well_formed_grafana_dashboard() -> None:
    dashboard = _dashboard()
    assert dashboard["title"] and dashboard["uid"] and dashboard["schemaVersion"] >= 36
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}, panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), panel["title"]
    titles = " ".join(panel["title"].lower() for panel in panels)
    for topic in ("throughput", "refusals by reason", "backlog", "p99", "workers"):
        assert topic in titles, topic


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_alerts_and_dashboard_reference_only_exported_metrics(source: str) -> None:
    if source == "alerts":
        expressions = [rule["expr"] for rule in _alert_rules()]
    else:
        expressions = [t["expr"] for p in _dashboard()["panels"] for t in p["targets"]]
    referenced = {name for expr in expressions for name in METRIC.findall(expr)}
    assert referenced, "no meterai metric referenced at all"
    assert referenced - exposed_names() == set()
