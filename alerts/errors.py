"""The exceptions of the alert rules package.

Everything this package raises derives from one root::

    AlertsError
    ├── ConfigError            a rule configuration (file or value) is invalid
    ├── ToolMissingError       promtool or amtool is not installed
    ├── CheckFailedError       promtool or amtool found problems; ``messages``
    └── LoadError              a rule file could not be made live; the previous
        │                      file is in place again
        ├── ReloadError        Prometheus refused the reload or did not answer
        └── RulesNotLoadedError  Prometheus reloaded but does not show the new
                               groups in ``/api/v1/rules`` in time

A rule file that fails validation during a load raises
:class:`CheckFailedError`: it never replaced the live file.
"""

from __future__ import annotations


class AlertsError(Exception):
    """The root of every exception this package raises."""


class ConfigError(AlertsError):
    """A rule configuration is invalid: an unknown key, a bad value."""


class ToolMissingError(AlertsError):
    """A command-line tool (promtool, amtool) is not on ``PATH``."""


class CheckFailedError(AlertsError):
    """A tool checked a file and found problems.

    Attributes:
        command: What ran, for messages (``promtool check rules``).
        messages: One entry per problem, each naming its file.
    """

    def __init__(self, command: str, messages: tuple[str, ...]) -> None:
        self.command = command
        self.messages = messages
        listed = "\n".join(
            "  " + message.replace("\n", "\n    ") for message in messages
        )
        super().__init__(f"{command} failed:\n{listed}")


class LoadError(AlertsError):
    """A rule file could not be made live; the previous file is back in place."""


class ReloadError(LoadError):
    """Prometheus refused the reload or could not be reached."""


class RulesNotLoadedError(LoadError):
    """Prometheus reloaded but its rules API does not show the new groups."""
