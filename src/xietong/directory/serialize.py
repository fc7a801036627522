"""From rows to the API shapes of :mod:`xietong.directory.schemas`."""

from __future__ import annotations

from xietong.directory.models import Institution, Practitioner
from xietong.directory.schemas import (
    AvailabilityWindow,
    ExpertOut,
    ExpertProfileOut,
    InstitutionRef,
    PractitionerDetailOut,
    PractitionerOut,
)


def institution_ref(institution: Institution) -> InstitutionRef:
    return InstitutionRef.model_validate(institution)


def practitioner_out(p: Practitioner) -> PractitionerOut:
    return PractitionerOut(
        id=p.id,
        institution_id=p.institution_id,
        institution_name=p.institution.name,
        department_id=p.department_id,
        department_name=p.department.name if p.department else None,
        name=p.name,
        sex=p.sex,
        title=p.title,
        specialties=p.specialties,
        is_expert=p.is_expert,
        is_active=p.is_active,
    )


def windows_of(p: Practitioner) -> list[AvailabilityWindow]:
    return [
        AvailabilityWindow(weekday=a.weekday, start=a.start_time, end=a.end_time)
        for a in p.availability
    ]


def practitioner_detail_out(p: Practitioner) -> PractitionerDetailOut:
    base = practitioner_out(p).model_dump()
    return PractitionerDetailOut(
        **base,
        profile=ExpertProfileOut.model_validate(p.profile) if p.profile else None,
        availability=windows_of(p),
    )


def expert_out(p: Practitioner) -> ExpertOut:
    profile = p.profile
    return ExpertOut(
        id=p.id,
        name=p.name,
        title=p.title,
        specialties=p.specialties,
        institution=institution_ref(p.institution),
        department_name=p.department.name if p.department else None,
        summary=profile.summary if profile else "",
        expertise=profile.expertise if profile else "",
        accepts_requests=profile.accepts_requests if profile else False,
        availability=windows_of(p),
    )
