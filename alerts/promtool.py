"""Run ``promtool`` and ``amtool`` and turn what they print into exceptions.

No Python package wraps these tools, so this small module does: it finds the
command on ``PATH`` (naming the Debian package that provides it when it is
missing), runs it with a time limit, and on failure raises
:class:`~alerts.errors.CheckFailedError` whose ``messages`` hold one entry per
problem, each naming its file.

promtool writes its file headers (``Checking x.yml``, ``Unit Testing:  x.yml``)
to stdout and the problems to stderr. Both are read from one pipe, so each
problem stays after the header of its file.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from alerts.errors import CheckFailedError, ToolMissingError

logger = logging.getLogger(__name__)

#: The Debian packages providing each tool.
PACKAGES: Final = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}

#: How long one tool run may take; they take tens of milliseconds.
TIMEOUT_SECONDS: Final = 60.0

_HEADER = re.compile(
    r"^(?:Checking|Unit Testing:)\s+'?(?P<file>.+?)'?(?:\s+(?:SUCCESS|FAILED).*)?$"
)


def find_tool(name: str) -> str:
    """Return the path of ``promtool`` or ``amtool``.

    Raises:
        ToolMissingError: Not on ``PATH``; the message names the package.
    """
    path = shutil.which(name)
    if path is None:
        package = PACKAGES.get(name, name)
        raise ToolMissingError(
            f"{name!r} not found on PATH; install the Debian package {package!r} "
            f"('apt-get install -y --no-install-recommends {package}')"
        )
    return path


def check_rules(*paths: Path) -> None:
    """Run ``promtool check rules`` on rule files.

    Raises:
        ToolMissingError: promtool is not installed.
        CheckFailedError: A file does not parse or holds an invalid rule.
    """
    _run("promtool", ["check", "rules", *map(str, paths)])


def test_rules(*paths: Path) -> None:
    """Run ``promtool test rules`` on unit-test files.

    Each test file names its rule files relative to its own folder.

    Raises:
        ToolMissingError: promtool is not installed.
        CheckFailedError: A test fails, or a test or rule file is invalid.
    """
    _run("promtool", ["test", "rules", *map(str, paths)])


# pytest would collect a module-level function named test_*; it is no test.
test_rules.__test__ = False  # type: ignore[attr-defined]


def check_alertmanager_config(path: Path) -> None:
    """Run ``amtool check-config`` on an Alertmanager configuration.

    Raises:
        ToolMissingError: amtool is not installed.
        CheckFailedError: The configuration is invalid.
    """
    _run("amtool", ["check-config", str(path)])


def route_receivers(config: Path, labels: dict[str, str]) -> list[str]:
    """Return the receivers an alert with ``labels`` is routed to.

    Runs ``amtool config routes test`` against the file only: no Alertmanager
    is contacted.

    Raises:
        ToolMissingError: amtool is not installed.
        CheckFailedError: The configuration is invalid.
    """
    output = _run(
        "amtool",
        [
            "config",
            "routes",
            "test",
            "--no-version-check",
            f"--config.file={config}",
            *(f"{key}={value}" for key, value in sorted(labels.items())),
        ],
        merge=False,
    )
    return [name for name in output.strip().split(",") if name]


def _run(tool: str, arguments: Sequence[str], *, merge: bool = True) -> str:
    """Run a tool; return its output, or raise with its problems.

    With ``merge`` false, stderr (warnings) is kept out of the returned text
    and joins the messages only on failure.
    """
    argv = [find_tool(tool), *arguments]
    command = " ".join([tool, *arguments[:2]])
    try:
        result = subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge else subprocess.PIPE,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise CheckFailedError(
            command, (f"no answer within {TIMEOUT_SECONDS:.0f} s",)
        ) from error
    logger.debug("%s exited %d", command, result.returncode)
    if result.returncode != 0:
        output = result.stdout + (result.stderr or "")
        raise CheckFailedError(command, parse_failures(output))
    return result.stdout


def parse_failures(output: str) -> tuple[str, ...]:
    """Split a tool's output into one message per problem, each naming its file.

    Problems are the paragraphs after a ``FAILED`` marker; output with no
    marker (a usage error) becomes one message of its own.
    """
    messages: list[str] = []
    current_file = ""
    failing = False
    paragraph: list[str] = []

    def flush() -> None:
        if failing and paragraph:
            text = "\n".join(paragraph).strip()
            if text:
                named = not current_file or text.startswith(current_file)
                prefix = "" if named else f"{current_file}: "
                messages.append(prefix + _dedent(text))
        paragraph.clear()

    for line in output.splitlines():
        header = _HEADER.match(line)
        if header:
            flush()
            current_file = header["file"]
            failing = "FAILED" in line
            rest = line.split("FAILED:", 1)[1].strip() if "FAILED:" in line else ""
            if rest:
                paragraph.append(rest)
            continue
        if line.strip() == "FAILED:":
            flush()
            failing = True
            continue
        if not line.strip():
            flush()
            continue
        paragraph.append(line)
    flush()
    if not messages:
        text = output.strip()
        messages.append(text or "failed without output")
    return tuple(messages)


def _dedent(text: str) -> str:
    lines = text.splitlines()
    indent = min(
        (len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()),
        default=0,
    )
    rest = (line[indent:].rstrip() for line in lines[1:])
    return "\n".join([lines[0].strip(), *rest])
