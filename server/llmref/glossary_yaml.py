"""A fast reader for the plain shape of glossary YAML, ~20x faster than PyYAML on it.

Glossaries are YAML lists of flat mappings, written one field per line::

    - name: KV cache
      zh: [键值缓存]
      aliases: [KVCache, "A(s,a)"]
      definition: "One line: in our own words."

``simple_items`` reads exactly that shape: items starting ``- key: value`` at column 0, fields
``  key: value`` indented by two spaces, values that are plain or simply quoted scalars or
one-line flow lists of them, comment lines and trailing comments. It gives what PyYAML gives
for such a file (the same dicts, lists and strings; tests compare the two), and ``None`` as
soon as anything is outside the shape or could mean something else to YAML (a tag, an anchor,
a block scalar, a multi-line value, a scalar YAML would read as a number, a boolean or null…):
the caller then uses PyYAML for the whole file.
"""

from __future__ import annotations

import re

import yaml

# characters YAML refuses anywhere in a stream, and line breaks other than \n, \r\n, \r
_UNSAFE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd"
    "\U00010000-\U0010ffff]"
)
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
_STR_TAG = "tag:yaml.org,2002:str"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NULL_TAG = "tag:yaml.org,2002:null"
_RESOLVER = yaml.resolver.Resolver()
# first characters of plain scalars that YAML may read as something other than a string
_IMPLICIT_FIRST = frozenset(k for k in yaml.SafeLoader.yaml_implicit_resolvers if k)
_CHECK_FIRST = _INDICATORS | _IMPLICIT_FIRST | {" "}  # a value starting so needs a closer look
_INDICATOR_OR_SPACE = _INDICATORS | {" "}
# every pattern by which YAML reads a plain scalar as something else than a string
_IMPLICIT = re.compile(
    "|".join(
        sorted(
            {
                f"(?:{rx.pattern})"
                for resolvers in yaml.SafeLoader.yaml_implicit_resolvers.values()
                for _tag, rx in resolvers
            }
        )
    ),
    re.X,
)
_PLAIN_KEYS = frozenset(
    {"id", "name", "definition", "common_word", "zh", "aliases", "code", "related"}
)
_FLOW_SPECIAL = re.compile(r"[\[\]{}:#\"']")  # in a flow list: more than plain words

Item = tuple[int, dict[str, object]]


class _Unsupported(Exception):
    """Outside the plain shape: read the file with PyYAML."""


def simple_items(text: str) -> list[Item] | None:
    """(line, mapping) of every item, or None when PyYAML must read the text."""
    if _UNSAFE.search(text):
        return None
    items: list[Item] = []
    current: dict[str, object] | None = None
    check_first, flow_special = _CHECK_FIRST, _FLOW_SPECIAL.search
    try:
        for number, line in enumerate(text.splitlines(), 1):
            if line[:2] == "- ":
                current = {}
                items.append((number, current))
            elif line[:2] != "  " or line[2:3] in (" ", "\t", "", "#") or current is None:
                rest = line.lstrip(" ")
                if rest and not rest.startswith("#"):
                    return None  # anything else at column 0, deeper indentation, a tab...
                continue
            # "key: value" (inlined: this loop runs once per line of a big glossary)
            key, colon, value = line[2:].partition(":")
            if not colon or not key.isidentifier() or not key.isascii() or "\t" in value:
                return None
            if key not in _PLAIN_KEYS and key[0] in _IMPLICIT_FIRST and not _is_str(key):
                return None  # yes:, null:, ... are not string keys
            if not value.strip(" "):
                current[key] = None
                continue
            if value[0] != " ":
                return None  # key:value is a plain scalar to YAML
            if " #" in value:
                value = _strip_comment(value)
                if not value:
                    current[key] = None
                    continue
            else:
                value = value.strip(" ")
            first = value[0]
            if first == "[":
                if value[-1] != "]":
                    return None
                inner = value[1:-1]
                if flow_special(inner) is None:  # the usual list of plain words: split
                    words = inner.split(",")
                    for n, word in enumerate(words):
                        words[n] = word = word.strip(" ")
                        if not word or (word[0] in check_first and _special(word)):
                            break
                    else:
                        current[key] = words
                        continue
                current[key] = _flow_list(inner)
            elif (
                (first not in check_first or not _special(value))
                and ": " not in value
                and value[-1] != ":"
            ):
                current[key] = value  # a plain scalar that can only be a string
            else:
                current[key] = _scalar(value, flow=False)
    except _Unsupported:
        return None
    return items


def _strip_comment(text: str) -> str:
    """The value without a trailing `` # comment`` (only where no quote could hide one)."""
    cut = text.find(" #")
    if cut >= 0:
        if "'" in text[:cut] or '"' in text[:cut]:
            raise _Unsupported
        text = text[:cut]
    return text.strip(" ")


def _flow_list(inner: str) -> list[object]:
    out: list[object] = []
    i, n = 0, len(inner)
    while True:
        while i < n and inner[i] == " ":
            i += 1
        if i >= n:
            if out:
                raise _Unsupported  # a trailing comma
            return out
        ch = inner[i]
        if ch in "\"'":
            close = inner.find(ch, i + 1)
            if close < 0:
                raise _Unsupported
            out.append(_quoted(inner[i : close + 1]))
            i = close + 1
            while i < n and inner[i] == " ":
                i += 1
            if i < n and inner[i] != ",":
                raise _Unsupported
        else:
            comma = inner.find(",", i)
            end = n if comma < 0 else comma
            item = inner[i:end].rstrip(" ")
            if not item or any(c in item for c in "[]{}:#"):
                raise _Unsupported
            out.append(_scalar(item, flow=True))
            i = end
        if i >= n:
            return out
        i += 1  # the comma
        if i >= n:
            raise _Unsupported


def _quoted(text: str) -> str:
    inner = text[1:-1]
    if text[0] == '"' and ("\\" in inner or '"' in inner):
        raise _Unsupported
    if text[0] == "'" and "'" in inner:
        raise _Unsupported
    return inner


def _scalar(text: str, *, flow: bool) -> object:
    if text[0] in "\"'":
        if len(text) < 2 or text[-1] != text[0]:
            raise _Unsupported
        return _quoted(text)
    if text[0] in _INDICATORS or ": " in text or text.endswith(":"):
        raise _Unsupported
    if flow and any(c in text for c in ",[]{}"):
        raise _Unsupported
    if text[0] in _IMPLICIT_FIRST:
        tag = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))
        if tag == _BOOL_TAG:  # common_word: true
            return yaml.constructor.SafeConstructor.bool_values[text.lower()]
        if tag == _NULL_TAG:
            return None
        if tag != _STR_TAG:
            raise _Unsupported  # a number, a date...
    return text


def _special(text: str) -> bool:
    """A plain scalar YAML may read as more than a string: indicators, numbers, booleans..."""
    return text[0] in _INDICATOR_OR_SPACE or _IMPLICIT.match(text) is not None


def _is_str(text: str) -> bool:
    return _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == _STR_TAG
