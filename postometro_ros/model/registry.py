# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Registry of known checkpoints (``models/registry/*.yaml``) and the ``postometro-fetch`` command.

One YAML file per checkpoint::

    name: resnet50_imagenet_v1          # unique, = file stem
    description: torchvision ResNet-50 ImageNet weights (backbone init)
    url: https://download.pytorch.org/models/resnet50-0676ba61.pth  # null: manual download
    page: https://...                    # where a human finds it (manual downloads)
    sha256: null                         # full hex digest where known
    sha256_prefix: '0676ba61'            # leading hex digits where only those are published
    license: BSD-3-Clause
    variant: postometro_s_r50            # config name it belongs to
    format: torchvision  # postometro_ros | official | fastmetro | pct | torchvision | timm
    filename: backbones/resnet50-0676ba61.pth   # relative to the models/ directory

``postometro-fetch fetch NAME`` downloads to a temporary file while hashing, checks the digest
and only then moves the file into place; ``file://`` URLs work, so the path is testable offline.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import os
from pathlib import Path
import sys
import urllib.error
import urllib.request

import yaml

_logger = logging.getLogger(__name__)

__all__ = [
    'FORMATS',
    'RegistryEntry',
    'default_models_dir',
    'default_registry_dir',
    'fetch',
    'load_registry',
    'main',
    'sha256_file',
    'verify',
]

FORMATS = ('postometro_ros', 'official', 'fastmetro', 'pct', 'torchvision', 'timm')
_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class RegistryEntry:
    """One known checkpoint (see the module docstring for the YAML keys)."""

    name: str
    description: str
    filename: str
    format: str
    license: str
    variant: str | None = None
    url: str | None = None
    page: str | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None
    size_bytes: int | None = None
    notes: str | None = None

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f'{self.name}: format must be one of {FORMATS}, got {self.format!r}')
        for field in ('sha256', 'sha256_prefix'):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, str)
                                      or any(c not in '0123456789abcdef' for c in value)):
                raise ValueError(f'{self.name}: {field} must be a quoted lower-case hex string, '
                                 f'got {value!r}')
        if self.sha256 is not None and len(self.sha256) != 64:
            raise ValueError(f'{self.name}: sha256 must have 64 hex digits')


def _installed_models_dir() -> Path | None:
    """``share/postometro_ros/models`` of a colcon/ament install, if there is one."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory('postometro_ros')) / 'models'
    except (ImportError, LookupError, ValueError):
        return None


def default_models_dir() -> Path:
    """``$POSTOMETRO_MODELS``, else the source tree's ``models/``, else the installed share."""
    env = os.environ.get('POSTOMETRO_MODELS')
    if env:
        return Path(env)
    source_tree = Path(__file__).resolve().parents[2] / 'models'
    if (source_tree / 'registry').is_dir():
        return source_tree
    return _installed_models_dir() or Path(sys.prefix) / 'share' / 'postometro_ros' / 'models'


def default_registry_dir() -> Path:
    """``$POSTOMETRO_REGISTRY``, else ``<models dir>/registry``."""
    env = os.environ.get('POSTOMETRO_REGISTRY')
    return Path(env) if env else default_models_dir() / 'registry'


def load_registry(registry_dir: str | os.PathLike | None = None) -> dict[str, RegistryEntry]:
    """Read every ``*.yaml`` in the registry directory.

    Raises:
        ValueError: a file has unknown keys, a bad hash, or its name differs from its stem.
    """
    registry_dir = Path(registry_dir) if registry_dir else default_registry_dir()
    known = {f.name for f in dataclasses.fields(RegistryEntry)}
    entries: dict[str, RegistryEntry] = {}
    for path in sorted(registry_dir.glob('*.yaml')):
        data = yaml.safe_load(path.read_text()) or {}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f'{path}: unknown keys {sorted(unknown)} (known: {sorted(known)})')
        try:
            entry = RegistryEntry(**data)
        except TypeError as exc:
            raise ValueError(f'{path}: {exc}') from exc
        if entry.name != path.stem:
            raise ValueError(f'{path}: name {entry.name!r} must equal the file stem')
        entries[entry.name] = entry
    return entries


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _check_digest(entry: RegistryEntry, digest: str, *, allow_unverified: bool) -> None:
    if entry.sha256 is not None:
        if digest != entry.sha256:
            raise ValueError(f'{entry.name}: sha256 mismatch: expected {entry.sha256}, '
                             f'got {digest}')
    elif entry.sha256_prefix is not None:
        if not digest.startswith(entry.sha256_prefix):
            raise ValueError(f'{entry.name}: sha256 mismatch: expected prefix '
                             f'{entry.sha256_prefix}, got {digest}')
        _logger.info('%s: sha256 prefix %s matches (full digest %s)', entry.name,
                     entry.sha256_prefix, digest)
    elif not allow_unverified:
        raise ValueError(f'{entry.name}: no sha256 is registered, so the file cannot be '
                         f'verified (its sha256 is {digest}); pass --allow-unverified to accept '
                         f'it and add the digest to the registry file')
    else:
        _logger.warning('%s: accepted without a registered hash; sha256 = %s', entry.name, digest)


def verify(entry: RegistryEntry, path: str | os.PathLike, *,
           allow_unverified: bool = False) -> str:
    """Check a local file against the registered hash; returns its sha256."""
    digest = sha256_file(path)
    _check_digest(entry, digest, allow_unverified=allow_unverified)
    return digest


def fetch(entry: RegistryEntry, *, models_dir: str | os.PathLike | None = None,
          dest: str | os.PathLike | None = None, url: str | None = None, force: bool = False,
          allow_unverified: bool = False, timeout_s: float = 60.0) -> Path:
    """Download a registered checkpoint and verify its hash before moving it into place.

    Args:
        entry: the registry entry.
        models_dir: base directory for ``entry.filename`` (default :func:`default_models_dir`).
        dest: explicit output path (overrides ``models_dir``/``filename``).
        url: override the registered URL (mirrors, ``file://`` copies).
        force: download even if a verified file is already there.
        allow_unverified: accept files for which no hash is registered.
        timeout_s: socket timeout.

    Returns:
        The path of the verified file.

    Raises:
        ValueError: no URL is known (manual download) or the hash does not match.
        ConnectionError: the download failed (e.g. no network).
    """
    dest = Path(dest) if dest else Path(models_dir or default_models_dir()) / entry.filename
    if dest.is_file() and not force:
        verify(entry, dest, allow_unverified=allow_unverified)
        _logger.info('%s: already present and verified at %s', entry.name, dest)
        return dest
    url = url or entry.url
    if not url:
        raise ValueError(f'{entry.name}: no download URL is registered; download it by hand from '
                         f'{entry.page or "the upstream project"}, place it at {dest}, then run '
                         f'`postometro-fetch verify {entry.name}`')
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + '.part')
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(tmp, 'wb') as out:
            for chunk in iter(lambda: response.read(_CHUNK), b''):
                digest.update(chunk)
                out.write(chunk)
        _check_digest(entry, digest.hexdigest(), allow_unverified=allow_unverified)
    except (urllib.error.URLError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise ConnectionError(f'{entry.name}: download from {url} failed: {exc}') from exc
    except ValueError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dest)
    _logger.info('%s: saved to %s (sha256 %s)', entry.name, dest, digest.hexdigest())
    return dest


def _print_table(entries: dict[str, RegistryEntry], models_dir: Path) -> None:
    rows = [('name', 'format', 'variant', 'hash', 'present', 'license')]
    for entry in entries.values():
        hashed = 'sha256' if entry.sha256 else ('prefix' if entry.sha256_prefix else 'none')
        present = 'yes' if (models_dir / entry.filename).is_file() else 'no'
        rows.append((entry.name, entry.format, entry.variant or '-', hashed, present,
                     entry.license))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print('  '.join(cell.ljust(width) for cell, width in zip(row, widths)))


def main(argv: list[str] | None = None) -> int:
    """``postometro-fetch``: list, fetch or verify registered checkpoints."""
    parser = argparse.ArgumentParser(prog='postometro-fetch', description=__doc__.split('\n')[0])
    parser.add_argument('--registry', type=Path, default=None,
                        help='registry directory (default: models/registry)')
    parser.add_argument('--models-dir', type=Path, default=None,
                        help='where checkpoints are stored (default: models/)')
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('list', help='show the registered checkpoints')
    p_fetch = sub.add_parser('fetch', help='download and verify a checkpoint')
    p_fetch.add_argument('name')
    p_fetch.add_argument('--url', help='override the registered URL (mirror or file://)')
    p_fetch.add_argument('--dest', type=Path, help='explicit output file')
    p_fetch.add_argument('--force', action='store_true', help='download even if present')
    p_fetch.add_argument('--allow-unverified', action='store_true',
                         help='accept a file for which no hash is registered')
    p_fetch.add_argument('--timeout', type=float, default=60.0, help='socket timeout, s')
    p_verify = sub.add_parser('verify', help='check a local file against the registered hash')
    p_verify.add_argument('name')
    p_verify.add_argument('--path', type=Path, help='file to check (default: registered place)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')

    entries = load_registry(args.registry)
    models_dir = args.models_dir or default_models_dir()
    if args.command == 'list':
        _print_table(entries, models_dir)
        return 0
    if args.name not in entries:
        print(f'unknown checkpoint {args.name!r}; known: {", ".join(entries)}', file=sys.stderr)
        return 2
    entry = entries[args.name]
    try:
        if args.command == 'fetch':
            path = fetch(entry, models_dir=models_dir, dest=args.dest, url=args.url,
                         force=args.force, allow_unverified=args.allow_unverified,
                         timeout_s=args.timeout)
        else:
            path = args.path or models_dir / entry.filename
            if not path.is_file():
                print(f'{path} does not exist', file=sys.stderr)
                return 1
            verify(entry, path)
    except (ValueError, ConnectionError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    print(f'{entry.name}: OK {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
