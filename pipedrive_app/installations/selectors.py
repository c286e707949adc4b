"""Reads of companies and installations."""

from __future__ import annotations

from .models import Installation


def installation_get(*, installation_id: int) -> Installation | None:
    return Installation.objects.select_related("company").filter(pk=installation_id).first()
