"""The directory's use cases. Services flush, never commit; callers authorise and audit."""

from xietong.directory.service.common import MAX_LIMIT, Paging
from xietong.directory.service.experts import (
    ExpertQuery,
    search_experts,
    set_availability,
    set_expert_profile,
    validate_windows,
)
from xietong.directory.service.institutions import (
    PLATFORM_FIELDS,
    InstitutionQuery,
    create_institution,
    get_institution,
    institution_counts,
    region_fits_level,
    search_institutions,
    update_institution,
)
from xietong.directory.service.links import (
    add_service_centre,
    is_upward,
    remove_service_centre,
    served_institutions,
    upward_centres,
)
from xietong.directory.service.staff import (
    PractitionerQuery,
    create_department,
    create_practitioner,
    get_department,
    get_practitioner,
    list_departments,
    list_practitioners,
    update_department,
    update_practitioner,
)

__all__ = [
    "MAX_LIMIT",
    "PLATFORM_FIELDS",
    "ExpertQuery",
    "InstitutionQuery",
    "Paging",
    "PractitionerQuery",
    "add_service_centre",
    "create_department",
    "create_institution",
    "create_practitioner",
    "get_department",
    "get_institution",
    "get_practitioner",
    "institution_counts",
    "is_upward",
    "list_departments",
    "list_practitioners",
    "region_fits_level",
    "remove_service_centre",
    "search_experts",
    "search_institutions",
    "served_institutions",
    "set_availability",
    "set_expert_profile",
    "update_department",
    "update_institution",
    "update_practitioner",
    "upward_centres",
    "validate_windows",
]
