"""Resumable HTTP(S) downloads with checksums, for ``vlprompt data prepare --download``.

A download goes to ``<file>.part``; an interrupted one resumes from the bytes it has (an HTTP ``Range`` request;
a server that ignores it sends the whole file again, which then replaces the partial one). The finished file is
checked against its MD5 (the value torchvision's dataset classes pin, where they pin one) before it is renamed
into place, so a file under its final name is always complete and checked. A wrong checksum removes the partial
file and names the URL; a host that cannot be reached is one line naming the URL and the manual alternative.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from vlprompt.errors import VLPromptError
from vlprompt.progress import progress

CHUNK = 1 << 20


class HostUnreachable(VLPromptError):
    """A download whose host did not answer or refused the file (no network, a dead link)."""


TIMEOUT_S = 60


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def check_md5(path: Path, md5: Optional[str], origin: str) -> None:
    """Refuse ``path`` when its MD5 is not ``md5`` (``None``: the source publishes none, nothing to check)."""
    if md5 is None:
        return
    got = md5_of(path)
    if got != md5:
        raise VLPromptError(
            f"{origin}: MD5 {got} != expected {md5}; the file is damaged or another version "
            f"(delete it and download it again)"
        )


def download(url: str, dest: Path, md5: Optional[str], manual: str) -> Path:
    """Fetch ``url`` into ``dest`` (resuming ``dest.part``), check ``md5``, and return ``dest``.

    ``manual`` says how to get the file by hand; it ends the error line when the host fails.
    """
    if dest.is_file():
        return dest
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the partial file is already whole
            return _finish(part, dest, md5, url)
        raise HostUnreachable(f"cannot download {url}: HTTP {exc.code} {exc.reason}; {manual}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise HostUnreachable(f"cannot download {url}: {reason}; {manual}") from None
    with response:
        resumed = have and response.status == 206
        length = response.headers.get("Content-Length")
        total = (int(length) + (have if resumed else 0)) if length else None
        bar = progress(total=total, desc=f"download {dest.name}", unit="B", interval=5.0)
        bar.update(have if resumed else 0)
        try:
            with open(part, "ab" if resumed else "wb") as out, bar:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    bar.update(len(block))
        except (OSError, http.client.HTTPException) as exc:
            raise VLPromptError(
                f"download of {url} interrupted ({getattr(exc, 'reason', None) or exc}); run the same command "
                f"again to resume from {part}"
            ) from None
    if total is not None and part.stat().st_size != total:
        raise VLPromptError(
            f"download of {url} stopped at {part.stat().st_size} of {total} bytes; run the same command again "
            f"to resume from {part}"
        )
    return _finish(part, dest, md5, url)


def _finish(part: Path, dest: Path, md5: Optional[str], url: str) -> Path:
    try:
        check_md5(part, md5, f"download of {url}")
    except VLPromptError:
        part.unlink()
        raise
    os.replace(part, dest)
    return dest
