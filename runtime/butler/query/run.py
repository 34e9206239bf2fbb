"""What ``Butler.query``, ``count`` and ``query_values`` do with a ``where`` expression.

:func:`build` checks everything a query was given against the dataset type before
any SQL runs (keyword values, the expression, bind values, other dataset types,
``order_by``, ``limit``) and gives a :class:`Request`. A repository alone answers a
request with one SQL statement. A chain asks each repository that has the dataset
type, in the same order, and merges the streams, each data ID once (find-first: the
data ID is the same wherever it is found); ``with_datasets``/``without_datasets``
then look across the whole chain, since a ``src`` may be stored in a parent of the
repository that holds its ``calexp``.
"""

from __future__ import annotations

import difflib
import heapq
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import total_ordering
from typing import TYPE_CHECKING, Any

from ..dataid import DataId
from ..errors import InvalidQueryError
from ..spec import Value
from . import predicate as p
from .check import KeyInfo, check, check_value
from .syntax import parse

if TYPE_CHECKING:
    from ..butler import Butler

__all__ = ["Request", "build", "count", "data_ids", "values"]


@dataclass(frozen=True)
class Request:
    """A checked query of one dataset type."""

    dataset_type: str
    selection: p.Selection
    order_by: tuple[str, ...] = ()
    limit: int | None = None
    #: The data ID (keyword values and collections), ``where`` and ``bind`` as asked: what a
    #: served parent of a chain is sent (it checks and runs the query itself).
    asked: Mapping[str, Any] = field(default_factory=dict, compare=False)


def key_info(butler: Butler, dataset_type: str) -> KeyInfo:
    """The keys of ``dataset_type`` as the expression checker needs them."""
    mapper = butler.mapper
    types = mapper.keys(dataset_type)
    aliases = {
        alias: spec.name
        for spec in mapper.spec.keys
        if spec.name in types
        for alias in spec.aliases
    }

    def normalize(key: str, value: object) -> Value:
        return mapper.normalize({key: value})[key]

    others = frozenset(spec.name for spec in mapper.spec.keys) - set(types)
    return KeyInfo(dataset_type, types, aliases, normalize, others)


def _keyword_terms(info: KeyInfo, collections: Mapping[str, object]) -> list[p.Predicate]:
    """``visit=[42, 43]`` → ``visit IN (42, 43)``; ``visit=range(a, b)`` → ``a <= visit < b``."""
    terms: list[p.Predicate] = []
    for name, given in collections.items():
        key = info.canonical(name)
        if key is None:
            close = difflib.get_close_matches(name, [*info.types, *info.aliases], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InvalidQueryError(
                f"{name!r} is not a key of {info.dataset_type!r}{hint} "
                f"(its keys: {info.describe_keys()})"
            )
        if isinstance(given, range) and given.step == 1 and info.types[key] in ("int", "float"):
            low = check_value(info, key, given.start, ordered=True)
            high = check_value(info, key, given.stop, ordered=True)
            terms.append(p.AllOf((p.Compare(key, ">=", low), p.Compare(key, "<", high))))
            continue
        items: list[Value] = []
        for value in given:  # type: ignore[attr-defined]
            checked = check_value(info, key, value, ordered=False)
            if checked not in items:
                items.append(checked)
        terms.append(p.In(key, tuple(items)))
    return terms


def _other_types(
    butler: Butler, dataset_type: str, names: Iterable[str], what: str
) -> tuple[str, ...]:
    if isinstance(names, str):
        names = [names]
    own = set(butler.mapper.keys(dataset_type))
    checked: list[str] = []
    for name in names:
        butler.mapper.dataset_type(name)  # UnknownDatasetTypeError with a did-you-mean
        if not own & set(butler.mapper.keys(name)):
            raise InvalidQueryError(
                f"{what}={[name]!r}: {dataset_type!r} and {name!r} share no key, so no "
                f"{name!r} dataset can be matched with a {dataset_type!r} one"
            )
        checked.append(name)
    return tuple(checked)


def _order(info: KeyInfo, order_by: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(order_by, str):
        order_by = [order_by]
    out: list[str] = []
    for item in order_by:
        if not isinstance(item, str):
            raise InvalidQueryError(f"order_by takes key names ('-key' descending), not {item!r}")
        descending = item.startswith("-")
        name = item[1:] if descending else item
        key = info.canonical(name)
        if key is None:
            close = difflib.get_close_matches(name, list(info.types), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InvalidQueryError(
                f"cannot order {info.dataset_type!r} by {name!r}: not one of its keys{hint} "
                f"(its keys: {info.describe_keys()})"
            )
        out.append(f"-{key}" if descending else key)
    return tuple(out)


def _limit(limit: object) -> int | None:
    if limit is None:
        return None
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise InvalidQueryError(f"limit must be a non-negative integer or None, not {limit!r}")
    return limit


def build(
    butler: Butler,
    dataset_type: str,
    partial: Mapping[str, Value],
    collections: Mapping[str, object],
    *,
    where: str | None = None,
    bind: Mapping[str, object] | None = None,
    with_datasets: Iterable[str] = (),
    without_datasets: Iterable[str] = (),
    order_by: str | Sequence[str] = (),
    limit: int | None = None,
) -> Request:
    """A checked request: ``partial`` (normalized scalar keys), keyword collections, and
    the rest as ``Butler.query`` takes them. InvalidQueryError for anything that cannot run."""
    info = key_info(butler, dataset_type)
    terms: list[p.Predicate] = [p.Compare(key, "=", value) for key, value in partial.items()]
    terms += _keyword_terms(info, collections)
    if bind is not None and not isinstance(bind, Mapping):
        raise InvalidQueryError(f"bind must be a mapping of names to values, not {bind!r}")
    if where is not None:
        terms.append(check(parse(where), where, info, bind))
    elif bind:
        raise InvalidQueryError("bind values were given without a `where` expression to use them")
    selection = p.Selection(
        terms[0] if len(terms) == 1 else p.AllOf(tuple(terms)),
        _other_types(butler, dataset_type, with_datasets, "with_datasets"),
        _other_types(butler, dataset_type, without_datasets, "without_datasets"),
    )
    asked = {"data_id": {**partial, **collections}, "where": where, "bind": bind}
    return Request(dataset_type, selection, _order(info, order_by), _limit(limit), asked)


# ---- running --------------------------------------------------------------------------------


def _members(butler: Butler, dataset_type: str) -> list[Butler]:
    """The repositories of the chain (this one first) that hold ``dataset_type`` datasets."""
    return [
        member
        for member in butler.chain.registries(butler, f"query {dataset_type!r}")
        if dataset_type in member.mapper.dataset_types
        and member.registry.has_dataset_type(dataset_type)
    ]


def data_ids(butler: Butler, request: Request) -> Iterator[DataId]:
    """The data IDs ``request`` selects, streamed, normalized by ``butler``'s mapper."""
    normalize = butler.mapper.normalize
    if not butler.chain.parents:
        if not butler.registry.has_dataset_type(request.dataset_type):
            return iter(())
        rows = butler.registry.select(
            request.dataset_type,
            request.selection,
            order_by=request.order_by,
            limit=request.limit,
        )
        return (normalize(row) for row in rows)
    merged = _chain_rows(butler, request)
    return (normalize(row) for row in itertools.islice(merged, request.limit))


@total_ordering
class _Descending:
    """Sorts in reverse: a key of ``order_by=['-visit']`` in a merge of streams."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.value == other.value

    def __lt__(self, other: _Descending) -> bool:
        return bool(other.value < self.value)

    def __hash__(self) -> int:
        return hash(self.value)


def _chain_rows(butler: Butler, request: Request) -> Iterator[Mapping[str, Value]]:
    name = request.dataset_type
    keys = list(butler.mapper.keys(name))
    descending = {item[1:] for item in request.order_by if item.startswith("-")}
    first = [item.lstrip("-") for item in request.order_by]
    order = [*dict.fromkeys(first), *(k for k in keys if k not in first)]

    def sort_key(row: Mapping[str, Value]) -> tuple[Any, ...]:
        return tuple(_Descending(row[k]) if k in descending else row[k] for k in order)

    streams = _streams(butler, request)
    wanted = [(other, _shared(butler, name, other)) for other in request.selection.with_datasets]
    unwanted = [
        (other, _shared(butler, name, other)) for other in request.selection.without_datasets
    ]
    present: dict[str, set[tuple[Value, ...]]] = {}

    def has(row: Mapping[str, Value], other: str, shared: Sequence[str]) -> bool:
        """Whether the chain holds an ``other`` dataset with ``row``'s shared keys."""
        if other not in present:
            present[other] = {
                tuple(found[k] for k in shared)
                for member in _members(butler, other)
                for found in member.registry.select(other)
            }
        return tuple(row[k] for k in shared) in present[other]

    previous: tuple[Any, ...] | None = None
    for row in heapq.merge(*streams, key=sort_key):
        identity = tuple(row[k] for k in keys)
        if identity == previous:  # the same data ID in another repository of the chain
            continue
        previous = identity
        if all(has(row, other, shared) for other, shared in wanted) and not any(
            has(row, other, shared) for other, shared in unwanted
        ):
            yield row


def _streams(butler: Butler, request: Request) -> list[Iterator[Mapping[str, Value]]]:
    """Each repository's selected rows, ordered by ``order_by`` then the keys: a local one's
    from its registry, a served parent's from its server, sent the query as asked (and the
    limit: the first ``limit`` of the merge are among each stream's first ``limit``)."""
    name = request.dataset_type
    where_only = p.Selection(request.selection.where)
    streams: list[Iterator[Mapping[str, Value]]] = []
    for member in (butler, *butler.chain.parents):
        if name not in member.dataset_types:
            continue
        local = member.local()
        if local is None:
            asked = request.asked
            streams.append(
                member.query(
                    name,
                    asked.get("data_id"),
                    where=asked.get("where"),
                    bind=asked.get("bind"),
                    order_by=list(request.order_by),
                    limit=request.limit,
                )
            )
        elif local.registry.has_dataset_type(name):
            streams.append(local.registry.select(name, where_only, order_by=request.order_by))
    return streams


def _shared(butler: Butler, name: str, other: str) -> list[str]:
    theirs = set(butler.mapper.keys(other))
    return [key for key in butler.mapper.keys(name) if key in theirs]


def count(butler: Butler, request: Request) -> int:
    """How many datasets ``request`` selects (each data ID once across a chain)."""
    if not butler.chain.parents:
        if not butler.registry.has_dataset_type(request.dataset_type):
            return 0
        return butler.registry.select_count(request.dataset_type, request.selection)
    return sum(1 for _ in _chain_rows(butler, request))


def values(butler: Butler, request: Request, key: str) -> list[Value]:
    """The distinct values of ``key`` among the datasets ``request`` selects, sorted."""
    name = request.dataset_type
    selection = request.selection
    if butler.chain.parents and (selection.with_datasets or selection.without_datasets):
        return sorted({row[key] for row in _chain_rows(butler, request)})
    found: set[Any] = set()
    for member in (butler, *butler.chain.parents):
        local = member.local()
        if name not in member.dataset_types:
            continue
        if local is None:  # a served parent runs the query as asked
            asked = request.asked
            found.update(
                member.query_values(
                    name,
                    key,
                    asked.get("data_id"),
                    where=asked.get("where"),
                    bind=asked.get("bind"),
                )
            )
        elif local.registry.has_dataset_type(name):
            found.update(local.registry.select_values(name, key, selection))
    return sorted(found)
