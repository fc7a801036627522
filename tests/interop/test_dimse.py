"""The DICOM SCP on a free port, driven by Debian's dcmtk (echoscu, storescu) and by
pynetdicom as a client: known peer stores, unknown AE refused, resends accepted once,
invalid datasets refused with nothing stored. Fixtures: conftest.py, dimse_support.py.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]
from sqlalchemy import select

from tests.interop.dimse_support import Running, dcmtk, needs_dcmtk, sample_file
from xietong.imaging.models import ImagingInstance, ImagingStudy

# File and the storescu option proposing its transfer syntax (as is: no conversion).
FILES = {
    "CT_small.dcm": "-xe",
    "MR_small.dcm": "-xe",
    "JPEG2000.dcm": "-xw",  # JPEG 2000 (lossless or lossy)
    "SC_rgb_rle.dcm": "-xr",  # MR_small_RLE.dcm is MR_small.dcm's instance: a conflict
}
_path = sample_file


def _dcmtk(tool: str, port: int, *args: str, aet: str = "DEMO_CT") -> int:
    return dcmtk(tool, port, *args, aet=aet).returncode


@needs_dcmtk
def test_the_demo_peer_echoes_and_stores(scp: Running) -> None:
    assert _dcmtk("echoscu", scp.port) == 0
    for name, propose in FILES.items():
        assert _dcmtk("storescu", scp.port, propose, _path(name)) == 0, name
    assert scp.count(ImagingInstance) == len(FILES)
    for name in FILES:
        uid = str(dcmread(_path(name), stop_before_pixels=True).SOPInstanceUID)
        assert scp.sender_of(uid) == scp.county_id, name


@needs_dcmtk
def test_a_resend_is_stored_once(scp: Running) -> None:
    assert _dcmtk("storescu", scp.port, _path("CT_small.dcm")) == 0
    assert _dcmtk("storescu", scp.port, _path("CT_small.dcm")) == 0
    assert scp.count(ImagingInstance) == 1
    with scp.factory() as session:
        study = session.execute(select(ImagingStudy)).scalar_one()
        assert study.instance_count == 1


@needs_dcmtk
def test_an_unknown_calling_ae_is_rejected(scp: Running) -> None:
    assert _dcmtk("echoscu", scp.port, aet="STRANGER") != 0
    assert _dcmtk("storescu", scp.port, _path("CT_small.dcm"), aet="STRANGER") != 0
    assert scp.count(ImagingInstance) == 0


@needs_dcmtk
def test_storescu_sends_nothing_of_a_non_dicom_file(scp: Running, tmp_path: Path) -> None:
    """dcmtk refuses the file itself; what reaches the SCP is tested with pynetdicom below."""
    hostile = tmp_path / "hostile.dcm"
    hostile.write_bytes(b"MZ" + b"\x00" * 500)
    assert _dcmtk("storescu", scp.port, str(hostile)) != 0
    assert scp.count(ImagingInstance) == 0


def _send(port: int, dataset: object) -> int:
    ae = AE(ae_title="DEMO_CT")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="XIETONG")
    assert assoc.is_established
    try:
        status = assoc.send_c_store(dataset)  # type: ignore[arg-type]
    finally:
        assoc.release()
    return int(status.Status)


def test_an_invalid_dataset_is_refused_with_nothing_stored(scp: Running) -> None:
    ds = dcmread(_path("CT_small.dcm"))
    del ds.StudyInstanceUID
    assert _send(scp.port, ds) == 0xC000
    assert scp.count(ImagingInstance) == 0
    assert scp.count(ImagingStudy) == 0


def test_a_uid_against_the_grammar_reaches_the_scp_and_is_refused(scp: Running) -> None:
    """The refusal is ours, not the client's: pynetdicom sends the dataset as it is."""
    ds = dcmread(_path("CT_small.dcm"))
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.01"  # a component with a leading zero
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    assert _send(scp.port, ds) == 0xC000
    assert scp.count(ImagingInstance) == 0
    assert scp.count(ImagingStudy) == 0


@needs_dcmtk
def test_other_content_under_a_stored_uid_is_refused(scp: Running) -> None:
    assert _dcmtk("storescu", scp.port, "-xe", _path("MR_small.dcm")) == 0
    # The same SOP Instance UID, RLE-encoded: other bytes, a conflict (0xA900).
    assert _dcmtk("storescu", scp.port, "-xr", _path("MR_small_RLE.dcm")) != 0
    assert scp.count(ImagingInstance) == 1


def test_a_known_title_from_another_address_is_aborted(scp: Running) -> None:
    """DEMO_CT is known from 127.0.0.1 only: the same title from 127.0.0.2 stores nothing."""
    ae = AE(ae_title="DEMO_CT")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="XIETONG", bind_address=("127.0.0.2", 0))
    try:  # the abort may come before or after the request goes out
        status = assoc.send_c_store(dcmread(_path("CT_small.dcm")))
        assert not status or int(status.Status) != 0x0000
    except RuntimeError:  # pynetdicom: "must be established before sending"
        pass
    deadline = time.monotonic() + 5  # the abort is asynchronous: it may follow the answer
    while assoc.is_established and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not assoc.is_established
    assert scp.count(ImagingInstance) == 0


def test_a_pdu_over_the_limit_is_not_read(scp: Running) -> None:
    """A declared PDU length far over the limit closes the connection at once instead of
    waiting for 2 GiB; the server goes on answering others."""
    with socket.create_connection(("127.0.0.1", scp.port), timeout=10) as sock:
        sock.sendall(b"\x01\x00" + (0x7FFF_FFFF).to_bytes(4, "big") + b"\x00" * 64)
        sock.settimeout(10)
        try:
            answer = sock.recv(1024)
        except ConnectionResetError:
            answer = b""
    assert answer == b""  # closed, not waiting for the rest
    ae = AE(ae_title="DEMO_CT")
    ae.add_requested_context("1.2.840.10008.1.1")  # Verification
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="XIETONG")
    assert assoc.is_established
    assert int(assoc.send_c_echo().Status) == 0x0000
    assoc.release()


def test_unknown_callers_when_allowed_echo_but_store_for_nobody(open_scp: Running) -> None:
    """With unknown callers allowed, a stranger is associated (C-ECHO answers) but has no
    institution to store for: 0x0124, nothing stored."""
    ae = AE(ae_title="STRANGER")
    ae.add_requested_context("1.2.840.10008.1.1")  # Verification
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", open_scp.port, ae_title="XIETONG")
    assert assoc.is_established
    try:
        assert int(assoc.send_c_echo().Status) == 0x0000
        assert int(assoc.send_c_store(dcmread(_path("CT_small.dcm"))).Status) == 0x0124
    finally:
        assoc.release()
    assert open_scp.count(ImagingInstance) == 0
