"""A small, strict reader of protobuf text format (stdlib only).

The image must read the operator's `models.config` for the readiness check, but TF Serving's Python
protos depend on the whole `tensorflow` package, far too heavy for a probe. This parser reads the
syntax generically (fields, nested messages, strings, numbers, identifiers, lists, comments) into a
tree; meaning is given by the readers built on it (`modelconfig`). Tests check its reading of sample
configs against TF Serving's own protos.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[fF]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[{}<>\[\]:;,])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\", "a": "\a", "b": "\b",
            "f": "\f", "v": "\v", "?": "?"}


class TextProtoError(ValueError):
    """The text is not valid protobuf text format."""


@dataclass(frozen=True)
class Scalar:
    kind: str  # "string", "number" or "ident" (enum values, true/false)
    text: str


@dataclass
class Message:
    fields: dict[str, list[Scalar | Message]] = field(default_factory=dict)

    def add(self, name: str, value: Scalar | Message) -> None:
        self.fields.setdefault(name, []).append(value)

    def messages(self, name: str) -> list[Message]:
        values = self.fields.get(name, [])
        if any(not isinstance(v, Message) for v in values):
            raise TextProtoError(f"field {name!r} must be a message")
        return [v for v in values if isinstance(v, Message)]

    def message(self, name: str) -> Message | None:
        found = self.messages(name)
        if len(found) > 1:
            raise TextProtoError(f"field {name!r} is given more than once")
        return found[0] if found else None

    def scalars(self, name: str) -> list[Scalar]:
        values = self.fields.get(name, [])
        if any(not isinstance(v, Scalar) for v in values):
            raise TextProtoError(f"field {name!r} must be a value, not a message")
        return [v for v in values if isinstance(v, Scalar)]

    def string(self, name: str, default: str = "") -> str:
        values = self.scalars(name)
        if not values:
            return default
        if len(values) > 1 or values[-1].kind != "string":
            raise TextProtoError(f"field {name!r} must be a single string")
        return values[-1].text

    def integers(self, name: str) -> list[int]:
        out = []
        for v in self.scalars(name):
            if v.kind != "number":
                raise TextProtoError(f"field {name!r} must be an integer, not {v.text!r}")
            try:
                out.append(int(v.text, 0))
            except ValueError:
                raise TextProtoError(f"field {name!r} must be an integer, not {v.text!r}") from None
        return out

    def integer(self, name: str, default: int = 0) -> int:
        values = self.integers(name)
        if len(values) > 1:
            raise TextProtoError(f"field {name!r} is given more than once")
        return values[0] if values else default


def _unquote(token: str) -> str:
    body, out, i = token[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "01234567":
            digits = re.match(r"[0-7]{1,3}", body[i + 1 :])
            assert digits is not None
            out.append(chr(int(digits.group(), 8)))
            i += 1 + len(digits.group())
        elif nxt in "xX":
            digits = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2 :])
            if digits is None:
                raise TextProtoError(f"bad escape in {token}")
            out.append(chr(int(digits.group(), 16)))
            i += 2 + len(digits.group())
        else:
            raise TextProtoError(f"unknown escape \\{nxt} in {token}")
    return "".join(out)


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            line = text.count("\n", 0, pos) + 1
            raise TextProtoError(f"line {line}: unexpected character {text[pos]!r}")
        kind = m.lastgroup
        assert kind is not None
        if kind != "ws":
            tokens.append((kind, m.group(), text.count("\n", 0, pos) + 1))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            raise TextProtoError("unexpected end of text")
        self.i += 1
        return tok

    def expect(self, punct: str) -> None:
        kind, value, line = self.take()
        if kind != "punct" or value != punct:
            raise TextProtoError(f"line {line}: expected {punct!r}, found {value!r}")

    def message(self, closer: str | None) -> Message:
        msg = Message()
        while True:
            tok = self.peek()
            if tok is None:
                if closer is not None:
                    raise TextProtoError(f"unexpected end of text, expected {closer!r}")
                return msg
            kind, value, line = tok
            if kind == "punct" and value == closer:
                self.i += 1
                return msg
            if kind != "ident":
                raise TextProtoError(f"line {line}: expected a field name, found {value!r}")
            self.i += 1
            self.field(msg, value)
            nxt = self.peek()
            if nxt is not None and nxt[0] == "punct" and nxt[1] in ";,":
                self.i += 1

    def field(self, msg: Message, name: str) -> None:
        kind, value, line = self.take()
        colon = kind == "punct" and value == ":"
        if colon:
            kind, value, line = self.take()
        if kind == "punct" and value in "{<":
            msg.add(name, self.message("}" if value == "{" else ">"))
        elif colon and kind == "punct" and value == "[":
            self.list(msg, name)
        elif colon:
            msg.add(name, self.scalar(kind, value, line))
        else:
            raise TextProtoError(f"line {line}: expected ':' or '{{' after {name!r}, found {value!r}")

    def list(self, msg: Message, name: str) -> None:
        tok = self.peek()
        if tok is not None and tok[:2] == ("punct", "]"):
            self.i += 1
            return
        while True:
            kind, value, line = self.take()
            if kind == "punct" and value in "{<":
                msg.add(name, self.message("}" if value == "{" else ">"))
            else:
                msg.add(name, self.scalar(kind, value, line))
            kind, value, line = self.take()
            if kind == "punct" and value == "]":
                return
            if kind != "punct" or value != ",":
                raise TextProtoError(f"line {line}: expected ',' or ']' in list, found {value!r}")

    def scalar(self, kind: str, value: str, line: int) -> Scalar:
        if kind == "string":
            parts = [_unquote(value)]
            # Adjacent string literals concatenate, as in C.
            while (tok := self.peek()) is not None and tok[0] == "string":
                parts.append(_unquote(self.take()[1]))
            return Scalar("string", "".join(parts))
        if kind in ("number", "ident"):
            return Scalar(kind, value)
        raise TextProtoError(f"line {line}: expected a value, found {value!r}")


def parse(text: str) -> Message:
    """Parses protobuf text format into a generic tree; raises TextProtoError on bad syntax."""
    return _Parser(text).message(None)
