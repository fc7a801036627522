"""Clinical records of a patient: encounters, diagnoses (ICD-10), lab results, orders and
medications, vital signs, allergies, each with its source and recorder (docs/records.md).

Importing the package registers its item kinds with the patient index, so that grants can
name entries."""

from xietong.records.registry import register_item_kinds

register_item_kinds()
