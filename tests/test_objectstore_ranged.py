"""FITS and HDF5 read by byte range from a real S3-protocol server (butler.objectstore.ranged):
a header and a section of an image, and a slice of an HDF5 dataset, without downloading the
whole object. What crossed the network is counted by the file object.
"""

from __future__ import annotations

import io

import h5py
import numpy as np
import pytest
from astropy.io import fits
from butler.errors import ObjectMissingError
from butler.objectstore import ObjectStore, S3Location, S3Settings
from butler.objectstore.ranged import RangedFile


@pytest.fixture
def store(s3_location: S3Location, s3_settings: S3Settings) -> ObjectStore:
    return ObjectStore(s3_location, s3_settings)


def test_fits_header_and_section_by_range(store: ObjectStore) -> None:
    image = np.arange(2048 * 2048, dtype=np.int32).reshape(2048, 2048)
    header = fits.Header({"VISIT": 903334, "CCD": 16})
    buffer = io.BytesIO()
    fits.PrimaryHDU(image, header).writeto(buffer)
    store.put_new("calexp.fits", buffer.getvalue(), "crc32c:0")
    size = len(buffer.getvalue())

    remote = RangedFile(store, "calexp.fits")
    with fits.open(remote) as hdus:
        assert hdus[0].header["VISIT"] == 903334
        assert remote.bytes_fetched < 10_000  # the header blocks only
        section = hdus[0].section[1000:1200, 300:500]
    np.testing.assert_array_equal(section, image[1000:1200, 300:500])
    assert remote.bytes_fetched < 0.05 * size
    assert remote.requests <= 205  # the header, then one range per row


def test_hdf5_slice_by_range(store: ObjectStore) -> None:
    values = np.random.default_rng(1).random((1024, 1024))
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.create_dataset("flux", data=values, chunks=(64, 64))
        h5.attrs["visit"] = 903334
    store.put_new("table.h5", buffer.getvalue(), "crc32c:0")

    remote = RangedFile(store, "table.h5", block_size=1 << 16)
    with h5py.File(remote, "r") as h5:
        assert h5.attrs["visit"] == 903334
        np.testing.assert_array_equal(h5["flux"][100:120, 200:260], values[100:120, 200:260])
    assert remote.bytes_fetched < 0.1 * len(buffer.getvalue())


def test_reads_past_the_end_and_a_missing_object(store: ObjectStore) -> None:
    store.put_new("small", b"0123456789", "crc32c:0")
    remote = RangedFile(store, "small", block_size=4)
    remote.seek(8)
    assert remote.read(10) == b"89"
    assert remote.read() == b""
    remote.seek(-4, io.SEEK_END)
    assert remote.read() == b"6789"
    assert io.BufferedReader(RangedFile(store, "small")).read() == b"0123456789"
    with pytest.raises(ObjectMissingError, match=r"no object at s3://.*/repo/absent"):
        RangedFile(store, "absent")
