"""The clinical rules of the record: dates, abnormal flags, vital-sign ranges, LOINC codes.

Dates are clinical dates in China time (UTC+8, no daylight saving): "today" is China's
today, and a date-only entry counts from midnight China time on the timeline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone

from xietong.core.errors import N_, Invalid

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
# Clocks of phones and interfaces run a little ahead: a moment up to this far in the future
# is taken as now.
CLOCK_SKEW = timedelta(minutes=5)
ADULT_AGE = 18
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def local_date(moment: datetime) -> date:
    return moment.astimezone(CHINA_TZ).date()


def start_of_day(day: date) -> datetime:
    """Midnight China time of ``day``, in UTC."""
    return datetime.combine(day, time(0), tzinfo=CHINA_TZ).astimezone(UTC)


def check_day(day: date, *, today: date, birth_date: date, field: str) -> None:
    if day > today:
        raise Invalid(N_("This date is in the future."), code="date_future", field=field)
    if day < birth_date:
        raise Invalid(
            N_("This date is before the patient's birth."), code="before_birth", field=field
        )


def check_moment(moment: datetime, *, current: datetime, birth_date: date, field: str) -> None:
    if moment > current + CLOCK_SKEW:
        raise Invalid(N_("This time is in the future."), code="date_future", field=field)
    if local_date(moment) < birth_date:
        raise Invalid(
            N_("This date is before the patient's birth."), code="before_birth", field=field
        )


def check_not_before(later: date | datetime | None, earlier: date | datetime, field: str) -> None:
    if later is not None and later < earlier:
        raise Invalid(N_("The end is before the start."), code="end_before_start", field=field)


def age_on(birth_date: date, day: date) -> int:
    years = day.year - birth_date.year
    return years - ((day.month, day.day) < (birth_date.month, birth_date.day))


# Lab results ---------------------------------------------------------------------------------


def numeric_value(text: str) -> float | None:
    """The number a result's text holds (``5.6``, ``-0.3``), or None (``<0.5``, ``阳性``)."""
    candidate = text.strip()
    if not _NUMBER.match(candidate) or len(candidate) > 32:
        return None
    return float(candidate)


def lab_flag(
    value: float | None, low: float | None, high: float | None, text: str, ref_text: str
) -> str | None:
    """H, L or N from a numeric value and its range; N for a text result equal to its
    reference text (``阴性`` / ``阴性``); None when nothing can be said. HH and LL need the
    laboratory's critical limits, which a record does not carry: only a source gives them."""
    if value is not None and (low is not None or high is not None):
        if low is not None and value < low:
            return "L"
        if high is not None and value > high:
            return "H"
        return "N"
    if value is None and ref_text and text.strip().casefold() == ref_text.strip().casefold():
        return "N"
    return None


def loinc_check_digit_ok(code: str) -> bool:
    """LOINC codes end in a mod-10 (Luhn) check digit: ``2345-7``."""
    body, _, check = code.partition("-")
    if not body.isdigit() or not check.isdigit() or len(check) != 1:
        return False
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10 == int(check)


# Vital signs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VitalSpec:
    unit: str
    spellings: frozenset[str]
    plausible: tuple[float, float]  # outside: refused as a typing or unit mistake
    normal: tuple[float, float] | None  # outside: flagged L or H
    adults_only: bool = True  # the normal range is an adult's

    def canonical_unit(self, given: str) -> str | None:
        text = given.strip()
        if not text or text == self.unit:
            return self.unit
        return self.unit if text.casefold() in self.spellings else None


_PER_MINUTE = frozenset({"/min", "bpm", "次/分", "次/min", "beats/min", "breaths/min", "1/min"})

VITALS: dict[str, VitalSpec] = {
    # Axillary temperature as measured in China: 37.3 °C and above is fever.
    "temperature": VitalSpec(
        "°C", frozenset({"℃", "°c", "c", "degc", "cel"}), (30.0, 45.0), (36.0, 37.2), False
    ),
    "heart_rate": VitalSpec("/min", _PER_MINUTE, (20, 300), (60, 100)),
    "respiratory_rate": VitalSpec("/min", _PER_MINUTE, (4, 80), (12, 20)),
    "bp_systolic": VitalSpec("mmHg", frozenset({"mmhg", "mm hg"}), (40, 300), (90, 139)),
    "bp_diastolic": VitalSpec("mmHg", frozenset({"mmhg", "mm hg"}), (20, 200), (60, 89)),
    "spo2": VitalSpec("%", frozenset({"%", "percent"}), (50, 100), (95, 100), False),
    "weight": VitalSpec("kg", frozenset({"kg", "公斤"}), (0.3, 500), None),
    "height": VitalSpec("cm", frozenset({"cm", "厘米"}), (20, 260), None),
    # Whatever the timing: below 3.9 is hypoglycaemia, above 11.1 is high even after a meal.
    "blood_glucose": VitalSpec(
        "mmol/L", frozenset({"mmol/l", "mmol/litre"}), (0.5, 50), (3.9, 11.1), False
    ),
}


def check_vital(kind: str, value: float, unit: str) -> str:
    """The kind's unit (422 on ``unit`` for another unit; on ``value`` when implausible)."""
    spec = VITALS[kind]
    canonical = spec.canonical_unit(unit)
    if canonical is None:
        raise Invalid(
            N_("This unit is not the one this vital sign is recorded in ({unit})."),
            code="unit_not_allowed",
            field="unit",
            params={"unit": spec.unit},
        )
    low, high = spec.plausible
    if not low <= value <= high:
        raise Invalid(
            N_("This value is not plausible: expected {low} to {high} {unit}."),
            code="vital_out_of_range",
            field="value",
            params={"low": f"{low:g}", "high": f"{high:g}", "unit": spec.unit},
        )
    return canonical


def vital_flag(kind: str, value: float, age: int) -> str | None:
    spec = VITALS[kind]
    if spec.normal is None or (spec.adults_only and age < ADULT_AGE):
        return None
    low, high = spec.normal
    if value < low:
        return "L"
    if value > high:
        return "H"
    return "N"
