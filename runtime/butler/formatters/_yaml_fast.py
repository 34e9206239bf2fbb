"""Faster YAML for the documents pipelines put millions of: plain dicts and lists of scalars.

Both directions fall back to PyYAML's safe dumper and loader for anything else, so
what a file holds and what a read returns never depend on which path was taken:

- :func:`dump` writes a dict of plain values as a block mapping whose values are
  in flow style (``flags: ["ok", "ok"]``), strings double-quoted (JSON's escapes
  are YAML's), floats spelled as PyYAML spells them (``1.0e+300``, ``.inf``). Any
  other document (non-ASCII or control characters in a string, keys that are not
  str or int, other types, nesting deeper than ``MAX_DEPTH``) goes to PyYAML.
- :func:`load` lets libyaml (or PyYAML's Python parser) compose the node graph
  and builds the objects from it directly, calling PyYAML's own constructors for
  every non-string scalar. A document with anchors and aliases, merge keys, or
  tags beyond str/int/float/bool/null/seq/map is built by PyYAML's constructor.

Tests hold both to PyYAML's answer for every generated document.
"""

from __future__ import annotations

import json
import math
from typing import Any

import yaml

__all__ = ["MAX_DEPTH", "ResolveCache", "dump", "load"]

#: Deeper documents are written by PyYAML (our writer recurses).
MAX_DEPTH = 32
#: Longest scalar whose resolved tag :class:`ResolveCache` keeps, and how many it keeps.
_CACHED_LENGTH = 64
_CACHE_SIZE = 4096

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_SCALARS = {
    "tag:yaml.org,2002:int": "construct_yaml_int",
    "tag:yaml.org,2002:float": "construct_yaml_float",
    "tag:yaml.org,2002:bool": "construct_yaml_bool",
    "tag:yaml.org,2002:null": "construct_yaml_null",
}
# Plain (unquoted) mapping keys: identifiers no YAML 1.1 resolver reads as anything but str.
_RESOLVED_WORDS = frozenset({"yes", "no", "true", "false", "on", "off", "null", "y", "n"})


class _Unusual(Exception):
    """The document needs PyYAML's full machinery."""


# ---- writing -------------------------------------------------------------------------------


def dump(obj: object) -> str:
    """``obj`` as YAML text that PyYAML's safe loader reads back as an equal object."""
    if type(obj) is dict and obj:
        try:
            return "".join(f"{_key(k)}: {_flow(v, 1)}\n" for k, v in obj.items())
        except _Unusual:
            pass
    text: str = yaml.dump(obj, Dumper=_Dumper, allow_unicode=True, sort_keys=False)
    return text


def _key(key: object) -> str:
    if isinstance(key, str):
        if key.isidentifier() and key.isascii() and key.lower() not in _RESOLVED_WORDS:
            return key
        return _string(key)
    return _flow(key, 0) if type(key) is int else _raise()


def _flow(value: object, depth: int) -> str:
    # Exact types only: a subclass (an IntEnum, an OrderedDict) is PyYAML's to judge.
    if type(value) is str:
        return _string(value)
    if type(value) is int:
        return str(value)
    if type(value) is float:
        return _float(value)
    if type(value) is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if depth >= MAX_DEPTH:
        _raise()
    if type(value) is list:
        return "[" + ", ".join(_flow(item, depth + 1) for item in value) + "]"
    if type(value) is dict:
        pairs = (f"{_flow_key(k)}: {_flow(v, depth + 1)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    return _raise()


def _flow_key(key: object) -> str:
    if type(key) is str:
        return _string(key)
    if type(key) is int:
        return str(key)
    return _raise()


def _string(text: str) -> str:
    # Printable ASCII only: JSON's escapes for it (\" and \\) are YAML's; anything else
    # (line breaks, NEL, LS/PS, a BOM, non-printables) is left to PyYAML's rules.
    if not (text.isascii() and text.isprintable()):
        _raise()
    return json.dumps(text)


def _float(value: float) -> str:
    """The float as PyYAML's representer writes it (so YAML 1.1 resolves it as a float)."""
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value).lower()
    if "." not in text and "e" in text:
        text = text.replace("e", ".0e", 1)
    return text


def _raise() -> str:
    raise _Unusual


# ---- reading -------------------------------------------------------------------------------


class ResolveCache:
    """Resolved tags of short plain scalars, shared by the loads of one formatter.

    Composing a document asks the resolver for the tag of every scalar, running up
    to a dozen regular expressions each time; the answer depends only on the
    scalar's text and style, and the same keys and values recur across files.
    """

    def __init__(self) -> None:
        self.tags: dict[tuple[str, Any], str] = {}


class _CachingLoader(_Loader):  # type: ignore[misc]
    """PyYAML's safe loader, resolving scalars through a :class:`ResolveCache`."""

    def __init__(self, text: str, cache: ResolveCache) -> None:
        super().__init__(text)
        self._tags = cache.tags

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is not yaml.ScalarNode or len(value) > _CACHED_LENGTH:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = self._tags.get(key)
        if tag is None:
            if len(self._tags) >= _CACHE_SIZE:
                self._tags.clear()
            tag = self._tags[key] = super().resolve(kind, value, implicit)
        return tag


def load(text: str, cache: ResolveCache) -> object:
    """The object PyYAML's safe loader reads from ``text`` (raises yaml.YAMLError as it does)."""
    loader = _CachingLoader(text, cache)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            return _build(node, loader, set())
        except _Unusual:
            return loader.construct_document(node)
    finally:
        loader.dispose()


def _build(node: Any, loader: Any, seen: set[int]) -> object:
    tag = node.tag
    if tag == _STR and isinstance(node, yaml.ScalarNode):
        return node.value
    method = _SCALARS.get(tag)
    if method is not None and isinstance(node, yaml.ScalarNode):
        return getattr(loader, method)(node)
    if id(node) in seen:  # an alias: PyYAML shares the object (or builds a cycle)
        raise _Unusual
    seen.add(id(node))
    if tag == _SEQ and isinstance(node, yaml.SequenceNode):
        return [_build(child, loader, seen) for child in node.value]
    if tag == _MAP and isinstance(node, yaml.MappingNode):
        result = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _PLAIN_KEYS:
                raise _Unusual  # merge keys, '=' value keys, collections as keys
            result[_build(key_node, loader, seen)] = _build(value_node, loader, seen)
        return result
    raise _Unusual


_PLAIN_KEYS = frozenset({_STR, *_SCALARS})
