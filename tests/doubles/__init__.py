"""Loopback stand-ins for the services the app talks to, used by tests over real HTTP."""
