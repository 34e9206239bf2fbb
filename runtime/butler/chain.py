"""Chains of repositories: an output repository and the read-only parents it reads.

    out = Butler.create("out", mapper="hsc", parents=["rerun/a", "/data/hsc"])
    out.get("calexp", visit=903334, ccd=16)     # out, then rerun/a, then /data/hsc

A repository's ``butler.yaml`` lists its ``parents`` (a root, or ``{root, mapper}``
to read that parent with another mapper). Opening a repository flattens its
chain depth first: the repository itself, then each parent followed by that
parent's own parents; a repository reachable twice is searched once, at its
first place. Every parent is opened read-only with its own mapper, its own
runtime dataset types and its own repository overrides; nothing is ever written
to it, not even its registry.

Reads search the chain in order and the first repository that has a match
answers (find-first); a partial data ID that is ambiguous in that repository is
an error, as it would be alone. Queries merge the whole chain, a data ID found
in several repositories counted once. Writes go to the output only.

Opening fails with :class:`~butler.errors.ChainError` when a parent is missing
or not a repository, when parents form a cycle, or when a parent's mapper is
incompatible (another instrument, or a dataset type with other keys).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import dataset_types as runtime_types
from . import overrides as overrides_module
from .config import Parent, read_config, write_config
from .dataid import DataId
from .errors import (
    ChainError,
    ConfigError,
    DatasetNotFoundError,
    InvalidDataIdError,
    RemoteError,
    UnknownDatasetTypeError,
)
from .mapper import Mapper
from .member import ChainMember
from .refs import DatasetRef
from .resolved import Found
from .spec import InstrumentSpec, Value

if TYPE_CHECKING:
    from .butler import Butler
    from .calibrations import CalibrationRef
    from .resolved import Plan

#: How many complete data IDs :meth:`Chain.candidates` takes (an ambiguity lists ten).
CANDIDATES = 11

__all__ = [
    "Chain",
    "Link",
    "ParentLike",
    "check_compatible",
    "is_served",
    "mark_read_only",
    "prepare_parents",
    "resolve_links",
]

#: A parent as ``Butler.create`` takes it: a root, ``(root, mapper)`` or a :class:`Parent`.
ParentLike = str | os.PathLike[str] | tuple[str | os.PathLike[str], str] | Parent


@dataclass(frozen=True)
class Link:
    """One repository of a flattened chain: its root (or a served repository's URL) and
    the mapper to read it with."""

    root: Path | str
    mapper: str | None = None


def is_served(root: object) -> bool:
    """Whether a parent's root is the URL of a served repository (``https://host/repos/name``)."""
    return isinstance(root, str) and root.startswith(("http://", "https://"))


def _parent_root(base: Path, parent: Parent) -> Path:
    path = Path(os.path.expanduser(parent.root))
    return Path(os.path.normpath((path if path.is_absolute() else base / path).absolute()))


def _parent_mapper(base: Path, parent: Parent) -> str | None:
    mapper = parent.mapper
    if mapper is not None and mapper.endswith(".py") and not Path(mapper).is_absolute():
        return str(base / mapper)
    return mapper


def resolve_links(root: Path, parents: Sequence[Parent]) -> list[Link]:
    """The parents of ``root``, flattened depth first; ChainError for a cycle or a missing one.

    Only configuration files are read. A served repository (a URL) is one link: its own
    parents are its server's business (the server searches them).
    """
    links: list[Link] = []
    seen: set[Path | str] = {root.resolve()}

    def walk(base: Path, entries: Sequence[Parent], stack: tuple[Path, ...]) -> None:
        for entry in entries:
            if is_served(entry.root):
                url = entry.root.rstrip("/")
                if url not in seen:
                    seen.add(url)
                    links.append(Link(url, entry.mapper))
                continue
            target = _parent_root(base, entry)
            resolved = target.resolve()
            if resolved in stack:
                cycle = " -> ".join(str(p) for p in (*stack, resolved))
                raise ChainError(
                    f"repositories form a cycle of parents: {cycle}; remove one of these "
                    "parents from its butler.yaml"
                )
            try:
                config = read_config(target)
            except ConfigError as error:
                via = f" (a parent of {base})" if base != root else ""
                raise ChainError(
                    f"parent repository {target}{via} of {root} cannot be opened: {error}"
                ) from None
            if resolved not in seen:
                seen.add(resolved)
                links.append(Link(target, _parent_mapper(base, entry)))
            walk(target, config.parents, (*stack, resolved))

    walk(root, parents, (root.resolve(),))
    return links


def prepare_parents(
    root: Path,
    mapper: Mapper,
    parents: Iterable[ParentLike],
    overrides: Mapping[str, object],
    opener: type[Butler],
) -> tuple[Parent, ...]:
    """The parents of a repository about to be created, checked as opening it would
    (``opener``, the Butler class, opens them).

    Roots become absolute; a served repository's URL stays as given (its token is looked
    up each time the chain is opened: ``$BUTLER_TOKEN`` or the token file, never stored).
    ChainError for a missing parent, a cycle (a parent that already lists ``root``) or an
    incompatible mapper; OverrideError for invalid ``overrides``. Nothing is written.
    """
    overrides_module.apply(mapper.spec, overrides_module.collect(overrides, ()))
    entries = []
    for parent in parents:
        if isinstance(parent, Parent):
            entry = parent
        elif isinstance(parent, tuple):
            entry = Parent(os.fspath(parent[0]), str(parent[1]))
        else:
            entry = Parent(os.fspath(parent))
        if is_served(entry.root):
            entries.append(Parent(entry.root.rstrip("/"), entry.mapper))
            continue
        target = Path(os.path.expanduser(entry.root)).absolute()
        mapper_spec = entry.mapper
        if mapper_spec and mapper_spec.endswith(".py"):
            mapper_spec = str(Path(mapper_spec).absolute())
        entries.append(Parent(str(target), mapper_spec))
    links = resolve_links(root, entries)
    members = _open_members(links, opener)
    try:
        for link, member in zip(links, members, strict=True):
            check_compatible(mapper, member, link.root)
    finally:
        for member in members:
            member.close()
    return tuple(entries)


def mark_read_only(root: str | os.PathLike[str], read_only: bool = True) -> None:
    """Set (or clear) a repository's ``read_only`` flag in its ``butler.yaml``."""
    path = Path(root).absolute()
    config = read_config(path)
    write_config(path, dataclasses.replace(config, read_only=read_only))


def check_compatible(child: Mapper, parent: ChainMember, root: Path | str) -> None:
    """ChainError unless ``parent``'s datasets can be read through ``child``'s mapper."""
    if parent.instrument is not None and child.name != parent.instrument:
        raise ChainError(
            f"parent repository {root} is for instrument {parent.instrument}, not "
            f"{child.name}; a chain holds one instrument's data"
        )
    problems = []
    for name in parent.dataset_types:
        if name not in child.dataset_types:
            continue
        mine, theirs = child.keys(name), dict(parent.dataset_keys(name))
        if "?" in theirs.values():  # a server that names the keys only
            mine = {key: "?" for key in mine}
        if mine != theirs:
            problems.append(f"  {name}: keys {theirs} there, {mine} here")
    if problems:
        shown = "\n".join(problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise ChainError(
            f"the mapper of parent repository {root} is incompatible: dataset types "
            f"have other keys there:\n{shown}{more}\nopen it with a compatible mapper "
            "(parents: [{root: ..., mapper: ...}] in butler.yaml)"
        )


@dataclass
class Chain:
    """An opened repository's runtime context: its parents, runtime dataset types and
    overrides. ``mapper`` is what the repository reads and writes with."""

    root: Path
    policy: InstrumentSpec
    mapper: Mapper
    #: The parents, searched in order after the repository itself; the chain asks them
    #: only what :class:`~butler.member.ChainMember` offers.
    parents: tuple[ChainMember, ...] = ()
    overrides: tuple[overrides_module.Override, ...] = ()
    session: Any = None
    repository: dict[str, object] = field(default_factory=dict)
    own_types: tuple[str, ...] = field(default=())

    # ---- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        owner: Butler,
        *,
        parents: bool = True,
        config: overrides_module.SessionConfig | None = None,
    ) -> Chain:
        """The chain of ``owner``, whose registry and (policy) mapper are open."""
        policy = owner.mapper.spec
        chain = cls(
            owner.root,
            policy,
            owner.mapper,
            session=config,
            repository=dict(owner.config.overrides),
        )
        chain._refresh(owner.registry)
        if parents and owner.config.parents:
            links = resolve_links(owner.root, owner.config.parents)
            chain.parents = _open_members(links, type(owner))
            try:
                for link, member in zip(links, chain.parents, strict=True):
                    check_compatible(chain.mapper, member, link.root)
                chain._inherit()
            except BaseException:
                chain.close()
                raise
        return chain

    def _refresh(self, registry: Any) -> None:
        """Rebuild the mapper: policy + runtime dataset types + overrides (+ inherited)."""
        runtime = runtime_types.definitions(registry, self.policy)
        spec = runtime_types.extend_spec(
            self.policy, runtime.dataset_types, runtime.keys, runtime.formats
        )
        self.own_types = runtime.names
        self.overrides = tuple(overrides_module.collect(self.repository, self.session))
        spec = overrides_module.apply(spec, self.overrides)
        self.mapper = Mapper(spec)
        if self.parents:
            self._inherit()

    def _inherit(self) -> None:
        """Add the parents' runtime dataset types this repository does not define."""
        spec = self.mapper.spec
        known = set(self.mapper.dataset_types)
        types, keys, formats = [], [], []
        for member in self.parents:
            runtime = member.runtime_types()
            for defined in runtime.dataset_types:
                if defined.name in known:
                    continue
                known.add(defined.name)
                types.append(defined)
            keys += list(runtime.keys)
            formats += list(runtime.formats)
        if types:
            self.mapper = Mapper(runtime_types.extend_spec(spec, types, keys, formats))

    def close(self) -> None:
        for member in self.parents:
            member.close()
        self.parents = ()

    def register(self, owner: Butler, text: str, file: str) -> Mapper:
        """Record runtime definitions in the owner's registry; the owner's new mapper."""
        runtime_types.register(owner.registry, self.policy, text, file=file)
        self._refresh(owner.registry)
        return self.mapper

    def dataset_type(self, owner: Butler, name: str) -> Any:
        """The spec of ``name``, re-reading runtime definitions once if it is unknown."""
        try:
            return owner.mapper.dataset_type(name)
        except UnknownDatasetTypeError:
            self._refresh(owner.registry)
            if name not in self.mapper.dataset_types:
                raise
            owner.use_mapper(self.mapper)
            return self.mapper.dataset_type(name)

    # ---- find-first reads --------------------------------------------------------------------

    def find(self, owner: Butler, plan: Plan, data_id: DataId) -> Found | None:
        """The first parent's match for ``data_id``, with the data ID as ``owner`` writes it
        and the parent's ref (read by the chain's :meth:`read`)."""
        name = plan.spec.name
        for member in self.parents:
            if name not in member.dataset_types:
                continue
            try:
                ref = member.find_ref(name, dict(data_id))
            except InvalidDataIdError:  # not a data ID of this parent's (AmbiguousDataIdError
                continue  # is no InvalidDataIdError: an ambiguous match is the answer)
            if ref is not None:
                return self.found(owner, member, ref)
        return None

    def found(self, owner: Butler, member: ChainMember, ref: DatasetRef) -> Found:
        """The :class:`Found` of a parent's ``ref``, its data ID as ``owner`` writes it."""
        data_id = owner.mapper.normalize(dict(ref.data_id))
        return Found(data_id, "", member, ref.id, ref=dataclasses.replace(ref, data_id=data_id))

    def holder(self, ref: DatasetRef) -> ChainMember | None:
        """The parent ``ref`` is from (by repository id), if any."""
        for member in self.parents:
            if member.repository_id == ref.repository:
                return member
        return None

    def find_calibration(
        self, dataset_type: str, data_id: Mapping[str, object], as_of: object
    ) -> tuple[ChainMember, CalibrationRef] | None:
        """The calibration the first parent that has one certifies for an observation, as its
        registry stood ``as_of``; None if none does."""
        for member in self.parents:
            if dataset_type not in member.dataset_types:
                continue
            try:
                return member, member.find_calibration(dataset_type, data_id, as_of=as_of)
            except (DatasetNotFoundError, InvalidDataIdError):
                continue  # CalibrationNotFoundError is a DatasetNotFoundError
        return None

    def read(self, found: Found, method: str, *args: Any) -> Any:
        """``get``, ``get_metadata``, ``get_section`` or ``get_table_info`` of a parent's dataset,
        by its ref (the parent checks that it is still stored)."""
        ref = found.ref
        assert ref is not None, "a parent's Found carries its ref"
        member = found.repository
        if method == "read":
            return member.get(ref)
        if method == "read_metadata":
            return member.get_metadata(ref)
        if method == "read_section":
            return member.get_section(ref, *args)
        if method == "read_table_info":
            return member.get_table_info(ref)
        raise ValueError(f"no such read: {method}")

    def candidates(
        self, owner: Butler, dataset_type: str, partial: Mapping[str, Value]
    ) -> list[dict[str, Value]]:
        """Complete data IDs from the first parent that has any (for ``lookup`` keys)."""
        for member in self.parents:
            if dataset_type not in member.dataset_types:
                continue
            found = member.query(dataset_type, dict(partial))
            rows = [dict(row) for row in itertools.islice(found, CANDIDATES)]
            if rows:
                return rows
        return []

    def _rows(
        self, owner: Butler, dataset_type: str, partial: dict[str, Value]
    ) -> Iterator[Mapping[str, Any]]:
        """Every matching data ID of every repository of the chain, the output's first."""
        if owner.is_registered(dataset_type):
            yield from owner.registry.query(dataset_type, partial)
        for member in self.parents:
            if dataset_type in member.dataset_types:
                yield from member.query_rows(dataset_type, partial)

    def query(
        self, owner: Butler, dataset_type: str, partial: dict[str, Value]
    ) -> Iterator[DataId]:
        """Data IDs across the chain, each once, in chain order."""
        if not self.parents:
            if not owner.is_registered(dataset_type):
                return iter(())
            rows = owner.registry.query(dataset_type, partial)
            return (owner.mapper.normalize(row) for row in rows)
        return self._merged(owner, dataset_type, partial)

    def _merged(
        self, owner: Butler, dataset_type: str, partial: dict[str, Value]
    ) -> Iterator[DataId]:
        keys = tuple(owner.mapper.keys(dataset_type))
        seen: set[tuple[Any, ...]] = set()
        for row in self._rows(owner, dataset_type, partial):
            key = tuple(row[k] for k in keys)
            if key in seen:
                continue
            seen.add(key)
            yield owner.mapper.normalize({k: row[k] for k in keys})

    def query_values(
        self, owner: Butler, dataset_type: str, key: str, partial: dict[str, Value]
    ) -> list[Value]:
        values: set[Any] = set()
        if owner.is_registered(dataset_type):
            values.update(owner.registry.query_values(dataset_type, key, partial))
        for member in self.parents:
            if dataset_type in member.dataset_types:
                values.update(member.query_values(dataset_type, key, partial))
        return sorted(values)

    def count(self, owner: Butler, dataset_type: str, partial: dict[str, Value]) -> int:
        if not self.parents:
            if not owner.is_registered(dataset_type):
                return 0
            return owner.registry.count(dataset_type, partial)
        return sum(1 for _ in self._merged(owner, dataset_type, partial))

    def registries(self, owner: Butler, action: str) -> list[Butler]:
        """The repository and its parents as Butlers whose registries run SQL here (the query
        engine's ``with_datasets``/``without_datasets`` and sky queries, which look across
        the chain); RemoteError naming ``action`` for a served parent."""
        found: list[Butler] = [owner]
        for member in self.parents:
            local = member.local()
            if local is None:
                raise RemoteError(
                    f"cannot {action}: parent repository {member.address} is served, and a "
                    "query with with_datasets=, without_datasets= or a sky region looks across "
                    "the chain's registries, which must be local; use where= and keyword "
                    "values (which a served parent runs itself), or ask that repository directly"
                )
            found.append(local)
        return found

    # ---- what to tell the user -------------------------------------------------------------

    def searched(self, owner: Butler) -> str:
        """Which registries a failed lookup searched, in order."""
        if not self.parents:
            return f"registry {owner.registry.url}"
        shown = [f"{owner.root} (registry {owner.registry.url})"]
        shown += [member.description for member in self.parents]
        return "repositories " + ", then ".join(shown)

    def answered(self, owner: Butler, found: Found) -> str:
        """``stored in repository ROOT at 'PATH'`` for the repository that answered."""
        if found.repository is owner:
            return f"stored in repository {owner.root} at {found.path!r}"
        where = found.repository.uri(found.ref) if found.ref is not None else found.path
        return f"stored in parent repository {found.repository.address} at {where!r}"

    def explain_notes(self, dataset_type: str) -> str:
        lines = overrides_module.describe(self.overrides, dataset_type)
        if dataset_type in self.own_types:
            lines.insert(0, "defined at run time in this repository (register_dataset_type)")
        return "".join(f"\n{line}" for line in lines)


def _open_members(links: Sequence[Link], opener: type[Butler]) -> tuple[ChainMember, ...]:
    """Open each link read-only, alone, with ``opener`` (the Butler class: the chain is a
    feature of the Butler and imports it only for type checking; given a served
    repository's URL it opens a client, whose token is ``$BUTLER_TOKEN`` or the token
    file's)."""
    members: list[ChainMember] = []
    try:
        for link in links:
            members.append(
                opener(link.root, writeable=False, mapper=link.mapper, parents=False, config=())
            )
    except BaseException:
        for member in members:
            member.close()
        raise
    return tuple(members)
