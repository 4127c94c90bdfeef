"""Secrets out of URLs: user info and secret-looking query parameters become ``***``.

Used wherever a URL can reach a log line, a status, a termination message or a file a restore
writes (``restored-configuration.json``): the snapshot's configuration, destination
descriptions, and the one-line errors of the backup CLI. ``postgresql://u:pw@h/db`` →
``postgresql://u:***@h/db``; ``rediss://TOKEN@h`` → ``rediss://***@h``;
``milvus://h?token=x&db=a`` → ``milvus://h?token=***&db=a``.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, quote, urlsplit

MASK = "***"
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|key|sig|credential|auth|session", re.IGNORECASE)
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>()]+")


def _netloc(parts: SplitResult) -> str:
    if "@" not in parts.netloc:
        return parts.netloc
    userinfo, host = parts.netloc.rsplit("@", 1)
    if ":" in userinfo:  # user:password -> keep the user, hide the password
        return f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    return f"{MASK}@{host}"  # a lone user-info part is a token (rediss://TOKEN@host)


def _query(query: str) -> str:
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    return "&".join(
        f"{quote(k, safe='')}={MASK if _SECRET_PARAM.search(k) else quote(v, safe='/:,')}"
        for k, v in pairs
    )


def redact_url(url: str) -> str:
    """The URL with user info secrets and secret query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if not parts.scheme or "://" not in url:
        return url
    netloc, query = _netloc(parts), _query(parts.query)
    if netloc == parts.netloc and query == parts.query:
        return url
    return (
        f"{parts.scheme}://{netloc}{parts.path}"
        + (f"?{query}" if query else "")
        + (f"#{parts.fragment}" if parts.fragment else "")
    )


def redact_text(text: str) -> str:
    """Every URL inside ``text`` redacted (for error messages that quote one)."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)
