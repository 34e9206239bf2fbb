"""The fast YAML path gives exactly what PyYAML's safe loader gives, for every document."""

from __future__ import annotations

import datetime
import math

import yaml
from butler.formatters._yaml_fast import MAX_DEPTH, ResolveCache, dump, load
from hypothesis import given, settings
from hypothesis import strategies as st

# The reference: PyYAML's safe loader and dumper, in libyaml where PyYAML has it (the
# YAML formatter used them before the fast path; the two parsers differ on odd inputs).
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["yes", "No", "null", "~", "1_000", "0x1F", "1:20", ".inf", "2024-03-01"])
)
keys = st.text(max_size=8) | st.integers() | st.sampled_from(["on", "OFF", "<<", "=", "a b"])
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
)


def same(a: object, b: object) -> bool:
    """Equal, with NaN equal to NaN and bool never equal to int."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=400)
@given(documents)
def test_what_fast_dump_writes_pyyaml_reads_back_equal(obj: object) -> None:
    assert same(yaml.load(dump(obj), Loader=_Loader), obj)


@settings(max_examples=400)
@given(documents, st.sampled_from([None, True, False]))
def test_fast_load_agrees_with_pyyaml_on_every_written_document(
    obj: object, flow: bool | None
) -> None:
    cache = ResolveCache()
    for text in (dump(obj), yaml.dump(obj, Dumper=_Dumper, default_flow_style=flow)):
        assert same(load(text, cache), yaml.load(text, Loader=_Loader))


@settings(max_examples=300)
@given(st.text(alphabet="ab:-[]{}, \n'\"#&*!<=.01~", max_size=40))
def test_fast_load_fails_exactly_when_pyyaml_fails(text: str) -> None:
    try:
        expected = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        try:
            load(text, ResolveCache())
        except yaml.YAMLError:
            return
        raise AssertionError(f"fast load accepted {text!r}, which PyYAML refuses") from None
    assert same(load(text, ResolveCache()), expected)


def test_documents_outside_the_fast_path_are_built_by_pyyaml() -> None:
    cache = ResolveCache()
    aliased = load("a: &x [1, 2]\nb: *x\n", cache)
    assert isinstance(aliased, dict) and aliased["a"] is aliased["b"]  # shared, as PyYAML does
    merged = "base: &b {x: 1}\nchild:\n  <<: *b\n  y: 2\n"
    assert load(merged, cache) == {"base": {"x": 1}, "child": {"x": 1, "y": 2}}
    assert load("when: 2024-03-01 12:00:00\n", cache) == {
        "when": datetime.datetime(2024, 3, 1, 12, 0)
    }
    assert load("!!set {a, b}\n", cache) == {"a", "b"}


def test_fast_dump_leaves_unusual_documents_to_pyyaml() -> None:
    deep: object = 1
    for _ in range(MAX_DEPTH + 2):
        deep = {"k": deep}
    looped: dict[str, object] = {}
    looped["self"] = looped
    when = {"when": datetime.date(2024, 3, 1)}
    for obj in (deep, when, {"text": "line\nbreak\u2028"}, {1.5: "float key"}):
        assert dump(obj) == yaml.dump(obj, Dumper=_Dumper, allow_unicode=True, sort_keys=False)
    reread = yaml.load(dump(looped), Loader=_Loader)
    assert reread["self"] is reread


def test_the_resolve_cache_tells_quoted_from_plain() -> None:
    cache = ResolveCache()
    assert load("a: 1\nb: '1'\nc: yes\nd: 'yes'\n", cache) == {
        "a": 1,
        "b": "1",
        "c": True,
        "d": "yes",
    }
    assert load("a: '1'\nb: 1\n", cache) == {"a": "1", "b": 1}
