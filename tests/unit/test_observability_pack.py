"""The chart's Grafana dashboards and alert rules are well-formed and only query metrics that exist.

promtool's own checks (syntax of every rule and dashboard query, and the alerts' unit tests) are in
tests/e2e/test_observability.py; these need no binary.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kit import REPO
from modelserve import metrics
from modelserve_serving.syncmetrics import SyncMetrics

pytestmark = pytest.mark.unit

CHART = REPO / "charts" / "modelserve-operator"
DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))
RULES = CHART / "files" / "prometheus-rules.yaml"
DOC = REPO / "docs" / "observability.md"

# TF Serving's metric names as its Prometheus exporter writes them ('/' becomes ':'): defined in
# tensorflow_serving/servables/tensorflow/util.cc (request_count, request_latency, runtime_latency;
# latencies are Samplers: histograms in microseconds) and tensorflow_serving/batching/batching_session.cc.
TF_SERVING = {
    ":tensorflow:serving:request_count",
    *(
        f":tensorflow:serving:{h}_{suffix}"
        for h in ("request_latency", "runtime_latency", "batching_session:queuing_latency")
        for suffix in ("bucket", "sum", "count")
    ),
    ":tensorflow:serving:batching_session:wrapped_run_count",
}
# prometheus_client's process collector (the standard process_* names) and Prometheus's own `up`.
PROCESS = {"process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds", "up"}
METRIC = re.compile(r"(:tensorflow:serving:[a-z_:]+[a-z]|\bmodelserve_[a-z_]+|\bprocess_[a-z_]+|\bup\b)")
RECORDED = re.compile(r"\bmodelserve:[a-z0-9_:]+")


def operator_metric_names() -> set[str]:
    """The operator's series and those of the serving image's `sync` (scraped from serving pods)."""
    names: set[str] = set()
    families = [*metrics.REGISTRY.collect(), *SyncMetrics("m", "sidecar").registry.collect()]
    for family in families:
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(f"{family.name}_{s}" for s in ("bucket", "sum", "count"))
        else:
            names.add(family.name)
    return names


def rules() -> dict[str, Any]:
    return dict(yaml.safe_load(RULES.read_text()))


def all_rules() -> list[dict[str, Any]]:
    return [r for g in rules()["groups"] for r in g["rules"]]


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels") or [])
    return out


def dashboard_queries() -> list[tuple[str, str]]:
    return [
        (f"{path.name}: {panel['title']}", target["expr"])
        for path in DASHBOARDS
        for panel in dashboard_panels(json.loads(path.read_text()))
        for target in panel.get("targets") or []
    ]


def test_there_are_dashboards_for_the_operator_and_the_models() -> None:
    assert [p.name for p in DASHBOARDS] == ["modelserve-models.json", "modelserve-operator.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_grafana_json(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    for key in ("uid", "title", "panels", "templating", "schemaVersion", "time"):
        assert key in dashboard, key
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", dashboard["uid"]), "Grafana uids: 40 characters at most"
    assert dashboard["schemaVersion"] >= 36
    assert "id" not in dashboard or dashboard["id"] is None, "an exported id clashes on import"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    source = variables["datasource"]
    assert (source["type"], source["query"]) == ("datasource", "prometheus")
    ids = [p["id"] for p in dashboard_panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    cells: set[tuple[int, int]] = set()
    for panel in dashboard_panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["w"] > 0 and grid["h"] > 0, panel["title"]
        covered = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered
        if panel["type"] == "row":
            continue
        assert panel["type"] in ("timeseries", "stat", "table", "bargauge", "gauge"), panel["type"]
        assert panel["title"] and panel["targets"], panel
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            used = set(re.findall(r"\$(\w+)", target["expr"])) - {"__rate_interval", "__interval"}
            assert used <= variables.keys(), (
                f"{panel['title']}: undefined variables {used - variables.keys()}"
            )
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_every_query_and_rule_uses_metrics_that_exist() -> None:
    known = operator_metric_names() | TF_SERVING | PROCESS
    recorded = {r["record"] for r in all_rules() if "record" in r}
    exprs = dashboard_queries() + [(r.get("alert") or r["record"], r["expr"]) for r in all_rules()]
    for where, expr in exprs:
        unknown = set(METRIC.findall(expr)) - known
        assert not unknown, f"{where}: no such metric {unknown}"
        assert set(RECORDED.findall(expr)) <= recorded, f"{where}: an undefined recording rule"
    # The per-ModelDeployment Ready series the NotReady alert needs is really exported.
    assert "modelserve_modeldeployment_ready" in operator_metric_names()


def test_every_alert_is_actionable_and_documented() -> None:
    doc = DOC.read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", doc, re.M)
    }
    alerts = [r for r in all_rules() if "alert" in r]
    assert {a["alert"] for a in alerts} >= {
        "ModelServeOperatorDown",
        "ModelServeOperatorStalled",
        "ModelServeReconcileErrors",
        "ModelDeploymentNotReady",
        "ModelServeModelErrorRate",
        "ModelServeModelLatencyHigh",
        "ModelServeSyncDegraded",
    }
    for alert in alerts:
        assert alert["labels"]["severity"] in ("critical", "warning", "info"), alert["alert"]
        assert alert.get("for"), f"{alert['alert']} fires on a single evaluation"
        for key in ("summary", "description", "runbook_url"):
            assert alert["annotations"].get(key), f"{alert['alert']}: no {key}"
        assert f"`{alert['alert']}`" in doc, f"{alert['alert']} is not in docs/observability.md"
        url = alert["annotations"]["runbook_url"]
        page, _, anchor = url.rpartition("/")[2].partition("#")
        assert (REPO / "docs" / page).is_file(), url
        if page == DOC.name and anchor:
            assert anchor in anchors, f"{url}: no such heading"
