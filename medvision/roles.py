"""Role names and membership checks. The groups are created by migration 0001."""

from __future__ import annotations

CLINICIAN = "clinician"
QA_REVIEWER = "qa_reviewer"
EHR_CONNECTOR = "ehr_connector"
ALL_ROLES = (CLINICIAN, QA_REVIEWER, EHR_CONNECTOR)


def _in_group(user, name: str) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    # Cache per user object: pages ask several times per request.
    cache = getattr(user, "_medvision_groups", None)
    if cache is None:
        cache = set(user.groups.values_list("name", flat=True))
        user._medvision_groups = cache
    return name in cache


def is_clinician(user) -> bool:
    return _in_group(user, CLINICIAN)


def is_qa_reviewer(user) -> bool:
    return _in_group(user, QA_REVIEWER)


def is_ehr_connector(user) -> bool:
    return _in_group(user, EHR_CONNECTOR)


def is_administrator(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.is_superuser)


def sees_quality_metrics(user) -> bool:
    """QA staff and administrators (``is_staff``): the quality metrics compare clinicians
    with each other, so clinicians and connector accounts do not see them."""
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.is_staff)
