"""Structured read report templates, per modality and body part (ADR 0017).

A template pre-fills the report form with the usual technique and a normal-study wording of
the findings and impression, which the radiologist edits; the text is in the user's
language (English msgids, zh-CN through the catalogs). The signed report keeps the
template's key, modality and body part, so a report can always be traced to its template.
"""

from __future__ import annotations

from dataclasses import dataclass

from xietong.core.errors import N_, Invalid
from xietong.core.i18n import translations


@dataclass(frozen=True)
class ReadTemplate:
    key: str
    modality: str  # DICOM Modality (0008,0060)
    body_part: str  # DICOM Body Part Examined (0018,0015) defined terms
    label: str
    technique: str
    findings: str
    impression: str
    recommendation: str = ""


TEMPLATES: tuple[ReadTemplate, ...] = (
    ReadTemplate(
        "ct_chest",
        "CT",
        "CHEST",
        N_("CT chest"),
        N_("Non-contrast axial CT of the chest, 5 mm slices with thin-slice reconstruction."),
        N_(
            "Both lungs are clear, with no nodule, mass or consolidation. The trachea and main "
            "bronchi are patent. No enlarged mediastinal or hilar lymph nodes. The heart is not "
            "enlarged. No pleural effusion."
        ),
        N_("No abnormality of the chest on CT."),
    ),
    ReadTemplate(
        "ct_head",
        "CT",
        "HEAD",
        N_("CT head"),
        N_("Non-contrast axial CT of the head, 5 mm slices."),
        N_(
            "No intracranial haemorrhage or mass. The grey-white matter differentiation is "
            "preserved. The ventricles and sulci are normal for age. The midline is not "
            "shifted. The skull shows no fracture."
        ),
        N_("No acute intracranial abnormality on CT."),
    ),
    ReadTemplate(
        "ct_abdomen",
        "CT",
        "ABDOMEN",
        N_("CT abdomen"),
        N_("Contrast-enhanced CT of the abdomen, arterial and portal venous phases."),
        N_(
            "The liver, gallbladder, pancreas, spleen and kidneys are normal in size and "
            "density with no focal lesion. No free fluid. No enlarged lymph nodes."
        ),
        N_("No abnormality of the abdomen on CT."),
    ),
    ReadTemplate(
        "mr_brain",
        "MR",
        "BRAIN",
        N_("MR brain"),
        N_("MR of the brain: T1, T2, FLAIR and diffusion-weighted axial sequences."),
        N_(
            "No abnormal signal of the brain parenchyma. No restricted diffusion. The "
            "ventricles are normal. No mass effect. The midline structures are central."
        ),
        N_("No abnormality of the brain on MR."),
    ),
    ReadTemplate(
        "mr_spine",
        "MR",
        "LSPINE",
        N_("MR lumbar spine"),
        N_("MR of the lumbar spine: sagittal T1 and T2, axial T2 sequences."),
        N_(
            "The vertebral bodies are normal in height and signal. The intervertebral discs "
            "show no herniation. The spinal canal and neural foramina are not narrowed. The "
            "conus medullaris is normal."
        ),
        N_("No abnormality of the lumbar spine on MR."),
    ),
    ReadTemplate(
        "dx_chest",
        "DX",
        "CHEST",
        N_("Chest radiograph"),
        N_("Posteroanterior chest radiograph."),
        N_(
            "The lung fields are clear. The heart is of normal size and shape. Both "
            "costophrenic angles are sharp. The bones show no abnormality."
        ),
        N_("No abnormality of the heart, lungs or diaphragm."),
    ),
    ReadTemplate(
        "us_abdomen",
        "US",
        "ABDOMEN",
        N_("Ultrasound abdomen"),
        N_("Real-time ultrasound of the upper abdomen."),
        N_(
            "The liver is normal in size with homogeneous echotexture. The gallbladder wall "
            "is smooth, with no stone. The common bile duct is not dilated. The pancreas, "
            "spleen and both kidneys are normal."
        ),
        N_("No abnormality of the upper abdomen on ultrasound."),
    ),
)

BY_KEY: dict[str, ReadTemplate] = {t.key: t for t in TEMPLATES}
MODALITIES = tuple(dict.fromkeys(t.modality for t in TEMPLATES))


def read_template(key: str, field: str = "template_key") -> ReadTemplate:
    """The template with this key, or 422 naming ``field``."""
    found = BY_KEY.get(key)
    if found is None:
        raise Invalid(
            N_("There is no report template with this key."),
            code="unknown_template",
            field=field,
        )
    return found


def prefill(template: ReadTemplate, locale: str) -> dict[str, str]:
    """The template's text in ``locale``: what the report form starts from."""
    gettext = translations(locale).gettext
    return {
        "template_key": template.key,
        "modality": template.modality,
        "body_part": template.body_part,
        "label": gettext(template.label),
        "technique": gettext(template.technique),
        "findings": gettext(template.findings),
        "impression": gettext(template.impression),
        "recommendation": gettext(template.recommendation) if template.recommendation else "",
    }
