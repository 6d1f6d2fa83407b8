"""Extracting the datasets' archives safely: tar in any compression (with tar's ``data`` filter: no member may leave
the target folder, no device files), zip (member names checked), and RAR (UCF101's videos) through an installed
``unrar``, ``7z`` or ``bsdtar``, since Python reads no RAR."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

from vlprompt.errors import VLPromptError

ARCHIVE_ENDINGS = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip", ".rar")
#: RAR extractors tried in turn: (program, arguments before the archive, option that names the target folder)
RAR_TOOLS = (("unrar", ["x", "-o-", "-idq"], None), ("7z", ["x", "-y", "-bd"], "-o"), ("bsdtar", ["-xf"], "-C"))


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_ENDINGS)


def extract(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` into folder ``dest`` (created) and return ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    if archive.name.lower().endswith(".rar"):
        return _extract_rar(archive, dest)
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                root = dest.resolve()
                for name in zf.namelist():
                    if not (root / name).resolve().is_relative_to(root):
                        raise VLPromptError(
                            f"{archive}: member {name!r} would be written outside {dest}; not extracted"
                        )
                zf.extractall(dest)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(dest, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise VLPromptError(f"cannot extract {archive}: {exc}; the archive is damaged, download it again") from None
    return dest


def _extract_rar(archive: Path, dest: Path) -> Path:
    for program, args, target in RAR_TOOLS:
        exe = shutil.which(program)
        if exe is None:
            continue
        command = [exe, *args, str(archive)]
        command += [f"{target}{dest}"] if target == "-o" else [target, str(dest)] if target else [str(dest) + "/"]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise VLPromptError(f"{program} cannot extract {archive}: {done.stderr.strip()[-200:]}; download it again")
        return dest
    raise VLPromptError(
        f"{archive} is a RAR archive: install unrar, 7z or bsdtar, or extract it yourself and pass --from the "
        "folder that holds the extracted files"
    )
