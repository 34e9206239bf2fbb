"""Every user-facing failure of the runtime raises from :class:`ButlerError`.

Messages are written for the person who reads them: they name the dataset type,
the data ID (as normalized), what was searched and what would fix the problem.
Catch ``ButlerError`` to handle any of them; catch a subclass to handle one case.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousCalibrationError",
    "AmbiguousDataIdError",
    "BundleError",
    "ButlerError",
    "CalibrationNotFoundError",
    "ChainError",
    "ConfigError",
    "ConflictError",
    "DatasetCorruptError",
    "DatasetExistsError",
    "DatasetNotFoundError",
    "DatasetTypeDefinitionError",
    "ForeignRefError",
    "FormatError",
    "InvalidDataIdError",
    "InvalidQueryError",
    "InvalidRegionError",
    "MapperError",
    "MapperVersionError",
    "ObjectMissingError",
    "ObjectStoreAccessError",
    "ObjectStoreError",
    "ObjectStoreUnavailableError",
    "ObjectTypeError",
    "OverrideError",
    "ReadOnlyError",
    "RegistryError",
    "RegistryNotFoundError",
    "RemoteError",
    "RepositoryError",
    "SkyMapDefinitionError",
    "StorageFullError",
    "UnknownDatasetTypeError",
    "UnknownSkyMapError",
]


class ButlerError(Exception):
    """Base class of every error Butler raises on purpose."""


class MapperError(ButlerError):
    """A mapper module could not be found, loaded or used."""


class MapperVersionError(MapperError):
    """A generated mapper module was built by an incompatible compiler."""


class UnknownDatasetTypeError(ButlerError, KeyError):
    """A dataset type name that the mapper or repository does not define."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidDataIdError(ButlerError, ValueError):
    """A data ID key or value that the policy does not allow."""


class InvalidQueryError(ButlerError, ValueError):
    """A query expression (``where``), bind value or query argument that cannot be run.

    The message shows the expression with a caret under the part at fault and, for a
    misspelt key, a did-you-mean. ``expression`` is the text, ``start``/``end`` the
    character offsets of the part at fault (``None`` when no part is).
    """

    def __init__(
        self,
        message: str,
        expression: str = "",
        start: int | None = None,
        end: int | None = None,
    ) -> None:
        super().__init__(message)
        self.expression = expression
        self.start = start
        self.end = end


class AmbiguousDataIdError(ButlerError):
    """A partial data ID that matches more than one stored dataset."""


class DatasetNotFoundError(ButlerError, LookupError):
    """No stored dataset for a dataset type and data ID."""


class ForeignRefError(DatasetNotFoundError):
    """A dataset ref from a repository that is not in the chain asked (see butler.refs)."""


class DatasetExistsError(ButlerError):
    """A put that would overwrite an existing dataset without ``overwrite=True``."""


class CalibrationNotFoundError(DatasetNotFoundError):
    """No certified calibration is valid for an observation."""


class AmbiguousCalibrationError(ButlerError):
    """Several certified calibrations are valid and no rule picks one."""


class RepositoryError(ButlerError):
    """A repository that is missing, malformed or inconsistent."""


class ConfigError(RepositoryError):
    """A repository configuration file that does not validate."""


class ReadOnlyError(RepositoryError):
    """A write to a repository opened read-only."""


class RegistryError(ButlerError):
    """The registry database refused or failed an operation."""


class RegistryNotFoundError(RegistryError):
    """A database that holds no Butler registry (none was created there, or it was lost)."""


class FormatError(ButlerError):
    """A file that cannot be read or written in its declared format."""


class DatasetCorruptError(FormatError):
    """A stored dataset's file is not what was written: its size (checked on get) or its
    checksum (checked by ``butler verify --read``) differs from the recorded one."""


class StorageFullError(ButlerError):
    """The disk that holds the repository's files or its registry is full; nothing was changed.

    Removing datasets still works on a full disk, and frees space.
    """


class ObjectTypeError(FormatError, TypeError):
    """An object that its dataset type's format cannot hold (a ``str`` put as a ``dict``
    dataset; an image metadata value that is not a scalar); refused before anything is
    written."""


class ChainError(RepositoryError):
    """A chain of repositories that cannot be opened: a cycle, a missing parent, a mapper
    that does not fit."""


class ConflictError(ButlerError):
    """Another writer recorded something different at the same time; nothing was changed."""


class DatasetTypeDefinitionError(ButlerError):
    """A dataset type defined at run time that the compiler's rules reject.

    ``diagnostics`` holds the compiler's findings (codes, spans, hints); the
    message shows them as ``butlerc check`` would.
    """

    def __init__(self, message: str, diagnostics: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics


class OverrideError(ConfigError):
    """An override of a policy setting (repository, ``--config`` or environment) that is
    not valid."""


class ObjectStoreError(RepositoryError):
    """The object store (S3) refused or failed a request. The message names the bucket
    and key (``s3://bucket/key``), the endpoint, and what to check; nothing stored was
    changed. ``uri`` is the object or bucket asked about."""

    def __init__(self, message: str, uri: str = "") -> None:
        super().__init__(message)
        self.uri = uri


class ObjectStoreUnavailableError(ObjectStoreError):
    """The object store did not answer, answered too slowly, or answered 500/503, and
    still did after the retries that were safe."""


class ObjectStoreAccessError(ObjectStoreError):
    """The object store refused the credentials or the permission (403, a bad access key
    or signature)."""


class ObjectMissingError(ObjectStoreError, LookupError):
    """No object (or no bucket) at the key asked."""


class UnknownSkyMapError(ButlerError, KeyError):
    """A skymap name that is not bundled (nor defined by the policy)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SkyMapDefinitionError(ButlerError, ValueError):
    """Skymap parameters out of range (rings, scale, overlap, patch sizes, radii)."""


class InvalidRegionError(ButlerError, ValueError):
    """A sky region that cannot be built (a declination past a pole, too few vertices)."""


class BundleError(ButlerError):
    """A bundle (``butler export``) that cannot be imported: malformed, of another
    instrument, hostile (a path leaving its folder, a link, an entry larger than its
    manifest says), or holding a file whose checksum is not the one recorded."""


class RemoteError(ButlerError):
    """The server of a remote repository cannot be reached, refused the request (a missing
    or unknown token, a request too large, too many queries at once) or failed; the message
    names the server (see docs/remote.md)."""
