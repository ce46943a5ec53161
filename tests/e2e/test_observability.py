"""The alert rules and dashboard queries through promtool (built from the Prometheus Go module by
hack/cluster/build.sh): every rule and every dashboard query parses, the alerts' unit tests pass,
and the PrometheusRule the chart renders is accepted by the real PrometheusRule CRD."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from e2e_kit import CHART, E2E, documents, ensure_prometheus_rule_crd, fresh_namespaces, helm, require_binary

from kit import Cluster

RULES = CHART / "files" / "prometheus-rules.yaml"
RULES_TEST = E2E / "fixtures" / "rules-test.yaml"
DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))


def promtool(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    binary = require_binary(cluster, "promtool")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_rules(cluster: Cluster) -> None:
    proc = promtool(cluster, "check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    count = len([r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]])
    assert f"SUCCESS: {count} rules found" in proc.stdout


def test_promtool_test_rules(cluster: Cluster) -> None:
    proc = promtool(cluster, "test", "rules", str(RULES_TEST))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout
    tested = {
        t["alertname"]
        for case in yaml.safe_load(RULES_TEST.read_text())["tests"]
        for t in case.get("alert_rule_test", [])
    }
    alerts = {
        r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r
    }
    assert tested == alerts, f"alerts without a unit test: {alerts - tested}"


def _as_promql(expr: str) -> str:
    """A dashboard query with Grafana's variables replaced by what they expand to at most."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    return re.sub(r"\$\{?(\w+)\}?", ".*", expr)


def test_every_dashboard_query_is_valid_promql(cluster: Cluster, tmp_path: Path) -> None:
    rules: list[dict[str, Any]] = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        panels = [p for top in dashboard["panels"] for p in (top, *(top.get("panels") or []))]
        for panel in panels:
            for target in panel.get("targets") or []:
                rules.append({"record": f"dashboard:query{len(rules)}", "expr": _as_promql(target["expr"])})
    assert len(rules) > 20
    file = tmp_path / "dashboard-queries.yaml"
    file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    proc = promtool(cluster, "check", "rules", str(file))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rendered_prometheus_rule_is_accepted_by_its_crd(cluster: Cluster) -> None:
    ensure_prometheus_rule_crd(cluster)
    with fresh_namespaces(cluster, "e2e-rules") as (namespace,):
        manifest = helm(
            cluster,
            "template",
            "rel",
            str(CHART),
            "-n",
            namespace,
            "--set",
            "prometheusRule.enabled=true",
            "--show-only",
            "templates/prometheusrule.yaml",
        ).stdout
        (rule,) = documents(manifest)
        assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"], "the rule file as is"
        proc = cluster.kubectl(
            "apply", "--dry-run=server", "--validate=strict", "-f", "-", input=manifest, check=False
        )
        assert proc.returncode == 0, proc.stderr
