"""The exceptions raised by the Building Directory client.

Every exception the package raises derives from one root, so a caller can catch
everything with a single ``except`` clause and still tell the cases apart::

    BuildingDirectoryError
    ├── ConfigurationError          a setting is missing or malformed
    ├── InvalidBuildingIdError      the id is not a UUID; nothing was called
    ├── DenormalizationError        the building cannot be copied into a request
    └── UpstreamError               the Building Directory call failed
        ├── UpstreamTimeoutError    no answer within the deadline    (timeout)
        ├── UpstreamHTTPError       an unexpected HTTP status        (http_error)
        ├── UpstreamParseError      the body is not a building       (parse_error)
        └── UpstreamUnknownError    anything else on the way         (unknown)

Third-party exceptions (httpx, redis) are translated where they are caught and
chained with ``raise ... from``. Redis failures are not part of this tree: the
cache degrades to the upstream instead of raising.
"""

from __future__ import annotations

from typing import ClassVar, Literal

ErrorType = Literal["timeout", "http_error", "parse_error", "unknown"]


class BuildingDirectoryError(Exception):
    """Root of every exception raised by this package."""


class ConfigurationError(BuildingDirectoryError, ValueError):
    """A setting is missing or has a value that cannot be used."""


class InvalidBuildingIdError(BuildingDirectoryError, ValueError):
    """A building id is not well formed; it never reached Redis or the network."""

    def __init__(self, building_id: object) -> None:
        self.building_id = building_id
        super().__init__(
            f"building_id must be a UUID such as "
            f"'3f2b8c1e-0d4a-4c5e-9b7a-2e6f1d0c9a8b', got {_shortened(building_id)}"
        )


def _shortened(value: object, limit: int = 80) -> str:
    """Return ``repr(value)``, cut to ``limit`` characters for messages."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 20]}... ({len(text)} characters)"


class ClientClosedError(BuildingDirectoryError, RuntimeError):
    """The client was closed; its pools are gone. Create a new client."""

    def __init__(self) -> None:
        super().__init__(
            "this BuildingDirectoryClient is closed; create a new one (one per "
            "process, opened at start-up and closed at shutdown)"
        )


class DenormalizationError(BuildingDirectoryError, ValueError):
    """A building (or the request) lacks what denormalization needs."""


class UpstreamError(BuildingDirectoryError):
    """The Building Directory could not give an answer.

    Attributes:
        error_type: The value of the ``error_type`` label this error counts as.
    """

    error_type: ClassVar[ErrorType] = "unknown"


class UpstreamTimeoutError(UpstreamError):
    """The Building Directory did not answer within the lookup deadline."""

    error_type: ClassVar[ErrorType] = "timeout"


class UpstreamHTTPError(UpstreamError):
    """The Building Directory answered with a status other than 200 or 404.

    Attributes:
        status_code: The HTTP status of the last attempt.
        retry_after: Seconds its ``Retry-After`` header asked to wait, or None.
    """

    error_type: ClassVar[ErrorType] = "http_error"

    def __init__(
        self, message: str, *, status_code: int, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after


class UpstreamParseError(UpstreamError):
    """The Building Directory answered 200 with a body that is not a building."""

    error_type: ClassVar[ErrorType] = "parse_error"


class UpstreamUnknownError(UpstreamError):
    """The call failed in a way none of the other classes describes."""

    error_type: ClassVar[ErrorType] = "unknown"
