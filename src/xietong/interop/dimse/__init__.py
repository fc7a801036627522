"""The DICOM network service (DIMSE): C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET SCP; see README.md."""
