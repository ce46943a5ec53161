"""Credential lookup: mounted Secret files first, environment second; S3 addressing defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_kit import write_files

from modelserve_serving.credentials import Credentials, gcs_options, http_headers, s3_options
from modelserve_serving.errors import UsageError

pytestmark = pytest.mark.unit


def test_files_win_over_environment_and_trailing_newlines_are_dropped(tmp_path: Path) -> None:
    write_files(tmp_path, {"AWS_ACCESS_KEY_ID": b"from-file\n", "AWS_SECRET_ACCESS_KEY": b"s\n"})
    creds = Credentials(tmp_path, {"AWS_ACCESS_KEY_ID": "from-env", "AWS_REGION": "eu-west-3"})
    opts = s3_options(creds)
    assert (opts.key, opts.secret, opts.region) == ("from-file", "s", "eu-west-3")
    assert opts.addressing_style == "auto"  # AWS itself: let botocore choose


def test_custom_endpoint_defaults_to_path_style(tmp_path: Path) -> None:
    opts = s3_options(Credentials(None, {"AWS_ENDPOINT_URL": "http://minio:9000"}))
    assert opts.addressing_style == "path"
    env = {"AWS_ENDPOINT_URL": "http://x", "AWS_S3_ADDRESSING_STYLE": "virtual"}
    virtual = s3_options(Credentials(None, env))
    assert virtual.addressing_style == "virtual"
    with pytest.raises(UsageError, match="AWS_S3_ADDRESSING_STYLE"):
        s3_options(Credentials(None, {"AWS_S3_ADDRESSING_STYLE": "sideways"}))


def test_half_a_key_pair_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="need both"):
        s3_options(Credentials(None, {"AWS_ACCESS_KEY_ID": "k"}))


def test_no_credentials_means_the_sdk_default_chain(tmp_path: Path) -> None:
    opts = s3_options(Credentials(tmp_path / "missing", {}))
    assert (opts.key, opts.secret, opts.endpoint_url) == (None, None, None)
    assert gcs_options(Credentials(None, {})).token == "google_default"  # workload identity
    assert http_headers(Credentials(None, {})) == {}


def test_gcs_service_account_file_and_emulator(tmp_path: Path) -> None:
    write_files(tmp_path, {"service-account.json": b"{}"})
    assert gcs_options(Credentials(tmp_path, {})).token == str(tmp_path / "service-account.json")
    emulator = gcs_options(Credentials(None, {"STORAGE_EMULATOR_HOST": "127.0.0.1:4443"}))
    assert (emulator.token, emulator.endpoint_url) == ("anon", "http://127.0.0.1:4443")
