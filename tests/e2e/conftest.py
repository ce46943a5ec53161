"""Keeps the e2e tests from changing what later suites' operators log in as.

The Kubernetes client reads KUBECONFIG once, when `kubernetes.config` is first imported, and the
operator's client (modelserve.kube.load_api_client) and kopf's login use that import-time default.
The integration suite sets KUBECONFIG before its first import; these tests run earlier and may import
the client first (or point it at a ServiceAccount token). After each test the default is put back to
what the integration suite would have had: the test cluster's kubeconfig.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from kit import CLUSTER_SCRIPT


@functools.cache
def _test_cluster_kubeconfig() -> str:
    explicit = os.environ.get("MODELSERVE_TEST_KUBECONFIG")
    if explicit:
        return explicit
    return subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), "kubeconfig"], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(autouse=True)
def _restore_kube_config_default() -> Iterator[None]:
    yield
    kube_config = sys.modules.get("kubernetes.config.kube_config")
    if kube_config is not None:
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = os.environ.get("KUBECONFIG") or _test_cluster_kubeconfig()
