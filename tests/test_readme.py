"""The README's usage example runs as written, against real servers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from loadtests import simulator
from loadtests.bench import simulator as run_simulator
from loadtests.servers import RedisServer

README = Path(__file__).resolve().parents[1] / "README.md"


def _usage_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    return next(block for block in blocks if "BuildingDirectoryClient" in block)


async def test_readme_example_creates_an_enriched_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ten-line example enriches a request with the building's fields."""
    building = next(
        b
        for b in simulator.dataset()
        if b["is_active"] and b["id"] in simulator.ids_by_shape()["nested"]
    )
    namespace: dict[str, Any] = {}
    exec(compile(_usage_example(), str(README), "exec"), namespace)

    with (
        RedisServer(tmp_path / "redis") as redis_server,
        run_simulator(tmp_path, latency_ms=0) as directory_url,
    ):
        monkeypatch.setenv("REDIS_URL", redis_server.url)
        monkeypatch.setenv("BUILDING_DIRECTORY_URL", directory_url)
        payload = await namespace["main"](building["id"])

    assert payload["building_id"] == building["id"]
    assert payload["building_name"] == building["name"]
    assert payload["building_coordinates"] is not None
