"""Object storage (S3 and S3-compatible stores): locations, a conditional-write client,
a local read cache shared between processes, and ranged reads for FITS and HDF5.

The S3 datastore is built on these; each module has one job:
:mod:`.location` (``s3://bucket/prefix`` and safe keys), :mod:`.settings` (endpoint,
profile, time-outs, retries), :mod:`.failures` (every failure as a ``ButlerError``),
:mod:`.client` (``ObjectStore``), :mod:`.cache` (``ReadCache``) and :mod:`.ranged`
(``RangedFile``, a seekable file over byte-range GETs).
"""

from __future__ import annotations

from .client import CHECKSUM_META as CHECKSUM_META
from .client import PUT_ID_META as PUT_ID_META
from .client import ObjectInfo as ObjectInfo
from .client import ObjectStore as ObjectStore
from .client import Source as Source
from .client import Upload as Upload
from .location import S3Location as S3Location
from .location import check_relative as check_relative
from .location import is_s3_uri as is_s3_uri
from .settings import S3Settings as S3Settings
from .settings import make_client as make_client
