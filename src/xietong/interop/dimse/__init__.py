"""The DICOM network service (DIMSE): C-ECHO and C-STORE SCP; see README.md."""
