"""Opening a log by name: the one place that knows every kind of store."""

from __future__ import annotations

import os
import re
import urllib.parse

from .errors import InputError, shown
from .jsonl import JsonlStore
from .store import Store

# The password of a URL's user-info (scheme://user:PASSWORD@host), up to the last '@' of the
# part before the query, so that a password holding '@' or '/' is still covered whole.
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@]*):(?P<password>[^?#]*)@")
# Query parameters; libpq percent-decodes their names too, so `pass%77ord` is a password.
_PARAMETER = re.compile(r"(?P<key>[?&](?P<name>[^=&#]*)=)(?P<value>[^&#]*)")
_SECRET_PARAMETERS = {"password", "sslpassword"}


def _is_secret(parameter: re.Match) -> bool:
    return urllib.parse.unquote(parameter.group("name")).lower() in _SECRET_PARAMETERS


def redact_url(target: str, mask: str | None = "***") -> str:
    """``target`` as it may be shown or written anywhere: every password replaced by ``mask``.

    With ``mask=None`` the passwords are left out altogether, which keeps a URL
    usable where libpq finds the password itself (PGPASSWORD, ~/.pgpass).
    Every message, page and output names a log through this function.
    """
    if "://" not in target:
        return target
    if mask is None:
        target = _USERINFO.sub(r"\g<scheme>\g<user>@", target)
        without = _PARAMETER.sub(lambda m: m.group("key")[0] if _is_secret(m) else m.group(0), target)
        return re.sub(r"[?&](?=&|#|$)", "", without.replace("?&", "?"))
    target = _USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{mask}@", target)
    return _PARAMETER.sub(lambda m: m.group("key") + mask if _is_secret(m) else m.group(0), target)


def url_secrets(target: str) -> list[str]:
    """The passwords in ``target``, as written and percent-decoded, longest first."""
    userinfo = _USERINFO.match(target)
    found = [userinfo.group("password")] if userinfo else []
    found += [m.group("value") for m in _PARAMETER.finditer(target) if _is_secret(m)]
    spelled = {spelling for secret in found if secret for spelling in (secret, urllib.parse.unquote(secret))}
    return sorted(spelled, key=len, reverse=True)


def _lock_timeout() -> float:
    """TIMELINE_LOCK_TIMEOUT: how many seconds a writer waits for another one to finish."""
    given = os.environ.get("TIMELINE_LOCK_TIMEOUT", "300")
    try:
        seconds = float(given)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 10**7:
        raise InputError(f"expected a number of seconds above 0, got {shown(given)}", "TIMELINE_LOCK_TIMEOUT")
    return seconds


def open_store(target: str, *, read_only: bool = False) -> Store:
    """A store for ``target``.

    ``sqlite:///path.db`` is SQLite, ``postgresql://...`` a PostgreSQL server,
    anything else a path to a JSON Lines file.
    """
    if target.startswith("sqlite:///"):
        from .sqlite import SqliteStore

        return SqliteStore(target.removeprefix("sqlite:///"), read_only=read_only)
    if target.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore  # psycopg loads only for PostgreSQL logs.

        return PostgresStore(target, read_only=read_only, lock_timeout=_lock_timeout())
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", target):
        # A mistyped scheme must not become a file named after the URL (and its password).
        raise InputError(
            f"{redact_url(target)}: unknown kind of log; use a file path, sqlite:///path.db or postgresql://..."
        )
    return JsonlStore(target, read_only=read_only, lock_timeout=_lock_timeout())
