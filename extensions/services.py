"""Writes started from inside an extension: a note on the record, the company's settings.

Both act as the viewer, with the viewer's own installation: Pipedrive checks the user's own
permissions on the note, and only an active admin may change the company's settings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.utils.html import escape
from django.utils.translation import gettext, gettext_noop

from pipedrive_app.installations.models import CompanySettings, Installation
from pipedrive_app.installations.services import (
    InstallationNotActive,
    InvalidSettings,
    NeedsReauth,
    company_settings_update,
)
from pipedrive_app.pipedrive.client import PipedriveClient
from pipedrive_app.pipedrive.errors import (
    PipedriveError,
    PipedriveForbidden,
    PipedriveNotFound,
    PipedriveRateLimited,
    PipedriveUnavailable,
    PipedriveValidationError,
)
from pipedrive_app.pipedrive.types import Activity, Note

from .follow_up import FollowUp
from .panel_auth import PanelContext
from .selectors import panel_records_touch
from .viewer_client import viewer_client

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

MAX_NOTE_LENGTH = 10_000


class ActionRefused(Exception):
    """The action was not done; ``message`` is safe to show in a snackbar, ``status`` is the HTTP one."""

    def __init__(self, message: str, *, status: int = 400, code: str = "refused") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


@dataclass(frozen=True)
class NoteCreated:
    note: Note


def _active_installation(panel: PanelContext) -> Installation:
    installation = panel.installation
    if installation is None or not panel.viewer_installed:
        raise ActionRefused(gettext("Install the app in Pipedrive first."), status=403, code="not_installed")
    if installation.status == Installation.Status.NEEDS_REAUTH:
        raise ActionRefused(gettext("Reconnect the app to Pipedrive first."), status=409, code="needs_reauth")
    return installation


def _note_html(text: str) -> str:
    """The user typed plain text; Pipedrive stores note content as HTML."""
    paragraphs = [escape(line) for line in text.strip().splitlines()]
    return "<br>".join(paragraphs)


NOTE_TARGETS = {"deal": "deal_id", "person": "person_id", "organization": "org_id"}


@dataclass(frozen=True)
class _Refusals:
    """What the viewer reads when Pipedrive refuses one kind of write (translated when raised)."""

    gone: str  # 404/400 from Pipedrive: the record may be gone
    forbidden: str  # 403: the viewer may not write there
    refused: str  # anything else Pipedrive answered
    what: str  # for the log


def _write_as_viewer(panel: PanelContext, write: Callable[[PipedriveClient], _T], refusals: _Refusals) -> _T:
    """One write to Pipedrive with the viewer's own installation (Pipedrive checks their permissions
    on the record), on the panels' time budget (``viewer_client``: a bounded token wait, short API
    timeouts, at most one brief wait on a 429); every failure is an ``ActionRefused`` the viewer can
    read, never a 500."""
    installation = _active_installation(panel)
    try:
        client = viewer_client(installation)
    except (NeedsReauth, InstallationNotActive):
        raise ActionRefused(gettext("Reconnect the app to Pipedrive first."), status=409, code="needs_reauth") from None
    except PipedriveError:
        raise ActionRefused(gettext("Pipedrive could not be reached. Try again in a moment."), status=503) from None
    try:
        return write(client)
    except (NeedsReauth, InstallationNotActive):
        raise ActionRefused(gettext("Reconnect the app to Pipedrive first."), status=409, code="needs_reauth") from None
    except PipedriveRateLimited:
        raise ActionRefused(
            gettext("Pipedrive is busy (rate limit reached). Try again in a minute."), status=429
        ) from None
    except (PipedriveNotFound, PipedriveValidationError):
        raise ActionRefused(gettext(refusals.gone), status=422) from None
    except PipedriveForbidden:
        raise ActionRefused(gettext(refusals.forbidden), status=403) from None
    except PipedriveUnavailable:
        raise ActionRefused(gettext("Pipedrive could not be reached. Try again in a moment."), status=503) from None
    except PipedriveError as exc:
        logger.warning("%s create failed: %s", refusals.what, exc)
        raise ActionRefused(gettext(refusals.refused), status=502) from None
    finally:
        client.close()


_NOTE_REFUSALS = _Refusals(
    gone=gettext_noop("Pipedrive did not accept the note: the record may be gone."),
    forbidden=gettext_noop("You are not allowed to add notes to this record."),
    refused=gettext_noop("Pipedrive refused the note."),
    what="note",
)
_FOLLOW_UP_REFUSALS = _Refusals(
    gone=gettext_noop("Pipedrive did not accept the follow-up: the record may be gone."),
    forbidden=gettext_noop("You are not allowed to add activities to this record (the app may need reinstalling)."),
    refused=gettext_noop("Pipedrive refused the follow-up."),
    what="activity",
)


def panel_note_create(*, panel: PanelContext, resource: str, record_id: int, content: str) -> NoteCreated:
    """Create a note on the deal, person or organization, as the viewer."""
    text = (content or "").strip()
    if not text:
        raise ActionRefused(gettext("Write something before adding the note."))
    if len(text) > MAX_NOTE_LENGTH:
        raise ActionRefused(gettext("A note can be at most %(limit)d characters long.") % {"limit": MAX_NOTE_LENGTH})
    if resource not in NOTE_TARGETS:
        raise ActionRefused(gettext("Notes can be added to deals, people and organizations only."))
    note = _write_as_viewer(
        panel,
        lambda client: client.create_note(content=_note_html(text), **{NOTE_TARGETS[resource]: record_id}),
        _NOTE_REFUSALS,
    )
    logger.info("note %s added to %s %s by user %s", note.id, resource, record_id, panel.pipedrive_user_id)
    # The record changed at Pipedrive (its last change, its notes): no cached panel may hide that.
    panel_records_touch(company_pk=panel.company.pk, records=[(resource, record_id)])
    return NoteCreated(note=note)


ACTIVITY_TARGETS = NOTE_TARGETS  # deal_id, person_id, org_id: the same three records


@dataclass(frozen=True)
class ActivityCreated:
    activity: Activity


def follow_up_create(*, panel: PanelContext, resource: str, record_id: int, follow_up: FollowUp) -> ActivityCreated:
    """Create the follow-up activity on the deal, person or organization, as the viewer, with the
    same guards and time budget as a note."""
    if resource not in ACTIVITY_TARGETS:
        raise ActionRefused(gettext("Follow-ups can be scheduled for deals, people and organizations only."))
    activity = _write_as_viewer(
        panel,
        lambda client: client.create_activity(
            subject=follow_up.subject,
            type=follow_up.type,
            due_date=follow_up.due_date,
            due_time=follow_up.due_time,
            note=_note_html(follow_up.note) if follow_up.note else None,
            **{ACTIVITY_TARGETS[resource]: record_id},
        ),
        _FOLLOW_UP_REFUSALS,
    )
    logger.info("activity %s added to %s %s by user %s", activity.id, resource, record_id, panel.pipedrive_user_id)
    return ActivityCreated(activity=activity)


def panel_settings_save(
    *, panel: PanelContext, tracked_entities: list[str], history_retention_days: int
) -> CompanySettings:
    """Save the company's settings as the viewer (an active admin); reconciliation follows on commit."""
    installation = _active_installation(panel)
    if not installation.is_admin:
        raise ActionRefused(gettext("Only a Pipedrive admin of this company can change these settings."), status=403)
    try:
        return company_settings_update(
            company=panel.company,
            tracked_entities=tracked_entities,
            history_retention_days=history_retention_days,
            updated_by=installation,
        )
    except InvalidSettings as exc:
        raise ActionRefused(str(exc)) from None
    except PermissionError:
        raise ActionRefused(
            gettext("Only a Pipedrive admin of this company can change these settings."), status=403
        ) from None
