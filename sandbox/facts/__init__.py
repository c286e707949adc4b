"""Pipedrive's facts, written once: the sandbox serves them and the tests' double reuses them.

Plain Python (no Django models, no settings), so ``tests/doubles/`` can import it without a database.
Each fact has one home:

- ``openapi``: the one loader of Pipedrive's OpenAPI files (``vendor/pipedrive-openapi/``), and what
  is read from them: each operation's scopes and ``x-token-cost``, request-body enums;
- ``scopes``: the registered app's scopes and what an install grants (admin or not);
- ``limits``: lifetimes, page sizes, the webhook limit, burst and daily-budget limits and their headers;
- ``errors``: the error bodies Pipedrive answers with;
- ``cursor``: v2 cursor encoding;
- ``validation``: checks of query parameters and request bodies shared by both imitations;
- ``wire``: how records look on the wire (API v2 deals, persons, organizations, pipelines, stages;
  API v1 notes, users, leads, webhooks; the token response);
- ``webhook_bodies``: webhook deliveries, v2 and v1, as Pipedrive's documentation prints them.
"""
