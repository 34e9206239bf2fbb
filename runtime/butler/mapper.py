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
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .dataid import DataId, format_data_id
from .errors import InvalidDataIdError, MapperVersionError, UnknownDatasetTypeError
from .normalize import Normalizer
from .sky_ids import SkyIds
from .spec import ABI_VERSION, DatasetTypeSpec, InstrumentSpec, KeySpec, Value

if TYPE_CHECKING:
    from .skymap import SkyMap

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
    # whether a free-text key (a str key with no fixed choices, or one declared allow "/")
    # fills a field: then the rendered path is checked to be canonical and short enough
    free: bool = False
    # whether free text can split more than one way (two free fields in one component,
    # or a path fragment beside another): then the path must read back as the data ID
    splits: bool = False
    # fields whose text may not read back as the value (a float "{focus:.2f}", a datetime
    # "{t:%Y%m%d}"): (key, format spec, text -> value); a put of such a value is refused
    lossy: tuple[tuple[str, str, Callable[[str], Value]], ...] = ()


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
    free_keys = {name for name in converters if _free(keys[name])}
    lossy = tuple(
        (field.key, field.spec, field_parser(keys[field.key], field.spec))
        for field in spec.fields
        if field.spec and keys[field.key].type in _LOSSY_TYPES
    )
    # "." in a generated pattern (a path-fragment field is ".+") must match any character a
    # value may hold, a newline too, or that value's path would not parse back
    pattern = spec.pattern
    if not pattern.flags & re.DOTALL:
        pattern = re.compile(pattern.pattern, pattern.flags | re.DOTALL)
    return _Plan(
        spec,
        spec.render,
        pattern,
        tuple(converters),
        groups,
        free=bool(free_keys),
        splits=_splits(spec, keys),
        lossy=lossy,
    )


def _free(key: KeySpec) -> bool:
    """Whether a key's values are text the policy does not fix (no choices, no table)."""
    if key.type != "str":
        return False
    return "/" in key.allow or (key.choices is None and key.derive is None)


def _components(template: str) -> list[set[str]]:
    """The keys of the fields in each "/"-separated component of ``template``."""
    components: list[set[str]] = [set()]
    for literal, name, _, _ in string.Formatter().parse(template):
        for _ in range(literal.count("/")):
            components.append(set())
        if name:
            components[-1].add(name)
    return components


def _splits(spec: DatasetTypeSpec, keys: Mapping[str, KeySpec]) -> bool:
    """Whether two data IDs of ``spec`` can render one path (free text splitting two ways)."""
    components = _components(spec.template)
    free_keys = [name for name in set().union(*components) if _free(keys[name])]
    if len(free_keys) > 1 and any("/" in keys[name].allow for name in free_keys):
        return True  # a path fragment's "/" can move text between it and another field
    for component in components:
        free = [name for name in component if _free(keys[name])]
        signed = [name for name in component if _signed(keys[name])]
        if len(free) > 1 or (free and signed):
            return True
    return False


def _signed(key: KeySpec) -> bool:
    """Whether a number key may be negative (its '-' then reads as a separator's)."""
    if key.type not in ("int", "float"):
        return False
    low = key.minimum
    return not isinstance(low, int | float) or low < 0


#: Key types whose value a format spec can change: ``{x:.2f}`` rounds, ``{t:%Y}`` drops parts.
_LOSSY_TYPES = frozenset({"float", "date", "datetime", "str"})
#: Longest folder name, in bytes (Linux, macOS and most file systems: 255).
NAME_MAX = 255
#: Longest file name, in bytes: room is left for the hidden temporary name a write
#: goes through (``.NAME.PID-RANDOM.butler-tmp``), which must fit in NAME_MAX too.
FILE_NAME_MAX = NAME_MAX - 55
#: Longest path relative to the repository root, in bytes (PATH_MAX is 4096 with the root).
PATH_MAX = 3072


def layout_problem(path: str) -> str | None:
    """Why ``path`` is not a canonical path below a repository root, or None.

    Canonical: relative, no empty, ``.`` or ``..`` components (so no two spellings
    name one file), every name short enough for the file system.
    """
    if not path:
        return "it is empty"
    if path[0] == "/":
        return "it starts with '/', so it would leave the repository"
    if len(path.encode("utf-8", "surrogatepass")) > PATH_MAX:
        return f"it is longer than {PATH_MAX} bytes"
    parts = path.split("/")
    last = len(parts) - 1
    for index, part in enumerate(parts):
        if part in ("", ".", ".."):
            what = "an empty" if not part else f"a {part!r}"
            why = "would leave the repository" if part == ".." else "would alias another path"
            return f"it has {what} component, which {why}"
        limit = FILE_NAME_MAX if index == last else NAME_MAX
        if len(part) * 4 > limit and len(part.encode("utf-8", "surrogatepass")) > limit:
            kind = "file name" if index == last else "folder name"
            return f"its {kind} {part[:40]!r}... is longer than {limit} bytes"
    return None


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

    __slots__ = ("_normalizer", "_plans", "_sky", "dataset_types", "name", "spec")

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
        self._sky = SkyIds(spec.skymaps, spec.name)

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

    # ---- skymaps -----------------------------------------------------------------------

    @property
    def skymaps(self) -> tuple[str, ...]:
        """The names of the skymaps the policy defines."""
        return self._sky.names

    def skymap(self, name: str) -> SkyMap:
        """The skymap the policy defines as ``name`` (UnknownSkyMapError if none)."""
        return self._sky.skymap(name)

    def sky_keys(self, dataset_type: str, values: Mapping[str, object]) -> dict[str, object]:
        """``values`` with ``patch`` written as the dataset type's skymap writes it
        (``(5, 4)`` -> ``"5,4"``, or -> the index ``4 * nx + 5``)."""
        return self._sky.convert(self._get_plan(dataset_type).spec, values)

    def check_sky(self, dataset_type: str, data_id: Mapping[str, object]) -> None:
        """Refuse a tract not in the dataset type's skymap or a patch not in its tract."""
        self._sky.check(self._get_plan(dataset_type).spec, data_id)

    # ---- data IDs ------------------------------------------------------------------------

    def normalize(self, data_id: Mapping[str, object] | None = None, /, **keys: object) -> DataId:
        """The normalized, checked :class:`DataId` for ``data_id`` updated with ``keys``."""
        if not keys and type(data_id) is DataId and data_id.origin is self._normalizer:
            return data_id
        values: Mapping[str, object]
        if data_id is None:
            values = keys
        elif keys:
            values = {**data_id, **keys}
        else:
            values = data_id
        return DataId.trusted(self._normalizer.normalize(values), self._normalizer)

    def path(
        self, dataset_type: str, data_id: Mapping[str, object] | None = None, /, **keys: object
    ) -> str:
        """The path (relative to a repository root) of ``dataset_type`` for a data ID."""
        plan = self._plans.get(dataset_type) or self._get_plan(dataset_type)
        if keys or type(data_id) is not DataId or data_id.origin is not self._normalizer:
            if plan.spec.skymap is not None:  # patch=(5, 4) -> "5,4" or the index
                data_id = self._sky.convert(plan.spec, {**(data_id or {}), **keys})
                keys = {}
            data_id = self.normalize(data_id, **keys)
        try:
            rendered = plan.render(data_id.fields)
        except KeyError:
            missing = [key for key in plan.required if key not in data_id]
            raise InvalidDataIdError(
                f"data ID {data_id!r} is missing {', '.join(missing)}, needed by dataset type "
                f"{plan.spec.name!r} (template {plan.spec.template!r})"
            ) from None
        if plan.lossy:
            self._check_round_trip(plan, data_id)
        if plan.free:
            problem = layout_problem(rendered)
            if problem is None and plan.splits:
                problem = self._reads_back_as(plan, data_id, rendered)
            if problem is not None:
                raise self._bad_path(plan, data_id, rendered, problem)
        return rendered

    def _reads_back_as(self, plan: _Plan, data_id: DataId, rendered: str) -> str | None:
        """Why ``rendered`` is not read back as ``data_id``, or None.

        Free text can split more than one way: with ``{description}-{style}``, both
        ``a-b``/``c`` and ``a``/``b-c`` render ``a-b-c``. Only the data ID the path
        reads back as may have that file.
        """
        try:
            back = self.parse(plan.spec.name, rendered)
        except InvalidDataIdError:
            return "it does not read back as a data ID of its template"
        differ = {key: value for key, value in back.items() if data_id.get(key) != value}
        if not differ:
            return None
        shown = ", ".join(f"{key}={value!r}" for key, value in differ.items())
        return f"it reads back as {shown}, the data ID that file belongs to"

    @staticmethod
    def _check_round_trip(plan: _Plan, data_id: DataId) -> None:
        """Refuse a value that the template writes as text reading back as another value."""
        for key, spec, convert in plan.lossy:
            value = data_id.fields.get(key)
            if value is None:
                continue
            text = format(value, spec)
            try:
                back = convert(text)
            except ValueError:
                back = None
            if back != value:
                raise InvalidDataIdError(
                    f"{key}={value!r} cannot be stored as {plan.spec.name!r}: its template "
                    f"{plan.spec.template!r} writes it as {text!r}, which reads back as "
                    f"{key}={back!r}, so two data IDs would share one file; give "
                    f"{key}={back!r}"
                )

    def _bad_path(
        self, plan: _Plan, data_id: DataId, rendered: str, problem: str
    ) -> InvalidDataIdError:
        keys = self._normalizer.keys
        culprits = [
            f"{key}={value!r}"
            for key, value in data_id.items()
            if key in plan.required and keys[key].type == "str"
        ]
        return InvalidDataIdError(
            f"data ID {data_id!r} gives dataset type {plan.spec.name!r} the path {rendered!r} "
            f"(template {plan.spec.template!r}), which is refused: {problem}; check the "
            f"value{'s' if len(culprits) > 1 else ''} of {', '.join(culprits)}"
        )

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
        return DataId.trusted(items, self._normalizer)

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
        normalized = DataId.trusted(items, self._normalizer)
        lines = [
            f"dataset type {plan.spec.name!r} of instrument {self.name}",
            f"given: {format_data_id(given)}",
        ]
        lines += [f"  {step}" for step in steps] or ["  (already normalized)"]
        lines.append(f"normalized: {normalized!r}")
        lines.append(f"template: {plan.spec.template}")
        lines.append(f"path: {self.path(dataset_type, normalized)}")
        return "\n".join(lines)
