"""The Pipedrive operations the imitation serves, named once: where each lives in the OpenAPI files.

A key (``"deals.list"``) names an operation; its file, method and path template locate it in
v1.yaml/v2.yaml, from which its scopes and token cost are read (``openapi``). Its loopback path is
what a client appends to the api_domain (``/api/v1/...``, ``/api/v2/...``). The sandbox's views and
the tests' double both route by these keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import openapi


@dataclass(frozen=True)
class Operation:
    spec: str  # "v1" or "v2"
    method: str  # lower case
    template: str  # the path template in the file

    @property
    def path(self) -> str:
        """The path under an api_domain: v1.yaml's server is ``/v1``, served at ``/api/v1``."""
        return f"/api/{self.spec}{self.template}"

    def scopes(self) -> frozenset[str]:
        return openapi.operation_scopes(self.spec, self.method, self.template)

    def cost(self) -> int:
        return openapi.operation_cost(self.spec, self.method, self.template)


def _op(spec: str, method: str, template: str) -> Operation:
    return Operation(spec, method, template)


OPERATIONS: dict[str, Operation] = {
    "users.list": _op("v1", "get", "/users"),
    "users.me": _op("v1", "get", "/users/me"),
    "users.get": _op("v1", "get", "/users/{id}"),
    "notes.list": _op("v1", "get", "/notes"),
    "activities.list": _op("v2", "get", "/activities"),
    "activities.create": _op("v2", "post", "/activities"),
    "notes.create": _op("v1", "post", "/notes"),
    "leads.list": _op("v1", "get", "/leads"),
    "leads.create": _op("v1", "post", "/leads"),
    "leads.get": _op("v1", "get", "/leads/{id}"),
    "leads.update": _op("v1", "patch", "/leads/{id}"),
    "leads.delete": _op("v1", "delete", "/leads/{id}"),
    "webhooks.list": _op("v1", "get", "/webhooks"),
    "webhooks.create": _op("v1", "post", "/webhooks"),
    "webhooks.delete": _op("v1", "delete", "/webhooks/{id}"),
    "deals.list": _op("v2", "get", "/deals"),
    "deals.create": _op("v2", "post", "/deals"),
    "deals.get": _op("v2", "get", "/deals/{id}"),
    "deals.update": _op("v2", "patch", "/deals/{id}"),
    "deals.delete": _op("v2", "delete", "/deals/{id}"),
    "persons.list": _op("v2", "get", "/persons"),
    "persons.create": _op("v2", "post", "/persons"),
    "persons.get": _op("v2", "get", "/persons/{id}"),
    "persons.update": _op("v2", "patch", "/persons/{id}"),
    "persons.delete": _op("v2", "delete", "/persons/{id}"),
    "organizations.get": _op("v2", "get", "/organizations/{id}"),
    "pipelines.list": _op("v2", "get", "/pipelines"),
    "pipelines.get": _op("v2", "get", "/pipelines/{id}"),
    "stages.list": _op("v2", "get", "/stages"),
    "stages.get": _op("v2", "get", "/stages/{id}"),
    "dealFields.list": _op("v2", "get", "/dealFields"),
    "personFields.list": _op("v2", "get", "/personFields"),
    "organizationFields.list": _op("v2", "get", "/organizationFields"),
}
