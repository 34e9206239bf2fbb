"""A repository's configuration file, ``butler.yaml``: reading, validating, writing.

The file is validated against ``butler/schemas/repository.schema.json``. A bad
file raises :class:`~butler.errors.ConfigError` naming the file, the line and
what is wrong, e.g. ``repo/butler.yaml:3: 'read_only': 'yes' is not of type 'boolean'``.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

# yaml and jsonschema (and importlib.resources, for the schema) are imported by the
# functions that read, validate or write a file, not by importing the runtime.
if TYPE_CHECKING:
    import yaml

__all__ = [
    "CONFIG_NAME",
    "DURABILITY",
    "Parent",
    "RepositoryConfig",
    "parse_config",
    "read_config",
    "software_versions",
    "write_config",
]

CONFIG_NAME = "butler.yaml"
FORMAT_VERSION = 1
#: The values of ``durability``: when a put's file is fsynced (see the schema).
DURABILITY = ("put", "close")


@dataclass(frozen=True)
class Parent:
    """A parent repository of a chain, with its own mapper if it names one."""

    root: str
    mapper: str | None = None


@dataclass(frozen=True)
class RepositoryConfig:
    """The validated content of ``butler.yaml``."""

    mapper: str
    registry: str
    read_only: bool = False
    durability: str = "put"
    parents: tuple[Parent, ...] = ()
    #: The repository's UUID, as its registry records it (None: made before ids existed).
    repository_id: str | None = None
    created_by: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, object] = field(default_factory=dict)

    def to_yaml(self) -> str:
        import yaml

        data: dict[str, Any] = {
            "butler": FORMAT_VERSION,
            "mapper": self.mapper,
            "registry": self.registry,
        }
        if self.repository_id is not None:
            data["repository_id"] = self.repository_id
        if self.read_only:
            data["read_only"] = True
        if self.durability != "put":
            data["durability"] = self.durability
        if self.parents:
            data["parents"] = [
                {"root": p.root, "mapper": p.mapper} if p.mapper else p.root for p in self.parents
            ]
        if self.created_by:
            data["created_by"] = dict(self.created_by)
        if self.overrides:
            data["overrides"] = dict(self.overrides)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@functools.cache
def _schema() -> dict[str, Any]:
    from importlib import resources

    text = resources.files("butler").joinpath("schemas/repository.schema.json").read_text("utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


def software_versions() -> dict[str, str]:
    """The versions of the software writing a repository, for provenance."""
    import platform
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in ("butler", "sqlalchemy", "astropy", "h5py", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _line_of(node: yaml.Node | None, path: list[str | int]) -> int | None:
    """The 1-based line of the YAML node at ``path`` (or of its nearest ancestor)."""
    import yaml

    line = None if node is None else node.start_mark.line + 1
    for step in path:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == step:
                    node = value_node
                    line = value_node.start_mark.line + 1
                    break
            else:
                return line
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value)
        ):
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def read_config(root: Path) -> RepositoryConfig:
    """Read and validate ``root/butler.yaml``."""
    path = root / CONFIG_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{root} is not a Butler repository: it has no {CONFIG_NAME}; "
            "create one with `butler create ROOT --mapper INSTRUMENT`"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path | str) -> RepositoryConfig:
    """Validate the text of a ``butler.yaml`` (``path`` names it in messages: a file, or an
    object's URI for a repository in object storage)."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(error, 'problem', error)}") from None
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for problem in errors:
            location = list(problem.absolute_path)
            if problem.validator == "additionalProperties" and isinstance(problem.instance, dict):
                known = set(problem.schema.get("properties", {}))
                extra = sorted(k for k in problem.instance if k not in known)
                location += extra[:1]  # point at the unexpected field itself
            line = _line_of(node, location)
            where = f"{path}:{line}" if line else str(path)
            field_name = ".".join(str(p) for p in location) or "(top level)"
            lines.append(f"{where}: {field_name}: {problem.message}")
        raise ConfigError("invalid repository configuration:\n" + "\n".join(lines))
    parents = tuple(
        Parent(p) if isinstance(p, str) else Parent(p["root"], p.get("mapper"))
        for p in data.get("parents", [])
    )
    return RepositoryConfig(
        mapper=data["mapper"],
        registry=data["registry"],
        read_only=bool(data.get("read_only", False)),
        durability=str(data.get("durability", "put")),
        parents=parents,
        repository_id=data.get("repository_id"),
        created_by=dict(data.get("created_by", {})),
        overrides=dict(data.get("overrides", {})),
    )


def write_config(root: Path, config: RepositoryConfig) -> None:
    """Write ``root/butler.yaml`` atomically."""
    root.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=root, prefix=".butler.yaml.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(config.to_yaml())
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, root / CONFIG_NAME)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
