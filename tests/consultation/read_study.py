"""A small generated CT study for the read tests and the browser test's seed: axial
slices of a bright disc in a dark field, one series, real pixel data."""

from __future__ import annotations

from io import BytesIO

import numpy as np
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def ct_slices(
    patient_id: str, count: int = 3, size: int = 64, study_uid: str | None = None
) -> list[bytes]:
    """``count`` axial CT slices of one study and series: a bright disc in noise."""
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    yy, xx = np.mgrid[0:size, 0:size]
    files = []
    for index in range(count):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        sop_uid = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.PatientID = patient_id
        ds.PatientName = "张^建国"
        ds.PatientBirthDate = "19800101"
        ds.PatientSex = "M"
        ds.StudyDate = "20261120"
        ds.StudyTime = "100000"
        ds.StudyID = "1"
        ds.AccessionNumber = "A1"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = "CT chest"
        ds.Modality = "CT"
        ds.BodyPartExamined = "CHEST"
        ds.SeriesNumber = 1
        ds.InstanceNumber = index + 1
        ds.ImagePositionPatient = [0.0, 0.0, float(index * 5)]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [0.7, 0.7]
        ds.SliceThickness = 5.0
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        disc = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (size / 4) ** 2
        pixels = np.where(disc, 1100, 24).astype(np.uint16) + index
        ds.PixelData = pixels.tobytes()
        out = BytesIO()
        ds.save_as(out, enforce_file_format=True)
        files.append(out.getvalue())
    return files
