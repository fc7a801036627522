"""WADO-RS helpers: an instance's stored bytes and its metadata as DICOM JSON.

Metadata is read from the stored file without its pixel data; large values (and the
pixel data, which is not read at all) are given as BulkDataURIs rather than inline.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from pydicom import dcmread
from pydicom.dataelem import DataElement

from xietong.core.storage import BlobStore
from xietong.imaging.models import ImagingInstance

BULK_THRESHOLD = 1024


def read_bytes(blobs: BlobStore, instance: ImagingInstance) -> bytes:
    with blobs.open(instance.blob_key) as handle:
        return handle.read()


def metadata(blobs: BlobStore, instance: ImagingInstance, instance_url: str) -> dict[str, Any]:
    """The instance's attributes as DICOM JSON, pixel data as a BulkDataURI."""
    ds = dcmread(BytesIO(read_bytes(blobs, instance)), stop_before_pixels=True)

    def bulk(elem: DataElement) -> str:
        return f"{instance_url}/bulkdata/{elem.tag:08X}"

    result: dict[str, Any] = ds.to_json_dict(
        bulk_data_threshold=BULK_THRESHOLD, bulk_data_element_handler=bulk
    )
    if instance.rows:
        result["7FE00010"] = {"vr": "OW", "BulkDataURI": f"{instance_url}/frames/1"}
    return result
