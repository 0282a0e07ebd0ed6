"""Settings read from the environment, and the messages bad values give."""

from __future__ import annotations

import pytest

from instrumentation import (
    BuildingDirectoryClient,
    ConfigurationError,
    DisabledMetrics,
    Settings,
)


def test_from_env_fills_documented_defaults() -> None:
    """With nothing set every field has its documented default."""
    settings = Settings.from_env({})

    assert settings.cache_ttl == 300
    assert settings.tenant_id == "00000000-0000-0000-0000-000000000001"
    assert settings.redis_url is None
    assert settings.near_cache_size == 0


def test_from_env_reads_values() -> None:
    """Set variables are parsed into their fields."""
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://127.0.0.1:6390/0",
            "CACHE_REQUEST_TTL": "60",
            "CACHE_NEAR_SIZE": "128",
            "BUILDING_DIRECTORY_URL": "http://127.0.0.1:8081",
        }
    )

    assert settings.redis_url == "redis://127.0.0.1:6390/0"
    assert settings.cache_ttl == 60.0
    assert settings.near_cache_size == 128
    assert settings.base_url == "http://127.0.0.1:8081"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        pytest.param(
            {"CACHE_REQUEST_TTL": "five"},
            "CACHE_REQUEST_TTL must be a number of seconds, got 'five'",
            id="ttl-not-a-number",
        ),
        pytest.param(
            {"CACHE_NEAR_SIZE": "1.5"},
            "CACHE_NEAR_SIZE must be an integer, got '1.5'",
            id="size-not-an-integer",
        ),
        pytest.param(
            {"CACHE_REQUEST_TTL": "0"},
            "cache_ttl (CACHE_REQUEST_TTL) must be > 0",
            id="ttl-zero",
        ),
        pytest.param(
            {"REDIS_URL": "http://127.0.0.1:6379"},
            "REDIS_URL must start with one of redis://",
            id="redis-scheme",
        ),
        pytest.param(
            {"BUILDING_DIRECTORY_URL": "ftp://127.0.0.1"},
            "BUILDING_DIRECTORY_URL must start with one of http://",
            id="directory-scheme",
        ),
        pytest.param(
            {"MANAGEMENT_COMPANY_ID": "acme"},
            "MANAGEMENT_COMPANY_ID must be a UUID, got 'acme'",
            id="tenant",
        ),
        pytest.param(
            {"CACHE_NEAR_TTL": "600"},
            "near_cache_ttl (CACHE_NEAR_TTL) (600.0) must not exceed "
            "cache_ttl (CACHE_REQUEST_TTL) (300.0)",
            id="near-ttl-above-ttl",
        ),
        pytest.param(
            {"BUILDING_DIRECTORY_RETRIES": "11"},
            "retries (BUILDING_DIRECTORY_RETRIES) must be 0 to 10, got 11",
            id="retries",
        ),
        pytest.param(
            {"REDIS_TIMEOUT": "nan"},
            "redis_timeout (REDIS_TIMEOUT) must be finite, got nan",
            id="timeout-nan",
        ),
        pytest.param(
            {"CACHE_NEGATIVE_TTL": "inf"},
            "negative_ttl (CACHE_NEGATIVE_TTL) must be finite, got inf",
            id="ttl-infinite",
        ),
        pytest.param(
            {"CACHE_NEAR_SIZE": "-1"},
            "near_cache_size (CACHE_NEAR_SIZE) must be >= 0, got -1",
            id="negative-size",
        ),
    ],
)
def test_from_env_rejects_bad_values_with_a_clear_message(
    environ: dict[str, str], message: str
) -> None:
    """A bad value raises ConfigurationError naming the variable and the value."""
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(environ)

    assert message in str(raised.value)


def test_client_requires_a_base_url() -> None:
    """Without BUILDING_DIRECTORY_URL the client cannot be built."""
    with pytest.raises(ConfigurationError, match="BUILDING_DIRECTORY_URL"):
        BuildingDirectoryClient(Settings(), metrics=DisabledMetrics())
