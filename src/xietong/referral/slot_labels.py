"""The names of the slots' codes (English msgids, translated where shown): the pages and
any later printout say the same words."""

from __future__ import annotations

from xietong.core.errors import N_

KIND_LABELS = {
    "outpatient": N_("Outpatient visit"),
    "exam": N_("Examination"),
    "admission": N_("Admission bed"),
}
EXAM_LABELS = {
    "ct": N_("CT scan"),
    "mri": N_("MRI"),
    "ultrasound": N_("Ultrasound"),
    "xray": N_("X-ray"),
    "endoscopy": N_("Endoscopy"),
    "ecg": N_("ECG"),
    "lab": N_("Laboratory test"),
    "other": N_("Other examination"),
}
SLOT_STATUS_LABELS = {
    "open": N_("Open"),
    "closed": N_("Closed"),
    "cancelled": N_("Cancelled"),
}
BOOKING_STATUS_LABELS = {
    "booked": N_("Booked"),
    "arrived": N_("Arrived"),
    "cancelled": N_("Cancelled"),
    "no_show": N_("No-show"),
}
PURPOSE_LABELS = {
    "referral": N_("Referral"),
    "local": N_("Local booking"),
}
CHANNEL_LABELS = {
    "normal": N_("Normal channel"),
    "green": N_("Green channel"),
}
