"""The inputs of the record forms and the rows of the entry page, one spec per field.

Names, choices, required fields, nullability and length limits are read from the kind's
``*Fields`` model in :mod:`xietong.records.schemas`, so the forms follow the schemas; this
module adds the label (an English msgid), the kind of input and a hint. It also turns an
entry into the strings its form shows, and submitted strings back into typed values:
dates and times are China time (UTC+8), as clinicians read and type them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from annotated_types import MaxLen
from starlette.datastructures import FormData

from xietong.core.errors import N_, Invalid
from xietong.core.validation import MAX_ID, StrictModel
from xietong.records.kinds import FLAG_LABELS, RecordKind, code_label
from xietong.records.rules import CHINA_TZ
from xietong.records.schemas import FIELDS_BY_KIND
from xietong.web.pages.patients_common import form_text

Widget = Literal[
    "text",
    "textarea",
    "date",
    "datetime",
    "number",
    "select",
    "encounter",
    "department",
    "practitioner",
    "icd10",
]
# Inputs whose value names a row (sent as a whole number).
REFERENCE_WIDGETS = frozenset({"encounter", "department", "practitioner"})
# Longest text accepted for an input without a length of its own (dates, numbers, ids).
SHORT_INPUT = 40


def number_text(value: float | None) -> str:
    """A stored number as typed: 5 not 5.0, every digit kept."""
    if value is None:
        return ""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def local_input(moment: datetime) -> str:
    """A moment as a ``datetime-local`` value in China time (seconds only when set)."""
    local = moment.astimezone(CHINA_TZ)
    return local.strftime("%Y-%m-%dT%H:%M:%S" if local.second else "%Y-%m-%dT%H:%M")


def input_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return local_input(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return number_text(value)
    return str(value)


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str  # msgid
    widget: Widget
    required: bool
    nullable: bool  # empty means None (else "")
    max_length: int | None
    choices: tuple[str, ...]  # codes of a select, "" first when it may be left empty
    default: str = ""  # the schema's default, as the form shows it
    hint: str | None = None
    blank: str | None = None  # msgid of the empty choice of a select

    @property
    def input_limit(self) -> int:
        return self.max_length or SHORT_INPUT


def _literal_values(annotation: Any) -> tuple[str, ...]:
    if get_origin(annotation) is Literal:
        return tuple(str(v) for v in get_args(annotation))
    if get_origin(annotation) in (Union, UnionType):
        found: list[str] = []
        for arg in get_args(annotation):
            found.extend(_literal_values(arg))
        return tuple(found)
    return ()


def _base_type(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return _base_type(args[0]) if args else annotation
    if get_origin(annotation) is Annotated:
        return _base_type(get_args(annotation)[0])
    return annotation


def _spec(
    kind: RecordKind,
    name: str,
    label: str,
    widget: Widget | None = None,
    *,
    hint: str | None = None,
    blank: str | None = None,
) -> FieldSpec:
    model: type[StrictModel] = FIELDS_BY_KIND[kind]
    info = model.model_fields[name]
    annotation = info.annotation
    choices = _literal_values(annotation)
    if widget is None:
        base = _base_type(annotation)
        if choices:
            widget = "select"
        elif base is datetime:
            widget = "datetime"
        elif base is date:
            widget = "date"
        elif base is float:
            widget = "number"
        else:
            widget = "text"
    max_length = next((m.max_length for m in info.metadata if isinstance(m, MaxLen)), None)
    return FieldSpec(
        name=name,
        label=label,
        widget=widget,
        required=info.is_required(),
        nullable=not info.is_required() and info.default is None,
        max_length=max_length,
        choices=choices,
        default="" if info.is_required() else input_text(info.default),
        hint=hint,
        blank=blank,
    )


_ENCOUNTER_HINT = N_("A visit of this patient at your institution.")
K = RecordKind

FIELDS: dict[RecordKind, tuple[FieldSpec, ...]] = {
    K.ENCOUNTER: (
        _spec(K.ENCOUNTER, "kind", N_("Type of visit")),
        _spec(K.ENCOUNTER, "start_date", N_("Start date")),
        _spec(
            K.ENCOUNTER,
            "end_date",
            N_("End date"),
            hint=N_("Leave empty while the stay goes on."),
        ),
        _spec(K.ENCOUNTER, "department_id", N_("Department"), "department", blank=N_("None")),
        _spec(
            K.ENCOUNTER,
            "attending_practitioner_id",
            N_("Attending doctor"),
            "practitioner",
            blank=N_("None"),
        ),
        _spec(K.ENCOUNTER, "chief_complaint", N_("Chief complaint")),
        _spec(K.ENCOUNTER, "summary", N_("Clinical summary"), "textarea"),
    ),
    K.DIAGNOSIS: (
        _spec(
            K.DIAGNOSIS,
            "code",
            N_("ICD-10 code"),
            "icd10",
            hint=N_("For example I10 or E11.9."),
        ),
        _spec(
            K.DIAGNOSIS,
            "name",
            N_("Diagnosis name"),
            hint=N_("Leave empty to record the title of the code."),
        ),
        _spec(K.DIAGNOSIS, "kind", N_("Type of diagnosis")),
        _spec(K.DIAGNOSIS, "status", N_("Certainty")),
        _spec(K.DIAGNOSIS, "diagnosed_on", N_("Diagnosed on")),
        _spec(
            K.DIAGNOSIS,
            "encounter_id",
            N_("Encounter"),
            "encounter",
            hint=_ENCOUNTER_HINT,
            blank=N_("None"),
        ),
    ),
    K.LAB_RESULT: (
        _spec(K.LAB_RESULT, "item_name", N_("Test")),
        _spec(K.LAB_RESULT, "value_text", N_("Result"), hint=N_("A number, or text such as 阴性.")),
        _spec(K.LAB_RESULT, "unit", N_("Unit")),
        _spec(K.LAB_RESULT, "ref_low", N_("Reference range, lower limit")),
        _spec(K.LAB_RESULT, "ref_high", N_("Reference range, upper limit")),
        _spec(
            K.LAB_RESULT,
            "ref_text",
            N_("Reference (text)"),
            hint=N_("For results that are not numbers, such as 阴性."),
        ),
        _spec(
            K.LAB_RESULT,
            "abnormal_flag",
            N_("Flag"),
            blank=N_("Computed from the reference range"),
        ),
        _spec(K.LAB_RESULT, "collected_at", N_("Specimen collected at")),
        _spec(K.LAB_RESULT, "reported_at", N_("Reported at")),
        _spec(K.LAB_RESULT, "loinc_code", N_("LOINC code"), hint=N_("For example 2345-7.")),
        _spec(K.LAB_RESULT, "local_code", N_("Laboratory's own code")),
        _spec(
            K.LAB_RESULT,
            "encounter_id",
            N_("Encounter"),
            "encounter",
            hint=_ENCOUNTER_HINT,
            blank=N_("None"),
        ),
    ),
    K.MEDICATION: (
        _spec(K.MEDICATION, "order_kind", N_("Type of order")),
        _spec(K.MEDICATION, "name", N_("Drug or what is ordered")),
        _spec(K.MEDICATION, "dose", N_("Dose")),
        _spec(K.MEDICATION, "unit", N_("Dose unit"), hint=N_("mg, g, ml, IU …")),
        _spec(K.MEDICATION, "route", N_("Route"), blank=N_("Not stated")),
        _spec(K.MEDICATION, "frequency", N_("Frequency"), hint=N_("qd, bid, tid, q8h, prn …")),
        _spec(K.MEDICATION, "start_date", N_("Start date")),
        _spec(
            K.MEDICATION,
            "end_date",
            N_("End date"),
            hint=N_("May be in the future for a planned course."),
        ),
        _spec(K.MEDICATION, "status", N_("Status")),
        _spec(
            K.MEDICATION,
            "encounter_id",
            N_("Encounter"),
            "encounter",
            hint=_ENCOUNTER_HINT,
            blank=N_("None"),
        ),
    ),
    K.VITAL_SIGN: (
        _spec(K.VITAL_SIGN, "kind", N_("Measurement")),
        _spec(K.VITAL_SIGN, "value", N_("Value")),
        _spec(K.VITAL_SIGN, "measured_at", N_("Measured at")),
        _spec(
            K.VITAL_SIGN,
            "encounter_id",
            N_("Encounter"),
            "encounter",
            hint=_ENCOUNTER_HINT,
            blank=N_("None"),
        ),
    ),
    K.ALLERGY: (
        _spec(K.ALLERGY, "substance", N_("Substance"), hint=N_("A drug, food or other allergen.")),
        _spec(K.ALLERGY, "reaction", N_("Reaction")),
        _spec(K.ALLERGY, "severity", N_("Severity")),
        _spec(K.ALLERGY, "status", N_("Status")),
        _spec(K.ALLERGY, "noted_on", N_("Noted on")),
    ),
}

# The vital-sign form takes several measurements at once, one input per kind.
VITAL_KINDS: tuple[str, ...] = FIELDS[K.VITAL_SIGN][0].choices
VITAL_FORM_SHARED = ("measured_at", "encounter_id")


def spec_of(kind: RecordKind, name: str) -> FieldSpec | None:
    return next((f for f in FIELDS[kind] if f.name == name), None)


def choice_label(kind: RecordKind, spec: FieldSpec, code: str) -> str:
    """The msgid naming a code of a select."""
    if code == "":
        return spec.blank or N_("None")
    if spec.name == "abnormal_flag":
        return FLAG_LABELS.get(code, code)
    return code_label(kind, code)


# Entry → form strings ------------------------------------------------------------------------


def form_values(kind: RecordKind, entry: Any) -> dict[str, str]:
    """The strings a correction form shows for an entry (a computed lab flag shows as
    "computed", so that it is computed again when the values change)."""
    values = {spec.name: input_text(getattr(entry, spec.name)) for spec in FIELDS[kind]}
    if kind is K.LAB_RESULT and entry.flag_computed:
        values["abnormal_flag"] = ""
    return values


# Form strings → typed values ----------------------------------------------------------------


def raw_value(form: FormData, spec: FieldSpec) -> str:
    """The submitted text of an input (stripped; too long or control characters: 422)."""
    return form_text(form, spec.name, spec.input_limit)


def typed(spec: FieldSpec, raw: str, *, field: str | None = None) -> Any:
    """The value of a non-empty input, by its widget; 422 naming the input otherwise."""
    name = field or spec.name
    if spec.widget == "date":
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise Invalid(
                N_("A date (YYYY-MM-DD) is expected."), code="date_parsing", field=name
            ) from None
    if spec.widget == "datetime":
        return parse_moment(raw, name)
    if spec.widget == "number":
        return parse_number(raw, name)
    if spec.widget in REFERENCE_WIDGETS:
        if not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
            raise Invalid(N_("A whole number is expected."), code="int_parsing", field=name)
        return int(raw)
    return raw


def parse_moment(raw: str, field: str) -> datetime:
    """A ``datetime-local`` value is China time; an explicit offset is kept."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise Invalid(
            N_("A date and time is expected."), code="datetime_parsing", field=field
        ) from None
    return moment.replace(tzinfo=CHINA_TZ) if moment.tzinfo is None else moment


def parse_number(raw: str, field: str) -> float:
    try:
        value = float(raw.replace("，", ".").replace(",", "."))
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise Invalid(N_("A number is expected."), code="float_parsing", field=field)
    return value


def required_missing(field: str) -> Invalid:
    return Invalid(N_("This field is required."), code="missing", field=field)


def creation_values(kind: RecordKind, form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    """The typed values of a new entry's form (empty inputs left out: the schema's default
    applies) and the raw strings, to show the form again."""
    raw = {spec.name: raw_value(form, spec) for spec in FIELDS[kind]}
    data: dict[str, Any] = {}
    for spec in FIELDS[kind]:
        text = raw[spec.name]
        if text:
            data[spec.name] = typed(spec, text)
        elif spec.required:
            raise required_missing(spec.name)
    return data, raw


def correction_changes(
    kind: RecordKind, form: FormData, shown: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The fields whose submitted text differs from what the form showed, typed (an
    emptied input clears the field: None, or "" for text), and the raw strings."""
    raw = {spec.name: raw_value(form, spec) for spec in FIELDS[kind]}
    changes: dict[str, Any] = {}
    for spec in FIELDS[kind]:
        text = raw[spec.name]
        if text == shown.get(spec.name, ""):
            continue
        if text:
            changes[spec.name] = typed(spec, text)
        elif spec.required:
            raise required_missing(spec.name)
        else:
            changes[spec.name] = None if spec.nullable else ""
    if kind is K.VITAL_SIGN and "kind" in changes:
        changes["unit"] = ""  # the new kind's own unit
    return changes, raw
