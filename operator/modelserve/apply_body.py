"""The bytes of a server-side apply request (pure)."""

from __future__ import annotations

import json
import re
from typing import Any, Final

# JSON escapes a character beyond the BMP as a surrogate pair (\ud83d\ude00), which the API server's
# YAML decoder of apply patches refuses ("invalid Unicode character escape"); YAML's own 8-digit
# escape says the same. The lookbehind skips an escaped backslash followed by literal "ud83d".
_SURROGATE_PAIR: Final = re.compile(r"(?<!\\)((?:\\\\)*)\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def _astral(match: re.Match[str]) -> str:
    high, low = int(match.group(2), 16), int(match.group(3), 16)
    return f"{match.group(1)}\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08x}"


def apply_body(manifest: dict[str, Any]) -> bytes:
    """A server-side apply body: JSON (which is YAML), with every non-ASCII character escaped in a form
    the YAML decoder accepts, so emoji in an annotation or env value never fail an apply (found by
    the hypothesis tests). DEL is escaped too: YAML forbids it raw."""
    text = json.dumps(manifest, ensure_ascii=True, separators=(",", ":")).replace("\x7f", "\\u007f")
    return _SURROGATE_PAIR.sub(_astral, text).encode("ascii")
