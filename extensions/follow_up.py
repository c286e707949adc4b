""" "Schedule a follow-up": what the form accepts, shared by its three surfaces (the custom modal, the
link action's page and the JSON modal).

The user types a local date and time; Pipedrive stores ``due_date`` and ``due_time`` (``HH:MM``) in
UTC (docs/pipedrive-platform.md §3, app actions), so they are converted with the viewer's timezone
(``users/me``). Every field is bounded and checked before anything is sent; a refusal names the
field and says what is wrong, in the viewer's language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils.translation import gettext, gettext_lazy

from pipedrive_app.core.parsing import text_clean

# Activity types every Pipedrive company starts with, by key_string (OpenAPI v1 /activityTypes).
ACTIVITY_TYPES = (
    ("call", gettext_lazy("Call")),
    ("meeting", gettext_lazy("Meeting")),
    ("task", gettext_lazy("Task")),
    ("email", gettext_lazy("Email")),
    ("deadline", gettext_lazy("Deadline")),
    ("lunch", gettext_lazy("Lunch")),
)
ACTIVITY_TYPE_KEYS = frozenset(key for key, _ in ACTIVITY_TYPES)
DEFAULT_TYPE = "call"
SUBJECT_MAX = 255
NOTE_MAX = 10_000
# A follow-up is for the coming months: a date years away is a typo, not a plan.
MAX_DAYS_AHEAD = 5 * 366
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


class FollowUpInvalid(ValueError):
    """The form was refused; ``errors`` maps a field name to a message safe to show."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = dict(errors)

    @property
    def message(self) -> str:
        return " ".join(self.errors.values())


@dataclass(frozen=True)
class FollowUp:
    subject: str
    type: str
    due_date: str  # YYYY-MM-DD, UTC
    due_time: str | None  # HH:MM, UTC
    note: str | None


def default_due_date(*, timezone_name: str, today: date | None = None) -> date:
    """Tomorrow in the viewer's timezone: the form's starting value."""
    return (today or datetime.now(_zone(timezone_name)).date()) + timedelta(days=1)


def follow_up_parse(data: Mapping[str, Any], *, timezone_name: str, today: date | None = None) -> FollowUp:
    """The form's fields (strings, as a browser sends them) as a ``FollowUp`` in UTC, or
    ``FollowUpInvalid`` naming each field that is wrong. Nothing else is raised for any input."""
    errors: dict[str, str] = {}
    subject = _text(data.get("subject"))
    if not subject:
        errors["subject"] = gettext("Enter a subject.")
    elif len(subject) > SUBJECT_MAX:
        errors["subject"] = gettext("The subject can be at most %(limit)d characters long.") % {"limit": SUBJECT_MAX}
    activity_type = data.get("type") or DEFAULT_TYPE
    if not isinstance(activity_type, str) or activity_type not in ACTIVITY_TYPE_KEYS:
        errors["type"] = gettext("Choose a type of activity.")
    zone = _zone(timezone_name)
    due_day = _due_day(data.get("due_date"), today or datetime.now(zone).date(), errors)
    raw_time = data.get("due_time") or ""
    due_clock: time | None = None
    if not isinstance(raw_time, str) or (raw_time and not _TIME.fullmatch(raw_time)):
        errors["due_time"] = gettext("Enter the time as HH:MM, or leave it empty.")
    elif raw_time:
        due_clock = time.fromisoformat(raw_time)
    note = _text(data.get("note"), keep_lines=True)
    if len(note) > NOTE_MAX:
        errors["note"] = gettext("The note can be at most %(limit)d characters long.") % {"limit": NOTE_MAX}
    if errors:
        raise FollowUpInvalid(errors)
    assert due_day is not None
    if due_clock is None:
        return FollowUp(
            subject=subject, type=activity_type, due_date=due_day.isoformat(), due_time=None, note=note or None
        )
    moment = datetime.combine(due_day, due_clock, tzinfo=zone).astimezone(ZoneInfo("UTC"))
    return FollowUp(
        subject=subject,
        type=activity_type,
        due_date=moment.date().isoformat(),
        due_time=moment.strftime("%H:%M"),
        note=note or None,
    )


def _due_day(raw: Any, local_today: date, errors: dict[str, str]) -> date | None:
    """A calendar day from today to ``MAX_DAYS_AHEAD`` ahead, in the viewer's own today."""
    due_day: date | None = None
    if isinstance(raw, str) and _DATE.fullmatch(raw):
        try:
            due_day = date.fromisoformat(raw)
        except ValueError:
            due_day = None
    if due_day is None:
        errors["due_date"] = gettext("Enter the due date as YYYY-MM-DD.")
    elif due_day < local_today:
        errors["due_date"] = gettext("A follow-up cannot be due in the past.")
    elif (due_day - local_today).days > MAX_DAYS_AHEAD:
        errors["due_date"] = gettext("Choose a due date within the next five years.")
    else:
        return due_day
    return None


def _text(value: Any, *, keep_lines: bool = False) -> str:
    if not isinstance(value, str):
        return ""
    cleaned = text_clean(value).strip()
    return cleaned if keep_lines else " ".join(cleaned.split())


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
