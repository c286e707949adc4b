"""``{% sandbox_floating_window %}``: the app's floating window launcher and window in the sandbox's
top bar, on the pages of a company (their context has ``company`` and ``actor``)."""

from __future__ import annotations

from typing import Any

from django import template

from sandbox.floating_window_host import company_has_app, floating_window_context

register = template.Library()


@register.inclusion_tag("sandbox/_floating_window_host.html", takes_context=True)
def sandbox_floating_window(context: template.Context) -> dict[str, Any]:
    company, actor = context.get("company"), context.get("actor")
    if company is None or actor is None or not company_has_app(company):
        return {"floating_window": None}
    return {"floating_window": floating_window_context(company, actor)}
