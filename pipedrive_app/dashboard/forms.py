from __future__ import annotations

from django import forms

from pipedrive_app.webhooks.models import InboxEvent

from .models import OperatorAction
from .selectors import CompanyStatus, Health, event_entities


class CompanyFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "name, domain or Pipedrive id", "type": "search"}),
    )
    status = forms.ChoiceField(required=False, choices=(("", "Any status"), *CompanyStatus.CHOICES))
    health = forms.ChoiceField(required=False, choices=(("", "Any webhook health"), *Health.CHOICES))


class EventFilterForm(forms.Form):
    company = forms.CharField(
        required=False, widget=forms.TextInput(attrs={"placeholder": "company name or id", "type": "search"})
    )
    entity = forms.ChoiceField(required=False)
    action = forms.CharField(
        required=False, max_length=16, widget=forms.TextInput(attrs={"placeholder": "e.g. change", "size": 10})
    )
    status = forms.ChoiceField(required=False, choices=(("", "Any status"), *InboxEvent.Status.choices))
    received_from = forms.DateTimeField(
        required=False, label="From", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    received_to = forms.DateTimeField(
        required=False, label="To", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["entity"].choices = [("", "Any entity"), *((e, e) for e in event_entities())]  # type: ignore[attr-defined]

    def filters(self) -> dict[str, object]:
        if not self.is_valid():
            return {}
        data = self.cleaned_data
        return {
            "company": data.get("company") or "",
            "entity": data.get("entity") or "",
            "action": data.get("action") or "",
            "status": data.get("status") or "",
            "received_from": data.get("received_from"),
            "received_to": data.get("received_to"),
        }


class AuditFilterForm(forms.Form):
    actor = forms.CharField(
        required=False, widget=forms.TextInput(attrs={"placeholder": "operator e-mail", "type": "search"})
    )
    action = forms.ChoiceField(required=False, choices=(("", "Any action"), *OperatorAction.Kind.choices))
