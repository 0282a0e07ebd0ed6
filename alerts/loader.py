"""Put a rule file live in a running Prometheus, or leave the old one running.

:func:`load_rules` follows these steps, each a guard for the next:

1. write the new text to a temporary file in the rules folder, named so that
   Prometheus's ``*.yml`` pattern does not pick it up;
2. validate it with ``promtool check rules``: a file that fails never
   replaces the live one;
3. copy the live file (if any) to ``<name>.bak``, kept afterwards for a
   rollback by hand, then ``os.replace`` the new file into place (atomic on
   one filesystem: Prometheus reads either the old file or the new one);
4. ``POST /-/reload`` (Prometheus must run with ``--web.enable-lifecycle``);
   on a refusal or no answer, put the previous file back and reload again;
5. poll ``/api/v1/rules`` until the file's groups show with the file's rules,
   labels, annotations and ``for:`` durations; on a timeout, put the previous
   file back and reload again.

If :func:`load_rules` raises, the previous file is in place again (or no file,
if there was none). Only the URL given is contacted; proxies from the
environment are ignored.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from alerts.config import duration_seconds
from alerts.errors import CheckFailedError, ReloadError, RulesNotLoadedError
from alerts.promtool import check_rules
from alerts.rules import RULES_FILENAME

logger = logging.getLogger(__name__)

#: What a rule group looks like for the comparison with ``/api/v1/rules``.
_RuleKey = tuple[
    str, str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...], float
]


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What :func:`load_rules` did.

    Attributes:
        path: The live rule file.
        backup: The copy of the previous file, or None if there was none.
        groups: The names of the groups Prometheus now shows from the file.
        seconds: How long the whole load took.
        shown_from: The paths Prometheus names as the groups' file, when
            that is not ``path`` (Prometheus sees the folder under another
            path, as in a container, or reads the same rules elsewhere).
    """

    path: Path
    backup: Path | None
    groups: tuple[str, ...]
    seconds: float
    shown_from: tuple[str, ...] = ()


def load_rules(
    prometheus_url: str,
    rules_dir: Path,
    text: str,
    *,
    filename: str = RULES_FILENAME,
    timeout: float = 30.0,
    validate: Callable[[Path], None] = check_rules,
    transport: httpx.BaseTransport | None = None,
) -> LoadReport:
    """Validate a rule file, put it live atomically, reload Prometheus, confirm.

    Args:
        prometheus_url: The Prometheus to reload, e.g. ``http://127.0.0.1:9090``.
        rules_dir: The folder whose ``*.yml`` files that Prometheus loads.
        text: The rule file's content.
        filename: The live file's name in ``rules_dir``.
        timeout: Seconds to wait for each HTTP answer and for the new groups.
        validate: Checks a file, raising if it is invalid; promtool by default.
        transport: An httpx transport, for tests of error paths.

    Returns:
        What was loaded, where, and the backup of the previous file.

    Raises:
        CheckFailedError: The file is invalid; nothing was replaced.
        ToolMissingError: promtool is not installed; nothing was replaced.
        ReloadError: Prometheus refused the reload or did not answer; the
            previous file is back in place.
        RulesNotLoadedError: Prometheus does not show the new groups within
            ``timeout``; the previous file is back in place.
    """
    started = time.monotonic()
    rules_dir.mkdir(parents=True, exist_ok=True)
    live = rules_dir / filename
    backup = rules_dir / f"{filename}.bak"
    had_previous = live.exists()

    candidate = _write_candidate(rules_dir, filename, text)
    # mkstemp makes the file 0600; Prometheus may run as another user.
    if had_previous:
        shutil.copymode(live, candidate)
    else:
        candidate.chmod(0o644)
    try:
        try:
            validate(candidate)
        except CheckFailedError as error:
            # Name the file as the user knows it, not by its temporary name.
            messages = tuple(
                m.replace(str(candidate), f"new {filename}") for m in error.messages
            )
            raise CheckFailedError(error.command, messages) from error
        expected = _expected_groups(text)
        if had_previous:
            shutil.copy2(live, backup)
        os.replace(candidate, live)
    finally:
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()
    logger.info("replaced %s; reloading %s", live, prometheus_url)

    with httpx.Client(
        base_url=prometheus_url.rstrip("/"),
        timeout=timeout,
        transport=transport,
        trust_env=False,
    ) as client:
        try:
            _reload(client)
            sources = _wait_for_groups(client, expected, filename, started + timeout)
        except (ReloadError, RulesNotLoadedError) as error:
            restored = _restore(live, backup if had_previous else None)
            again = _reload_quietly(client)
            raise type(error)(f"{error}; {restored}{again}") from error

    return LoadReport(
        path=live,
        backup=backup if had_previous else None,
        groups=tuple(expected),
        seconds=time.monotonic() - started,
        shown_from=tuple(sorted(sources - {str(live), str(live.resolve())})),
    )


def _write_candidate(rules_dir: Path, filename: str, text: str) -> Path:
    # '.tmp' keeps the candidate out of any '*.yml' rule_files pattern, in
    # case someone else reloads Prometheus while it is being validated.
    handle, name = tempfile.mkstemp(
        dir=rules_dir, prefix=f".{filename}.", suffix=".tmp"
    )
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)
    return Path(name)


def _expected_groups(text: str) -> dict[str, list[_RuleKey]]:
    """Read what ``/api/v1/rules`` should show for each group of the file."""
    groups: dict[str, list[_RuleKey]] = {}
    try:
        data = yaml.safe_load(text) or {}
        for group in data.get("groups") or []:
            groups[group["name"]] = [_file_rule_key(rule) for rule in group["rules"]]
    except (yaml.YAMLError, AttributeError, KeyError, TypeError) as error:
        raise CheckFailedError("read rule groups", (repr(error),)) from error
    return groups


def _file_rule_key(rule: dict[str, Any]) -> _RuleKey:
    if "alert" in rule:
        return (
            "alerting",
            rule["alert"],
            _pairs(rule.get("labels")),
            _pairs(rule.get("annotations")),
            duration_seconds(str(rule.get("for", "0s"))),
        )
    return ("recording", rule["record"], _pairs(rule.get("labels")), (), 0.0)


def _api_rule_key(rule: dict[str, Any]) -> _RuleKey:
    return (
        rule["type"],
        rule["name"],
        _pairs(rule.get("labels")),
        _pairs(rule.get("annotations")),
        float(rule.get("duration", 0)),
    )


def _pairs(mapping: dict[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in (mapping or {}).items()))


def _reload(client: httpx.Client) -> None:
    try:
        response = client.post("/-/reload")
    except httpx.HTTPError as error:
        raise ReloadError(
            f"cannot reach {client.base_url} to reload: {error}"
        ) from error
    if not response.is_success:
        hint = ""
        if response.status_code == 403:
            hint = " (start Prometheus with --web.enable-lifecycle)"
        raise ReloadError(
            f"Prometheus refused the reload: HTTP {response.status_code}{hint}: "
            f"{response.text.strip()}"
        )


def _reload_quietly(client: httpx.Client) -> str:
    try:
        _reload(client)
    except ReloadError as error:
        logger.warning("reload after restoring the previous rules failed: %s", error)
        return f"; reloading it failed too: {error}"
    return " and Prometheus reloaded it"


def _restore(live: Path, backup: Path | None) -> str:
    if backup is None:
        live.unlink(missing_ok=True)
        logger.warning("removed %s: there was no previous file", live)
        return f"removed {live} (there was no previous file)"
    # Copy, then replace: the backup stays for a later rollback by hand.
    restoring = backup.with_name(f".{backup.name}.restore.tmp")
    shutil.copy2(backup, restoring)
    os.replace(restoring, live)
    logger.warning("restored %s from %s", live, backup)
    return f"restored the previous {live.name}"


def _wait_for_groups(
    client: httpx.Client,
    expected: dict[str, list[_RuleKey]],
    filename: str,
    deadline: float,
) -> set[str]:
    """Wait until Prometheus shows every group; return the files it names."""
    while True:
        missing, sources = _missing_groups(client, expected, filename)
        if not missing:
            return sources
        if time.monotonic() >= deadline:
            raise RulesNotLoadedError(
                f"Prometheus reloaded but does not show {', '.join(missing)} from "
                f"{filename}: is the rules folder one of its rule_files patterns?"
            )
        time.sleep(0.2)


def _missing_groups(
    client: httpx.Client, expected: dict[str, list[_RuleKey]], filename: str
) -> tuple[list[str], set[str]]:
    """Return the expected groups Prometheus does not show as in the file,
    and the file paths it names for those it does show."""
    try:
        response = client.get("/api/v1/rules")
        response.raise_for_status()
        groups = response.json()["data"]["groups"]
    except (httpx.HTTPError, ValueError, KeyError) as error:
        logger.debug("rules API not readable yet: %s", error)
        return sorted(expected), set()
    shown: dict[str, list[_RuleKey]] = {}
    sources: set[str] = set()
    for group in groups:
        file = str(group.get("file", ""))
        if Path(file).name != filename or group["name"] not in expected:
            continue
        shown[group["name"]] = [_api_rule_key(r) for r in group.get("rules", [])]
        sources.add(file)
    missing = [name for name, rules in expected.items() if shown.get(name) != rules]
    return missing, sources
