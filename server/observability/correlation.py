"""The id of the request being served, for every log line it causes.

It lives here, below the HTTP plumbing that sets it (server/plumbing/request_id.py), so that logging never
imports a delivery package.
"""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")


def current_request_id() -> str:
    return request_id_var.get()
