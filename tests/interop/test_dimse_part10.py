"""The SCP's two shortcuts past pynetdicom. It writes each received instance as Part 10
itself (not through a per-instance file meta dataset): the bytes must be pynetdicom's,
byte for byte, or a resend of an instance stored before would hash differently and be
refused. It copies its presentation contexts for each association by hand: the copy must
be a deep copy."""

from __future__ import annotations

import copy
from io import BytesIO
from types import SimpleNamespace

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
)
from pynetdicom import AE, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event
from pynetdicom.presentation import AllStoragePresentationContexts

from xietong.interop.dimse.scp import TRANSFER_SYNTAXES, Contexts, part10


def _event(sop_class: str, sop_instance: str, syntax: str, dataset: bytes) -> Event:
    request = C_STORE()
    request.AffectedSOPClassUID = UID(sop_class)
    request.AffectedSOPInstanceUID = UID(sop_instance)
    request.DataSet = BytesIO(dataset)
    context = SimpleNamespace(transfer_syntax=UID(syntax))
    return Event(None, evt.EVT_C_STORE, {"request": request, "context": context})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sop_instance", "syntax"),
    [
        ("1.2.3.4", ExplicitVRLittleEndian),  # even length
        ("1.2.3.45", ImplicitVRLittleEndian),  # odd length: padded with NUL
        ("1.2.840.113619.2.55.3.604688119.969.1268071029.320", ExplicitVRBigEndian),
        ("9" * 64, JPEG2000Lossless),
    ],
)
def test_part10_is_pynetdicoms_encoding(sop_instance: str, syntax: str) -> None:
    body = b"\x08\x00\x16\x00UI\x1a\x001.2.840.10008.5.1.4.1.1.2\x00"
    event = _event("1.2.840.10008.5.1.4.1.1.2", sop_instance, syntax, body)
    assert part10(event) == event.encoded_dataset(include_meta=True)


def test_part10_reads_back_as_the_file_it_describes() -> None:
    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    original = dcmread(path)
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    write_dataset(out, original)
    dataset = out.getvalue()
    event = _event(original.SOPClassUID, original.SOPInstanceUID, ExplicitVRLittleEndian, dataset)
    stored = dcmread(BytesIO(part10(event)))
    assert stored.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
    assert stored.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert stored.PatientName == original.PatientName


def test_an_unusual_uid_takes_pynetdicoms_path() -> None:
    event = _event("1.2.840.10008.5.1.4.1.1.2", "1.02.3", ExplicitVRLittleEndian, b"")
    assert part10(event) == event.encoded_dataset(include_meta=True)


def test_the_fast_context_copy_is_a_deep_copy() -> None:
    """pynetdicom deep-copies the server's contexts for each association; ours copies each
    context and its transfer syntax list, which must give the same thing."""
    ae = AE()
    for context in AllStoragePresentationContexts[:5]:
        ae.add_supported_context(
            context.abstract_syntax, TRANSFER_SYNTAXES, scu_role=True, scp_role=True
        )
    contexts = Contexts(ae.supported_contexts)
    fast = copy.deepcopy(contexts)
    slow = copy.deepcopy(list(ae.supported_contexts))
    assert [vars(c) for c in fast] == [vars(c) for c in slow]
    assert all(f is not o for f, o in zip(fast, contexts, strict=True))
    fast[0].transfer_syntax.append(UID("1.2.3"))  # the copy's list is its own
    assert UID("1.2.3") not in contexts[0].transfer_syntax
