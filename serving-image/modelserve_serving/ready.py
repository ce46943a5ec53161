"""`modelserve-serving ready`: the readiness probe. Ready means every version the policy serves is
AVAILABLE in TF Serving, not merely that a port is open.

The policy comes from the mounted model config; for `latest` and `all` the served versions are the
numeric folders under the model's base path (what TF Serving itself polls). TF Serving's REST model
status API (`GET /v1/models/<name>`) tells each version's state.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from modelserve import contract

from . import layout, modelconfig
from .modelconfig import ModelConfig

AVAILABLE = "AVAILABLE"


@dataclass(frozen=True)
class ReadySettings:
    config_dir: Path
    host: str = "127.0.0.1"
    port: int = contract.REST_PORT
    timeout_seconds: float = 2.0


@dataclass(frozen=True)
class Verdict:
    ready: bool
    lines: list[str]


def _status(settings: ReadySettings, name: str) -> tuple[dict[str, Any] | None, str]:
    """The model status JSON, or None and why it could not be had."""
    url = f"http://{settings.host}:{settings.port}/v1/models/{quote(name, safe='')}"
    try:
        with urllib.request.urlopen(url, timeout=settings.timeout_seconds) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as exc:
        # TF Serving answers 404 with {"error": "..."} until it has seen the model at all.
        detail = exc.read().decode("utf-8", "replace")
        with contextlib.suppress(ValueError, AttributeError):
            detail = json.loads(detail).get("error", detail)
        return None, f"TF Serving answered HTTP {exc.code}: {detail.strip()}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"TF Serving REST API at {settings.host}:{settings.port} not reachable: {reason}"
    except ValueError as exc:
        return None, f"TF Serving answered invalid JSON: {exc}"
    if not isinstance(body, dict):
        return None, "TF Serving answered an unexpected JSON document"
    return body, ""


def _describe(entry: dict[str, Any]) -> str:
    state = str(entry.get("state", "UNKNOWN"))
    status = entry.get("status") or {}
    code, message = status.get("error_code", "OK"), status.get("error_message", "")
    if code not in ("OK", 0, "0") or message:
        return f"{state} ({code}: {message})" if message else f"{state} ({code})"
    return state


def check_model(model: ModelConfig, settings: ReadySettings) -> tuple[bool, str]:
    body, problem = _status(settings, model.name)
    if body is None:
        return False, f"model {model.name}: not ready: {problem}"
    states = {
        str(entry.get("version")): entry
        for entry in body.get("model_version_status") or []
        if isinstance(entry, dict)
    }
    base = Path(model.base_path)
    local = model.base_path.startswith("/")
    if model.policy.kind != modelconfig.SPECIFIC and not local:
        # A remote base path cannot be listed here: trust what TF Serving reports.
        wanted = sorted(int(v) for v in states if v.isdigit())
    else:
        wanted = model.policy.served(layout.version_dirs(base) if local else [])
    if not wanted:
        return False, f"model {model.name}: not ready: no version folders under {model.base_path}"
    problems = []
    for version in wanted:
        entry = states.get(str(version))
        if entry is None:
            problems.append(f"version {version}: not reported by TF Serving yet")
        elif entry.get("state") != AVAILABLE:
            problems.append(f"version {version}: {_describe(entry)}")
    served = ", ".join(str(v) for v in wanted)
    if problems:
        return False, f"model {model.name}: not ready: " + "; ".join(problems)
    return True, f"model {model.name}: version(s) {served} AVAILABLE"


def check(settings: ReadySettings) -> Verdict:
    models = modelconfig.load(settings.config_dir / contract.MODEL_CONFIG_FILE)
    if not models:
        return Verdict(False, ["the model config lists no models"])
    results = [check_model(m, settings) for m in models]
    return Verdict(all(ok for ok, _ in results), [line for _, line in results])
