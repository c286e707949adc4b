"""How the panels show values to their viewer: the viewer's timezone, language and locale formats.

Pipedrive tells each user's locale (``en_US``, ``de_DE``) and timezone (``users/me``, kept on the
installation); a panel uses one locale per view, for labels, dates and numbers alike.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import formats, translation

from pipedrive_app.history.field_labels import temporal_value

from .panel_auth import PanelContext


def viewer_zone(panel: PanelContext) -> ZoneInfo:
    try:
        return ZoneInfo(panel.timezone_name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def viewer_language(panel: PanelContext) -> str:
    """Pipedrive locales look like ``en_US``/``de_DE``; Django's formats want ``en-us``/``de``."""
    return translation.to_language(panel.locale or "en_US")


def viewer_datetime(moment: datetime, panel: PanelContext) -> str:
    """A point in time as the viewer reads it: their timezone, their locale's short format.

    Call inside ``translation.override(viewer_language(panel))`` for the locale's format."""
    return formats.date_format(moment.astimezone(viewer_zone(panel)), "SHORT_DATETIME_FORMAT")


def viewer_value_display(value: Any, stored: str, panel: PanelContext) -> str:
    """A history value for this viewer: dates and times in their timezone and locale (the stored
    display keeps Pipedrive's ISO text, which is the same for every viewer), anything else as stored.

    A date is a calendar day and is never shifted by a timezone."""
    moment = temporal_value(value)
    if isinstance(moment, datetime):
        return viewer_datetime(moment, panel)
    if isinstance(moment, date):
        return formats.date_format(moment, "DATE_FORMAT")
    return stored
