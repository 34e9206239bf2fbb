"""``Mapper``: data IDs to paths and back, for one instrument's generated spec.

Built once from the ``INSTRUMENT`` of a generated mapper module, a mapper
precomputes, per dataset type, the render function, the path pattern and a
converter per pattern group, so ``path`` and ``parse`` are a dict lookup and a
few calls each. ``path`` given a :class:`~butler.DataId` this mapper normalized
renders it directly; anything else is normalized first.
"""

from __future__ import annotations

import datetime
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .dataid import DataId, format_data_id
from .errors import InvalidDataIdError, MapperVersionError, UnknownDatasetTypeError
from .normalize import Normalizer
from .spec import ABI_VERSION, DatasetTypeSpec, InstrumentSpec, KeySpec, Value

__all__ = ["Mapper", "field_parser"]

_BOOLS = {"True": True, "False": False}


def _parse_bool(text: str) -> bool:
    try:
        return _BOOLS[text]
    except KeyError:
        raise ValueError(f"not a bool: {text!r}") from None


def _strptime_date(spec: str) -> Callable[[str], Value]:
    return lambda text: datetime.datetime.strptime(text, spec).date()


def _strptime(spec: str) -> Callable[[str], Value]:
    return lambda text: datetime.datetime.strptime(text, spec)


def field_parser(key: KeySpec, spec: str) -> Callable[[str], Value]:
    """Text that a template field ``{key:spec}`` rendered -> the value of the key's type."""
    if key.type == "int":
        return int
    if key.type == "float":
        return float
    if key.type == "bool":
        return _parse_bool
    if key.type == "date":
        return _strptime_date(spec) if spec else datetime.date.fromisoformat
    if key.type == "datetime":
        return _strptime(spec) if spec else datetime.datetime.fromisoformat
    return str


@dataclass(frozen=True, slots=True)
class _Plan:
    """What ``path`` and ``parse`` need for one dataset type, precomputed."""

    spec: DatasetTypeSpec
    render: Callable[[Mapping[str, Value]], str]
    pattern: re.Pattern[str]
    required: tuple[str, ...]
    # (key, text -> value, value check), in the instrument's key order
    groups: tuple[tuple[str, Callable[[str], Value], Callable[[Value], None]], ...]
    # whether a key declared allow "/" fills a field: then the rendered path is checked
    fragments: bool = False


def _plan(spec: DatasetTypeSpec, normalizer: Normalizer) -> _Plan:
    keys = normalizer.keys
    converters: dict[str, Callable[[str], Value]] = {}
    for field in spec.fields:
        converters.setdefault(field.key, field_parser(keys[field.key], field.spec))
    groups = tuple(
        (name, converters[name], _checker(keys[name], normalizer))
        for name in normalizer.order
        if name in converters and name in spec.pattern.groupindex
    )
    fragments = any("/" in keys[name].allow for name in converters)
    return _Plan(spec, spec.render, spec.pattern, tuple(converters), groups, fragments)


def _escapes(path: str) -> bool:
    """Whether a rendered path would leave the repository root."""
    return path.startswith("/") or ".." in path.split("/") or path == ""


def _checker(key: KeySpec, normalizer: Normalizer) -> Callable[[Value], None]:
    """Checks a parsed value; floats go through full normalization (rejects nan, inf)."""
    if key.type != "float":
        return normalizer.validator(key.name)
    name = key.name

    def check(value: Value) -> None:
        normalizer.value(name, value)

    return check


class Mapper:
    """Maps data IDs to paths and back for one instrument (``Mapper(module.INSTRUMENT)``)."""

    __slots__ = ("_normalizer", "_plans", "dataset_types", "name", "spec")

    def __init__(self, spec: InstrumentSpec) -> None:
        if spec.abi_version != ABI_VERSION:
            built = f"butlerc {spec.compiler_version}" if spec.compiler_version else "butlerc"
            source = spec.source or "POLICY"
            raise MapperVersionError(
                f"mapper for instrument {spec.name!r} was built by {built} for mapper ABI "
                f"{spec.abi_version}, but this runtime reads ABI {ABI_VERSION}; rebuild it with "
                f"`butlerc compile {source} -o DIR`"
            )
        self.spec = spec
        self.name = spec.name
        self._normalizer = Normalizer(spec.keys, spec.tables)
        self._plans = {dt.name: _plan(dt, self._normalizer) for dt in spec.dataset_types}
        self.dataset_types = tuple(self._plans)

    def __repr__(self) -> str:
        return f"Mapper({self.name!r}, dataset_types={len(self.dataset_types)})"

    # ---- dataset types ---------------------------------------------------------------

    def _get_plan(self, name: str) -> _Plan:
        try:
            return self._plans[name]
        except (KeyError, TypeError):
            pass
        close = difflib.get_close_matches(str(name), self.dataset_types, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        count = len(self.dataset_types)
        raise UnknownDatasetTypeError(
            f"unknown dataset type {name!r} for instrument {self.name}{hint} ({self.name} "
            f"defines {count}: `butler dataset-types ROOT` or `Butler.dataset_types` lists them)"
        )

    def dataset_type(self, name: str) -> DatasetTypeSpec:
        """The spec of dataset type ``name``."""
        return self._get_plan(name).spec

    def keys(self, dataset_type: str) -> dict[str, str]:
        """Each key of ``dataset_type``'s data IDs -> its type name (``"int"``, ...)."""
        spec = self._get_plan(dataset_type).spec
        types = self._normalizer.keys
        return {key: types[key].type for key in spec.keys}

    # ---- data IDs ------------------------------------------------------------------------

    def normalize(self, data_id: Mapping[str, object] | None = None, /, **keys: object) -> DataId:
        """The normalized, checked :class:`DataId` for ``data_id`` updated with ``keys``."""
        if not keys and type(data_id) is DataId and data_id._origin is self._normalizer:
            return data_id
        values: Mapping[str, object]
        if data_id is None:
            values = keys
        elif keys:
            values = {**data_id, **keys}
        else:
            values = data_id
        return DataId._trusted(self._normalizer.normalize(values), self._normalizer)

    def path(
        self, dataset_type: str, data_id: Mapping[str, object] | None = None, /, **keys: object
    ) -> str:
        """The path (relative to a repository root) of ``dataset_type`` for a data ID."""
        plan = self._plans.get(dataset_type) or self._get_plan(dataset_type)
        if keys or type(data_id) is not DataId or data_id._origin is not self._normalizer:
            data_id = self.normalize(data_id, **keys)
        try:
            rendered = plan.render(data_id._items)
        except KeyError:
            missing = [key for key in plan.required if key not in data_id]
            raise InvalidDataIdError(
                f"data ID {data_id!r} is missing {', '.join(missing)}, needed by dataset type "
                f"{plan.spec.name!r} (template {plan.spec.template!r})"
            ) from None
        if plan.fragments and _escapes(rendered):
            raise InvalidDataIdError(
                f"data ID {data_id!r} gives dataset type {plan.spec.name!r} the path "
                f"{rendered!r}, which would leave the repository (template "
                f"{plan.spec.template!r}); check the values of its path-fragment keys"
            )
        return rendered

    def parse(self, dataset_type: str, path: str) -> DataId:
        """The data ID that ``path`` is the path of, for ``dataset_type``."""
        plan = self._plans.get(dataset_type) or self._get_plan(dataset_type)
        match = plan.pattern.fullmatch(path)
        if match is None:
            raise self._not_a_path(plan, path, "it does not match the template")
        items: dict[str, Value] = {}
        try:
            for name, convert, check in plan.groups:
                value = convert(match[name])
                check(value)
                items[name] = value
            items = self._normalizer.complete(items, ordered=True)
        except (ValueError, TypeError) as error:
            raise self._not_a_path(plan, path, str(error)) from None
        rendered = plan.render(items)
        if rendered != path:
            raise self._not_a_path(plan, path, f"its data ID renders as {rendered!r}")
        return DataId._trusted(items, self._normalizer)

    @staticmethod
    def _not_a_path(plan: _Plan, path: str, reason: str) -> InvalidDataIdError:
        return InvalidDataIdError(
            f"path {path!r} is not a path of dataset type {plan.spec.name!r} "
            f"(template {plan.spec.template!r}): {reason}"
        )

    def explain(self, dataset_type: str, data_id: Mapping[str, object]) -> str:
        """Each normalization step applied to ``data_id``, then the template and the path."""
        plan = self._get_plan(dataset_type)
        steps: list[str] = []
        given = dict(data_id)
        items = self._normalizer.normalize(given, steps)
        normalized = DataId._trusted(items, self._normalizer)
        lines = [
            f"dataset type {plan.spec.name!r} of instrument {self.name}",
            f"given: {format_data_id(given)}",
        ]
        lines += [f"  {step}" for step in steps] or ["  (already normalized)"]
        lines.append(f"normalized: {normalized!r}")
        lines.append(f"template: {plan.spec.template}")
        lines.append(f"path: {self.path(dataset_type, normalized)}")
        return "\n".join(lines)
