"""Storage credentials, from the mounted `credentialsSecret` first and the environment second.

The Secret is mounted (init container only) at MODELSERVE_CREDENTIALS_DIR; each key is a file. The
same names are accepted as environment variables so users can also wire credentials with `env`
or workload identity. File names are the conventional environment variable names of each SDK, so a
Secret made for another tool usually works unchanged (see serving-image/README.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

# S3 and S3-compatible stores.
AWS_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
AWS_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
AWS_SESSION_TOKEN = "AWS_SESSION_TOKEN"
AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"
AWS_REGION = "AWS_REGION"
AWS_S3_ADDRESSING_STYLE = "AWS_S3_ADDRESSING_STYLE"  # path | virtual | auto
# Google Cloud Storage.
GCS_SERVICE_ACCOUNT_FILE = "service-account.json"
GOOGLE_APPLICATION_CREDENTIALS = "GOOGLE_APPLICATION_CREDENTIALS"
STORAGE_EMULATOR_HOST = "STORAGE_EMULATOR_HOST"
# HTTP(S) archives: the whole Authorization header value, e.g. "Bearer <token>" or "Basic <b64>".
HTTP_AUTHORIZATION = "HTTP_AUTHORIZATION"

ADDRESSING_STYLES = ("path", "virtual", "auto")


class Credentials:
    """Looks a key up in the mounted directory, then in the environment."""

    def __init__(self, directory: Path | None, environ: Mapping[str, str] | None = None) -> None:
        self._dir = directory if directory is not None and directory.is_dir() else None
        self._env = os.environ if environ is None else environ

    def file(self, name: str) -> Path | None:
        if self._dir is None:
            return None
        path = self._dir / name
        return path if path.is_file() else None

    def get(self, name: str) -> str | None:
        path = self.file(name)
        if path is not None:
            # Secrets written by hand often end in a newline; it is never part of a key.
            return path.read_text(encoding="utf-8").strip() or None
        value = self._env.get(name, "").strip()
        return value or None


@dataclass(frozen=True)
class S3Options:
    key: str | None
    secret: str | None
    token: str | None
    endpoint_url: str | None
    region: str | None
    addressing_style: str


def s3_options(creds: Credentials) -> S3Options:
    key, secret = creds.get(AWS_ACCESS_KEY_ID), creds.get(AWS_SECRET_ACCESS_KEY)
    if (key is None) != (secret is None):
        raise UsageError(f"S3 credentials need both {AWS_ACCESS_KEY_ID} and {AWS_SECRET_ACCESS_KEY}")
    endpoint = creds.get(AWS_ENDPOINT_URL)
    # S3-compatible stores (MinIO, Ceph, ...) mostly need path-style; AWS itself prefers virtual.
    style = creds.get(AWS_S3_ADDRESSING_STYLE) or ("path" if endpoint else "auto")
    if style not in ADDRESSING_STYLES:
        allowed = ", ".join(ADDRESSING_STYLES)
        raise UsageError(f"{AWS_S3_ADDRESSING_STYLE} must be one of {allowed}, not {style!r}")
    return S3Options(
        key=key,
        secret=secret,
        token=creds.get(AWS_SESSION_TOKEN),
        endpoint_url=endpoint,
        region=creds.get(AWS_REGION) or creds.get("AWS_DEFAULT_REGION"),
        addressing_style=style,
    )


@dataclass(frozen=True)
class GcsOptions:
    # A path to a service account key file, "anon" (emulators) or "google_default" (workload identity).
    token: str
    endpoint_url: str | None


def gcs_options(creds: Credentials) -> GcsOptions:
    emulator = creds.get(STORAGE_EMULATOR_HOST)
    endpoint = None
    if emulator:
        endpoint = emulator if "://" in emulator else f"http://{emulator}"
    key_file = creds.file(GCS_SERVICE_ACCOUNT_FILE)
    if key_file is not None:
        token = str(key_file)
    elif creds.get(GOOGLE_APPLICATION_CREDENTIALS):
        token = str(creds.get(GOOGLE_APPLICATION_CREDENTIALS))
    else:
        token = "anon" if endpoint else "google_default"
    return GcsOptions(token=token, endpoint_url=endpoint)


def http_headers(creds: Credentials) -> dict[str, str]:
    auth = creds.get(HTTP_AUTHORIZATION)
    return {"Authorization": auth} if auth else {}
