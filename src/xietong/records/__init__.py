"""Clinical records of a patient: encounters, diagnoses (ICD-10), lab results, orders and
medications, vital signs, allergies and documents, each with its source and recorder."""
