"""The Prometheus Operator ServiceMonitor scraping TF Serving's metrics and the sync sidecar's (pure)."""

from __future__ import annotations

from typing import Any

from modelserve import api, contract, naming
from modelserve.builders import model_source
from modelserve.settings import Settings


def build_service_monitor(md: api.ModelDeployment, settings: Settings) -> dict[str, Any] | None:
    """None (absent) unless spec.monitoring.enabled.

    The user's labels (for a Prometheus serviceMonitorSelector) are added to ours, but cannot replace
    ours: the operator and tools find children by them.
    """
    del settings  # same signature as every builder
    monitoring = md.spec.monitoring
    if not monitoring.enabled:
        return None
    endpoints = [(contract.REST_PORT_NAME, contract.METRICS_PATH)]
    if model_source.sync_sidecar(md):
        # The sync sidecar's own state (modelserve_sync_*): a store outage shows here, not in Ready.
        endpoints.append((contract.SYNC_METRICS_PORT_NAME, contract.SYNC_METRICS_PATH))
    metadata = naming.child_metadata(md, naming.service_monitor_name(md))
    metadata["labels"] = {**(monitoring.labels or {}), **naming.child_labels(md)}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": naming.selector_labels(md)},
            "namespaceSelector": {"matchNames": [md.namespace]},
            "endpoints": [
                {
                    "port": port,
                    "path": path,
                    "scheme": "http",
                    "interval": monitoring.interval,
                    "scrapeTimeout": monitoring.scrape_timeout,
                }
                for port, path in endpoints
            ],
        },
    }
