"""A synthetic chest-and-abdomen CT, generated (never a real patient's images): a body
ellipse with a fat rim, two lungs that taper towards the base, a heart with contrast in the
chambers and the aorta, a spine (cortex and cancellous bone), a liver below the diaphragm,
and a little noise. 16-bit signed with RescaleIntercept -1024, like a scanner's output; the
series description says it is synthetic.

The UIDs derive from ``seed`` (the same seed gives the same study), so loading the demo
twice finds the study already there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from io import BytesIO

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

DESCRIPTION = "合成演示 CT / synthetic demo CT"
INTERCEPT = -1024
AIR, FAT, SOFT, LUNG, BLOOD, CONTRAST, CORTEX, MARROW, LIVER = (
    -1000, -100, 40, -850, 45, 260, 900, 250, 60,
)  # fmt: skip


@dataclass(frozen=True)
class PhantomPatient:
    name: str  # DICOM PN, e.g. "王^德福"
    patient_id: str  # the sending institution's MRN
    birth_date: str = ""  # YYYYMMDD
    sex: str = ""  # M, F, O
    other_ids: tuple[str, ...] = ()  # resident ID numbers


def study_uid_for(seed: str) -> str:
    return str(generate_uid(entropy_srcs=[seed, "study"]))


def _ellipse(
    x: NDArray[np.float32], y: NDArray[np.float32], cx: float, cy: float, rx: float, ry: float
) -> NDArray[np.bool_]:
    if rx <= 0 or ry <= 0:
        return np.zeros(x.shape, dtype=bool)
    result: NDArray[np.bool_] = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0
    return result


def _slice_hu(
    x: NDArray[np.float32], y: NDArray[np.float32], t: float, rng: np.random.Generator
) -> NDArray[np.float32]:
    """Hounsfield units at height ``t`` (0 = pelvis end, 1 = lung apices); x, y in mm."""
    hu = np.full(x.shape, AIR, dtype=np.float32)
    hu[_ellipse(x, y, 0, 10, 165, 120)] = FAT
    hu[_ellipse(x, y, 0, 10, 155, 110)] = SOFT
    chest = max(0.0, (t - 0.45) / 0.55)  # the thorax from 45 % of the height up
    if chest > 0:
        lung_r = 70 * np.sqrt(min(1.0, chest * 1.6)) * (1 - 0.6 * max(0.0, chest - 0.7) / 0.3)
        hu[_ellipse(x, y, -72, 0, lung_r, lung_r * 1.25)] = LUNG
        hu[_ellipse(x, y, 72, 0, lung_r, lung_r * 1.25)] = LUNG
        if 0.15 < chest < 0.6:  # the heart between the lungs, contrast in its chambers
            hu[_ellipse(x, y, 15, -25, 55, 45)] = BLOOD
            hu[_ellipse(x, y, 25, -25, 22, 18)] = CONTRAST
    else:
        liver_r = 80 * min(1.0, (t - 0.2) / 0.2) if t > 0.2 else 0.0
        hu[_ellipse(x, y, -55, 0, liver_r, liver_r * 0.8)] = LIVER
    hu[_ellipse(x, y, 0, 35, 14, 14)] = CONTRAST  # the aorta, in front of the spine
    hu[_ellipse(x, y, 0, 75, 24, 20)] = CORTEX  # vertebral body
    hu[_ellipse(x, y, 0, 75, 18, 14)] = MARROW
    hu[_ellipse(x, y, 0, 108, 8, 14)] = CORTEX  # spinous process
    hu += rng.standard_normal(size=hu.shape, dtype=np.float32) * 12
    return hu


def synthetic_ct(
    patient: PhantomPatient,
    *,
    seed: str,
    slices: int = 100,
    size: int = 512,
    slice_spacing: float = 3.0,
    study_date: date | None = None,
    accession: str = "",
) -> Iterator[bytes]:
    """The series' instances as DICOM Part 10 files, from the feet up."""
    spacing = 360.0 / size
    axis = (np.arange(size, dtype=np.float32) - size / 2 + 0.5) * spacing
    x, y = np.meshgrid(axis, axis)
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8]))
    study_uid = study_uid_for(seed)
    series_uid = str(generate_uid(entropy_srcs=[seed, "series"]))
    frame_uid = str(generate_uid(entropy_srcs=[seed, "frame"]))
    day = (study_date or date(2026, 11, 20)).strftime("%Y%m%d")
    for index in range(slices):
        t = index / max(slices - 1, 1)
        hu = _slice_hu(x, y, t, rng)
        stored = np.clip(np.rint(hu) - INTERCEPT, -2048, 4095).astype("<i2")
        z = -slice_spacing * (slices - 1 - index)
        sop_uid = str(generate_uid(entropy_srcs=[seed, "instance", str(index)]))
        yield _file(
            patient,
            stored,
            sop_uid=sop_uid,
            study_uid=study_uid,
            series_uid=series_uid,
            frame_uid=frame_uid,
            number=index + 1,
            position=(float(axis[0]), float(axis[0]), z),
            spacing=spacing,
            thickness=slice_spacing,
            day=day,
            accession=accession,
        )


def _file(
    patient: PhantomPatient,
    stored: NDArray[np.int16],
    *,
    sop_uid: str,
    study_uid: str,
    series_uid: str,
    frame_uid: str,
    number: int,
    position: tuple[float, float, float],
    spacing: float,
    thickness: float,
    day: str,
    accession: str,
) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = day
    ds.StudyTime = ds.SeriesTime = "093000"
    ds.AccessionNumber = accession
    ds.Modality = "CT"
    ds.Manufacturer = "Xietong"
    ds.StudyDescription = DESCRIPTION
    ds.SeriesDescription = DESCRIPTION
    ds.BodyPartExamined = "CHEST"
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    if patient.other_ids:
        ds.OtherPatientIDs = list(patient.other_ids)
    ds.SliceThickness = f"{thickness:g}"
    ds.KVP = "120"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 2
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [f"{v:.3f}" for v in position]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = frame_uid
    ds.SliceLocation = f"{position[2]:.3f}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.PixelSpacing = [f"{spacing:.6f}", f"{spacing:.6f}"]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.RescaleIntercept = str(INTERCEPT)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.PixelData = stored.tobytes()
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
