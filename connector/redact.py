"""Masking for secrets and personal data before they reach logs, reprs or exception messages.

The access token must never appear anywhere we print; emails (contact identifiers) are personal
data and are shown only as ``j***@example.com``.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@|%40)([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def mask_token(token: str) -> str:
    """Return a fingerprint of ``token`` safe to print: its last 4 characters, if long enough."""
    if len(token) >= 16:
        return f"****{token[-4:]}"
    return "****"


def mask_email(email: str) -> str:
    """``john@example.com`` -> ``j***@example.com``; anything not email-shaped becomes ``***``."""
    local, sep, domain = email.partition("@")
    if not sep or not local or not domain:
        return "***"
    return f"{local[0]}***@{domain}"


def mask_emails(text: str) -> str:
    """Mask every email address (plain or with ``%40``) found inside ``text``."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***{m.group(2)}{m.group(3)}", text)
