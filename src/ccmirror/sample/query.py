"""The scrape API's query language, small but real enough for mirror manifests.

`field:value`, `field:(a OR b)`, `AND`, `OR`, `NOT`, parentheses, implicit AND, `*`
wildcards (case-insensitive), quoted values; a bare word matches identifier, title or
creator. `parse_query(q)` gives a tree, `matches(tree, doc)` evaluates it on a search doc.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([^\s()"]+))')


def _tokens(q: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(q):
        if q[pos:].strip() == "":
            break
        m = _TOKEN.match(q, pos)
        if not m:
            raise ValueError(f"cannot parse query near {q[pos:]!r}")
        pos = m.end()
        if m.group(1):
            out.append(("(", "("))
        elif m.group(2):
            out.append((")", ")"))
        elif m.group(3) is not None:
            out.append(("word", m.group(3)))
        else:
            word = m.group(4)
            if word in ("AND", "OR", "NOT"):
                out.append((word, word))
            elif word.endswith(":") and len(word) > 1:
                out.append(("field", word[:-1]))
            elif ":" in word:
                f, v = word.split(":", 1)
                out.append(("field", f))
                out.append(("word", v))
            else:
                out.append(("word", word))
    return out


class _Parser:
    """Recursive descent: or := and (OR and)*; and := not ([AND] not)*; not := NOT not | atom."""

    def __init__(self, q: str) -> None:
        self.toks = _tokens(q)
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i][0] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> Any:
        node = self.or_(None)
        if self.i != len(self.toks):
            raise ValueError(f"unexpected {self.toks[self.i][1]!r} in query")
        return node

    def or_(self, fld: str | None) -> Any:
        node = self.and_(fld)
        while self.peek() == "OR":
            self.take()
            node = ("or", node, self.and_(fld))
        return node

    def and_(self, fld: str | None) -> Any:
        node = self.not_(fld)
        while self.peek() not in (None, ")", "OR"):
            if self.peek() == "AND":
                self.take()
            node = ("and", node, self.not_(fld))
        return node

    def not_(self, fld: str | None) -> Any:
        if self.peek() == "NOT":
            self.take()
            return ("not", self.not_(fld))
        return self.atom(fld)

    def atom(self, fld: str | None) -> Any:
        kind = self.peek()
        if kind is None:
            raise ValueError("query ends too early")
        if kind == "(":
            self.take()
            node = self.or_(fld)
            if self.peek() != ")":
                raise ValueError("missing ')' in query")
            self.take()
            return node
        if kind == "field":
            name = self.take()[1]
            return self.atom(name)
        if kind == "word":
            return ("term", fld, self.take()[1])
        raise ValueError(f"unexpected {self.toks[self.i][1]!r} in query")


def _values(doc: Mapping[str, Any], fld: str) -> list[str]:
    v = doc.get(fld)
    if v is None:
        return []
    return [str(x) for x in v] if isinstance(v, list) else [str(v)]


def _match(node: Any, doc: Mapping[str, Any]) -> bool:
    op = node[0]
    if op == "and":
        return _match(node[1], doc) and _match(node[2], doc)
    if op == "or":
        return _match(node[1], doc) or _match(node[2], doc)
    if op == "not":
        return not _match(node[1], doc)
    _, fld, word = node
    word = word.lower()
    if fld is None:  # a bare word: identifier, title or creator contain it
        hay = " ".join(_values(doc, "identifier") + _values(doc, "title") + _values(doc, "creator"))
        return word.strip("*") in hay.lower()
    if word == "*":
        return bool(_values(doc, fld))
    return any(fnmatch.fnmatchcase(v.lower(), word) for v in _values(doc, fld))


def parse_query(q: str) -> Any:
    """Parse a query; ValueError (or IndexError) on a malformed one."""
    return _Parser(q).parse()


def matches(tree: Any, doc: Mapping[str, Any]) -> bool:
    return _match(tree, doc)
