"""Encryption of the install registry's secrets: Fernet under one or more keys (MultiFernet).

The setting ``CONNECTOR_INSTALLS__ENCRYPTION_KEYS`` holds one or more Fernet keys separated by
commas. The *first* key encrypts; *every* key decrypts. Make a key with::

    python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'

Rotating the key, with no downtime and nothing lost:

1. Put the new key *first* in every instance's setting, the old one after it
   (``NEW,OLD``), and restart them: they read both, and write under the new one.
2. Run ``connector accounts rotate-key``: every install is written again under the new key.
3. Drop the old key from the setting (``NEW``) and restart.

A record written before step 2 and superseded since stays in the compacted topic until
compaction removes it; the table reads past it (the newer record of its account wins), so it
does no harm. A record whose *latest* version is under a key no longer configured is reported
as :class:`~connector.installs.errors.InstallUnreadable`, naming the account: that account gets
no route, every other account keeps flowing, and putting the key back fixes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from connector.errors import ConfigError
from connector.installs.errors import InstallUnreadable

KEYS_SETTING = "CONNECTOR_INSTALLS__ENCRYPTION_KEYS"


def generate_key() -> str:
    """A new random Fernet key (URL-safe base64 text)."""
    return Fernet.generate_key().decode("ascii")


class SecretCipher:
    """Encrypts under the first key, decrypts under any (``cryptography``'s MultiFernet)."""

    __slots__ = ("_fernet", "_primary", "key_count")

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise ConfigError(f"{KEYS_SETTING}: at least one Fernet key is required")
        fernets = []
        for position, key in enumerate(keys, 1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                raise ConfigError(f"{KEYS_SETTING}: key {position} of {len(keys)} is not a "
                                  f"Fernet key (32 bytes, URL-safe base64)") from None
        self._primary = fernets[0]
        self._fernet = MultiFernet(fernets)
        self.key_count = len(fernets)

    @classmethod
    def from_setting(cls, value: str) -> SecretCipher:
        """From the setting's text: keys separated by commas, the first one encrypting."""
        return cls([key.strip() for key in value.split(",") if key.strip()])

    def __repr__(self) -> str:
        return f"SecretCipher(keys={self.key_count})"

    def encrypt(self, plaintext: str) -> str:
        """A Fernet token (text) of ``plaintext`` under the first key."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str, *, account: str, what: str = "a secret") -> str:
        """The plaintext of ``token``; :class:`InstallUnreadable` naming ``account`` when no
        configured key opens it (or it is no Fernet token at all)."""
        return self.open(token, account=account, what=what)[0]

    def open(self, token: str, *, account: str, what: str = "a secret") -> tuple[str, bool]:
        """The plaintext of ``token`` and whether it is under the first key already (False:
        `connector accounts rotate-key` has something to do); errors as :meth:`decrypt`."""
        data = token.encode("ascii", "replace")
        try:
            return self._primary.decrypt(data).decode("utf-8"), True
        except (InvalidToken, UnicodeError):
            pass
        try:
            return self._fernet.decrypt(data).decode("utf-8"), False
        except (InvalidToken, UnicodeError):
            raise InstallUnreadable(
                account, f"{what} is encrypted under a key that is not in {KEYS_SETTING} "
                         f"({self.key_count} key(s) configured), or is damaged") from None
