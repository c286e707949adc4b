"""Typed client for Pipedrive's OAuth server and REST API. No models, no views."""
