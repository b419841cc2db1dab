# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""METRO / FastMETRO TSV dataset format: writer and random-access reader.

Layout of one split ``<name>`` inside a dataset folder (same as the METRO preprocessed sets)::

    <name>.yaml          img: <name>.img.tsv, label: <name>.label.tsv, hw: <name>.hw.tsv
    <name>.img.tsv       key \\t base64(JPEG bytes)
    <name>.label.tsv     key \\t JSON list with one annotation dict per row
    <name>.hw.tsv        key \\t JSON list [{"height": H, "width": W}]
    <name>.*.lineidx     byte offset of every row of the matching .tsv, one per line

Annotation dict keys (METRO conventions): ``center`` (2,) px, ``scale`` (box side =
scale * 200 px),
``2d_joints`` (24, 3) x, y, conf in image px, ``3d_joints`` (24, 4) x, y, z metres + conf, both in
the J24 LSP-extended order, ``has_2d_joints``, ``has_3d_joints``, ``pose`` (72,), ``betas`` (10,),
``has_smpl``, ``gender``. Extra keys written by the synthetic generator are documented in
``postometro_ros/synth/generator.py``.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np
import yaml


def lineidx_path(tsv_path: str | os.PathLike) -> Path:
    """Return the ``.lineidx`` path METRO uses for a TSV file (extension replaced)."""
    p = Path(tsv_path)
    return p.with_suffix('.lineidx')


def encode_image(image_rgb: np.ndarray, quality: int = 92) -> str:
    """Encode an RGB uint8 image (H, W, 3) as base64 JPEG text."""
    ok, buf = cv2.imencode('.jpg', cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError('JPEG encoding failed')
    return base64.b64encode(buf.tobytes()).decode('ascii')


def decode_image(b64: str) -> np.ndarray:
    """Decode base64 image text into an RGB uint8 array (H, W, 3)."""
    buf = np.frombuffer(base64.b64decode(b64), dtype=np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError('could not decode image bytes')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class TSVWriter:
    """Streams rows to a TSV file and writes its ``.lineidx`` alongside.

    Rows are lists of strings without tabs or newlines. Use as a context manager.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fp = open(self.path, 'wb')
        self._idx = open(lineidx_path(self.path), 'w')
        self._pos = 0
        self.num_rows = 0

    def write(self, row: Sequence[str]) -> None:
        """Append one row."""
        for field in row:
            if '\t' in field or '\n' in field:
                raise ValueError('TSV fields must not contain tabs or newlines')
        data = ('\t'.join(row) + '\n').encode('utf-8')
        self._idx.write(f'{self._pos}\n')
        self._fp.write(data)
        self._pos += len(data)
        self.num_rows += 1

    def close(self) -> None:
        self._fp.close()
        self._idx.close()

    def __enter__(self) -> 'TSVWriter':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_tsv(path: str | os.PathLike, rows: Iterable[Sequence[str]]) -> int:
    """Write all ``rows`` to ``path`` (+ ``.lineidx``); returns the row count."""
    with TSVWriter(path) as w:
        for row in rows:
            w.write(row)
        return w.num_rows


def generate_lineidx(path: str | os.PathLike) -> Path:
    """(Re)build the ``.lineidx`` of an existing TSV file, e.g. one copied without it."""
    out = lineidx_path(path)
    with open(path, 'rb') as fp, open(out, 'w') as idx:
        pos = 0
        for line in fp:
            idx.write(f'{pos}\n')
            pos += len(line)
    return out


class TSVFile:
    """Random access to the rows of a TSV file through its ``.lineidx`` offsets.

    Re-opens the file after a fork, so one instance can be shared with DataLoader workers.
    """

    def __init__(self, path: str | os.PathLike, generate_missing_lineidx: bool = True):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f'TSV file not found: {self.path}')
        idx = lineidx_path(self.path)
        if not idx.is_file():
            if not generate_missing_lineidx:
                raise FileNotFoundError(f'missing line index {idx} for {self.path}')
            generate_lineidx(self.path)
        with open(idx) as fp:
            self._offsets = np.array([int(x) for x in fp.read().split()], dtype=np.int64)
        self._fp = None
        self._pid = None
        self._key_index: dict[str, int] | None = None

    def __len__(self) -> int:
        return int(self._offsets.shape[0])

    def num_rows(self) -> int:
        """Number of rows (METRO's name for ``len``)."""
        return len(self)

    def _file(self):
        if self._fp is None or self._pid != os.getpid():
            self._fp = open(self.path, 'rb')
            self._pid = os.getpid()
        return self._fp

    def __getitem__(self, index: int) -> list[str]:
        """Row ``index`` as a list of fields."""
        if index < 0:
            index += len(self)
        fp = self._file()
        fp.seek(int(self._offsets[index]))
        return fp.readline().decode('utf-8').rstrip('\r\n').split('\t')

    def get_key(self, index: int) -> str:
        """First column of row ``index``."""
        return self[index][0]

    def index_of(self, key: str) -> int:
        """Row index of ``key`` (builds a key table on first use)."""
        if self._key_index is None:
            self._key_index = {self.get_key(i): i for i in range(len(self))}
        return self._key_index[key]

    def get_by_key(self, key: str) -> list[str]:
        """Row whose first column is ``key``."""
        return self[self.index_of(key)]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state['_fp'] = None
        state['_pid'] = None
        return state

    def __del__(self) -> None:
        if getattr(self, '_fp', None) is not None:
            self._fp.close()


class TSVSplitWriter:
    """Writes one split (img, label, hw TSVs + yaml) row by row."""

    def __init__(self, out_dir: str | os.PathLike, split_name: str, jpeg_quality: int = 92):
        self.out_dir = Path(out_dir)
        self.name = split_name
        self.quality = jpeg_quality
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._img = TSVWriter(self.out_dir / f'{split_name}.img.tsv')
        self._label = TSVWriter(self.out_dir / f'{split_name}.label.tsv')
        self._hw = TSVWriter(self.out_dir / f'{split_name}.hw.tsv')

    def write(self, key: str, image_rgb: np.ndarray | str, labels: list[dict]) -> None:
        """Append a row: ``image_rgb`` (H, W, 3) uint8 or already base64 JPEG text."""
        if isinstance(image_rgb, str):
            b64 = image_rgb
            h, w = decode_image(b64).shape[:2]
        else:
            b64 = encode_image(image_rgb, self.quality)
            h, w = image_rgb.shape[:2]
        self.write_encoded(key, b64, (h, w), labels)

    def write_encoded(self, key: str, b64: str, hw: tuple[int, int], labels: list[dict]) -> None:
        """Append a row whose image is already base64 JPEG text of size ``hw``."""
        self._img.write([key, b64])
        self._label.write([key, json.dumps(labels, separators=(',', ':'))])
        self._hw.write([key, json.dumps([{'height': int(hw[0]), 'width': int(hw[1])}])])

    @property
    def num_rows(self) -> int:
        return self._img.num_rows

    def close(self) -> Path:
        """Close the TSVs and write ``<name>.yaml``; returns the yaml path."""
        for w in (self._img, self._label, self._hw):
            w.close()
        desc = {'img': f'{self.name}.img.tsv', 'label': f'{self.name}.label.tsv',
                'hw': f'{self.name}.hw.tsv'}
        path = self.out_dir / f'{self.name}.yaml'
        with open(path, 'w') as fp:
            yaml.safe_dump(desc, fp, sort_keys=False)
        return path

    def __enter__(self) -> 'TSVSplitWriter':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_tsv_split(out_dir: str | os.PathLike, split_name: str,
                    records: Iterable[tuple[str, np.ndarray, list[dict]]],
                    jpeg_quality: int = 92) -> Path:
    """Write a whole split from ``(key, image_rgb (H, W, 3) uint8, labels)`` records.

    Returns:
        Path of the split's yaml description.
    """
    w = TSVSplitWriter(out_dir, split_name, jpeg_quality)
    for key, image, labels in records:
        w.write(key, image, labels)
    return w.close()


class TSVSplit:
    """Reader for a split described by a METRO yaml (``img``, ``label``, optional ``hw``).

    Paths in the yaml are relative to the yaml's folder.
    """

    def __init__(self, yaml_path: str | os.PathLike):
        self.yaml_path = Path(yaml_path)
        with open(self.yaml_path) as fp:
            desc = yaml.safe_load(fp)
        root = self.yaml_path.parent
        self.img = TSVFile(root / desc['img'])
        self.label = TSVFile(root / desc['label']) if desc.get('label') else None
        self.hw = TSVFile(root / desc['hw']) if desc.get('hw') else None
        if self.label is not None and len(self.label) != len(self.img):
            raise ValueError(f'{self.yaml_path}: img and label TSVs differ in length')

    def __len__(self) -> int:
        return len(self.img)

    def key(self, index: int) -> str:
        return self.img.get_key(index)

    def image(self, index: int) -> np.ndarray:
        """RGB uint8 image (H, W, 3) of row ``index``."""
        return decode_image(self.img[index][-1])

    def labels(self, index: int) -> list[dict]:
        """Annotation list of row ``index`` (METRO: a list whose first entry is used)."""
        if self.label is None:
            return []
        return json.loads(self.label[index][1])

    def image_hw(self, index: int) -> tuple[int, int]:
        """(height, width) from the hw TSV (or by decoding the image when there is none)."""
        if self.hw is None:
            return self.image(index).shape[:2]
        field = self.hw[index][1]
        try:
            d = json.loads(field)[0]
            return int(d['height']), int(d['width'])
        except ValueError:
            h, w = field.split(' ')[:2]
            return int(h), int(w)

    def index_of(self, key: str) -> int:
        return self.img.index_of(key)
