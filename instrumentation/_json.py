"""Strict JSON: what the client reads from the upstream and from Redis.

Python's :func:`json.loads` accepts more than JSON: ``NaN`` and ``Infinity``,
escaped lone surrogates (``"\\ud800"``), and nesting deep enough to raise
:class:`RecursionError`. A building holding any of them cannot be written back
as JSON or UTF-8 by the service that uses it, so it is refused where it is
read, as an unreadable body (a counted ``parse_error``), not discovered later
as a crash.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

_HIGH: Final = r"\\u[dD][89abAB][0-9a-fA-F]{2}"
_LOW: Final = r"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
#: An escaped surrogate half without its partner. Pairs (characters beyond the
#: BMP, which ``json.dumps`` escapes) do not match, so valid text costs one
#: scan; a match is confirmed below (an escaped backslash can mimic one).
_LONE: Final = rf"{_HIGH}(?!{_LOW})|(?<!{_HIGH}){_LOW}"
_LONE_SURROGATE: Final = re.compile(_LONE.encode())
_LONE_SURROGATE_TEXT: Final = re.compile(_LONE)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


#: One decoder for every call: ``json.loads`` with any option builds a new one.
_DECODER: Final = json.JSONDecoder(parse_constant=_refuse_constant)


def loads(raw: bytes | str) -> Any:
    """Parse strict JSON.

    Raises:
        ValueError: Not JSON or not UTF-8; ``NaN`` or ``Infinity``; a lone
            surrogate; nesting too deep to parse.
    """
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        value = _DECODER.decode(text)
    except RecursionError:
        raise ValueError("the JSON nests too deep") from None
    if isinstance(raw, bytes):
        suspicious = _LONE_SURROGATE.search(raw) is not None
    else:
        suspicious = _LONE_SURROGATE_TEXT.search(raw) is not None
    if suspicious:
        try:  # a lone half cannot be encoded
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise ValueError("the JSON holds a lone UTF-16 surrogate") from None
    return value
