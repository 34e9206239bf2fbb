"""The registry: an indexed SQL record of every stored dataset (SQLite or PostgreSQL).

>>> registry = Registry.create("sqlite:////tmp/repo/registry.sqlite3", "HSC")  # doctest: +SKIP
>>> registry.register_dataset_type("calexp", {"visit": "int", "ccd": "int"})  # doctest: +SKIP
>>> data_id = {"visit": 903334, "ccd": 22}
>>> registry.insert("calexp", data_id, "calexp/903334/22.fits")  # doctest: +SKIP
>>> registry.find("calexp", data_id)  # doctest: +SKIP
'calexp/903334/22.fits'
"""

from ._identity import new_id as new_dataset_id
from ._registry import DatasetRecord as DatasetRecord
from ._registry import Registry as Registry
from ._registry import StoredDataset as StoredDataset
from ._registry import StoredFile as StoredFile
from ._schema import SCHEMA_VERSION as SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "DatasetRecord",
    "Registry",
    "StoredDataset",
    "StoredFile",
    "new_dataset_id",
]
