"""Validation and normalisation of patient identifiers, sex codes and phone numbers.

Resident ID numbers (GB 11643-1999) are checked with python-stdnum: 18 characters, the
ISO 7064 MOD 11-2 check character, a real birth date. The birth date and sex a number
encodes must agree with the ones entered, since a mismatch is how a mistyped digit or a
relative's card shows itself at the registration desk.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum

from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from xietong.core.errors import N_, Invalid
from xietong.core.masking import mask_phone, mask_resident_id


class IdentifierKind(StrEnum):
    RESIDENT_ID = "resident_id"
    PASSPORT = "passport"
    MRN = "mrn"
    HEALTH_CARD = "health_card"


IDENTIFIER_LABELS: dict[IdentifierKind, str] = {
    IdentifierKind.RESIDENT_ID: N_("Resident ID number"),
    IdentifierKind.PASSPORT: N_("Passport number"),
    IdentifierKind.MRN: N_("Medical record number"),
    IdentifierKind.HEALTH_CARD: N_("Health card number"),
}

# GB/T 2261.1-2003, the human sex code.
SEX_LABELS: dict[str, str] = {
    "0": N_("Unknown"),
    "1": N_("Male"),
    "2": N_("Female"),
    "9": N_("Not stated"),
}

_PASSPORT = re.compile(r"^[A-Z0-9]{5,20}$")
_LOCAL_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_/.]{0,39}$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}\d{7,8}$")
_COUNTRY = re.compile(r"^[A-Z]{3}$")


# GB/T 2260 province-level codes (the first two digits of every resident ID number).
_PROVINCES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)


def normalise_resident_id(value: str, field: str = "resident_id") -> str:
    """Length, digits, the check character, a real birth date and a province code.

    Not ``ric.validate``: it also looks the six-digit area code up in the divisions that
    existed *on the birth date*, but a number carries the code of the place that issued it,
    often decades later, so real numbers (410102 1980…, say) would be refused.
    """
    text = ric.compact(value).upper()
    try:
        if len(text) != 18 or not text[:17].isdigit() or text[:2] not in _PROVINCES:
            raise ValidationError()
        if text[-1] != ric.calc_check_digit(text):
            raise ValidationError()
        birth = ric.get_birth_date(text)
        if birth > date.today():
            raise ValidationError()
        return text
    except ValidationError as exc:
        raise Invalid(
            N_("This is not a valid resident ID number (18 characters, with a check digit)."),
            code="resident_id_invalid",
            field=field,
        ) from exc


def resident_id_birth_date(number: str) -> date:
    birth: date = ric.get_birth_date(number)
    return birth


def resident_id_sex(number: str) -> str:
    """The 17th digit is odd for men, even for women (GB 11643 §4.3)."""
    return "1" if int(number[16]) % 2 == 1 else "2"


def check_resident_id_agrees(number: str, birth_date: date, sex: str) -> None:
    if resident_id_birth_date(number) != birth_date:
        raise Invalid(
            N_("The birth date does not match the one in the resident ID number."),
            code="birth_date_mismatch",
            field="birth_date",
        )
    if sex in ("1", "2") and resident_id_sex(number) != sex:
        raise Invalid(
            N_("The sex does not match the one in the resident ID number."),
            code="sex_mismatch",
            field="sex",
        )


def normalise_identifier(kind: IdentifierKind, value: str, issuer: str, field: str) -> str:
    """The canonical form of an identifier, or a 422 naming ``field``."""
    if kind is IdentifierKind.RESIDENT_ID:
        return normalise_resident_id(value, field)
    text = value.strip().replace(" ", "")
    if kind is IdentifierKind.PASSPORT:
        text = text.upper()
        if not _PASSPORT.match(text):
            raise Invalid(
                N_("A passport number has 5 to 20 letters and digits."),
                code="passport_invalid",
                field=field,
            )
        if not _COUNTRY.match(issuer):
            raise Invalid(
                N_("Give the issuing country as a three-letter code (CHN, USA …)."),
                code="passport_country_invalid",
                field=field.replace("value", "issuer"),
            )
        return text
    if not _LOCAL_NUMBER.match(text):
        raise Invalid(
            N_("A number has 1 to 40 letters, digits, and - _ / . characters."),
            code="identifier_invalid",
            field=field,
        )
    return text


def mask_identifier(kind: IdentifierKind, value: str) -> str:
    if kind is IdentifierKind.RESIDENT_ID:
        return mask_resident_id(value)
    if kind is IdentifierKind.MRN:
        return value  # an institution's own record number is not a personal identifier
    if len(value) <= 4:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def normalise_phone(value: str, field: str = "phone") -> str:
    text = re.sub(r"[\s\-()]", "", value)
    if text.startswith("+86"):
        text = text[3:]
    if not (_MOBILE.match(text) or _LANDLINE.match(text)):
        raise Invalid(
            N_("Give a mobile number of 11 digits or a landline with its area code."),
            code="phone_invalid",
            field=field,
        )
    return text


def masked_phone(value: str) -> str:
    return mask_phone(value)
