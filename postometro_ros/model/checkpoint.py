# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Checkpoint reading, writing and layout conversion for PostoMETRO.

Two kinds of files are handled:

* **Our own format** (``.safetensors``): the weights plus JSON metadata holding the model config,
  the mesh-topology fingerprint (and, by default, the topology arrays themselves, so a checkpoint
  is usable without the asset folder), and free-form provenance. Written by
  :func:`save_checkpoint`, read by :func:`load_checkpoint`; the round trip is bit-exact.
* **Foreign layouts** (``.pth``/``.bin``/``.pt``, read with ``torch.load(weights_only=True)``
  only, never a full unpickle): the official PostoMETRO body network, FastMETRO (as the
  no-pose-token network), PCT checkpoints in the mmpose layout, and torchvision/timm-style
  backbone weights. Each has a ``convert_*`` function (pure key mapping, testable on key/shape
  dicts) and a ``load_*`` function that reads, converts and loads strictly.

Every strict load goes through :func:`check_state_dict`, which raises
:class:`CheckpointMismatchError` naming the missing, unexpected and mis-shaped keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import dataclasses
import datetime
import json
import logging
import os
from pathlib import Path
import pickle
import re
import struct
import types
import typing
from typing import Any

import numpy as np
import torch
from torch import nn

_logger = logging.getLogger(__name__)

__all__ = [
    'CheckpointError',
    'CheckpointMeta',
    'CheckpointMismatchError',
    'FORMAT_NAME',
    'FORMAT_VERSION',
    'check_state_dict',
    'config_from_dict',
    'config_to_dict',
    'convert_backbone_state_dict',
    'convert_fastmetro_state_dict',
    'convert_official_state_dict',
    'convert_pct_state_dict',
    'load_backbone_weights',
    'load_checkpoint',
    'load_fastmetro',
    'load_official_postometro',
    'load_pct',
    'load_state_dict_strict',
    'read_checkpoint',
    'read_foreign_state_dict',
    'save_checkpoint',
    'save_state_dict',
    'update_provenance',
    'safe_torch_load',
]

FORMAT_NAME = 'postometro_ros'
FORMAT_VERSION = 1
_TOPOLOGY_PREFIX = '__topology__.'
# Keys printed per category in an error message; the counts are always complete.
_MAX_LISTED = 25


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, corrupt, of the wrong format or for other mesh assets."""


class CheckpointMismatchError(CheckpointError):
    """The keys or shapes of a state dict do not match the model.

    Attributes:
        missing: keys the model expects that the checkpoint lacks.
        unexpected: keys in the checkpoint the model does not have.
        mismatched: ``(key, expected_shape, checkpoint_shape)`` for keys present in both.
    """

    def __init__(self, *, missing: Iterable[str] = (), unexpected: Iterable[str] = (),
                 mismatched: Iterable[tuple[str, tuple[int, ...], tuple[int, ...]]] = (),
                 source: str = '', note: str = ''):
        self.missing = sorted(missing)
        self.unexpected = sorted(unexpected)
        self.mismatched = sorted(mismatched)
        self.source = source
        lines = [f'checkpoint {source or "<state dict>"} does not match the model: '
                 f'{len(self.missing)} missing, {len(self.unexpected)} unexpected, '
                 f'{len(self.mismatched)} mis-shaped keys']
        for title, items in (('missing', self.missing), ('unexpected', self.unexpected)):
            if items:
                lines.append(f'  {title} ({len(items)}):')
                lines += [f'    {key}' for key in items[:_MAX_LISTED]]
                if len(items) > _MAX_LISTED:
                    lines.append(f'    ... and {len(items) - _MAX_LISTED} more; by prefix: '
                                 + _prefix_summary(items))
        if self.mismatched:
            lines.append(f'  mis-shaped ({len(self.mismatched)}): key: model shape vs checkpoint')
            lines += [f'    {key}: {list(want)} vs {list(got)}'
                      for key, want, got in self.mismatched[:_MAX_LISTED]]
            if len(self.mismatched) > _MAX_LISTED:
                lines.append(f'    ... and {len(self.mismatched) - _MAX_LISTED} more')
        if note:
            lines.append(note)
        super().__init__('\n'.join(lines))


def _prefix_summary(keys: list[str], depth: int = 2) -> str:
    counts: dict[str, int] = {}
    for key in keys:
        prefix = '.'.join(key.split('.')[:depth])
        counts[prefix] = counts.get(prefix, 0) + 1
    return ', '.join(f'{prefix}.* ({n})' for prefix, n in counts.items())


# ---------------------------------------------------------------------------------------------
# Strict key/shape checking
# ---------------------------------------------------------------------------------------------

def _expected_shapes(target: nn.Module | Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    items = target.state_dict().items() if isinstance(target, nn.Module) else target.items()
    return {key: tuple(getattr(value, 'shape', value)) for key, value in items}


def check_state_dict(target: nn.Module | Mapping[str, Any], state_dict: Mapping[str, Any], *,
                     source: str = '', note: str = '') -> None:
    """Raise :class:`CheckpointMismatchError` unless keys and shapes match exactly.

    Args:
        target: a module (its ``state_dict()`` defines the expected keys; meta tensors are fine)
            or a mapping ``key -> tensor or shape``.
        state_dict: the candidate weights (tensors, or anything with ``.shape``).
        source: file name or description used in the message.
        note: extra line appended to the message (e.g. how the keys were converted).
    """
    expected = _expected_shapes(target)
    given = _expected_shapes(state_dict)
    missing = expected.keys() - given.keys()
    unexpected = given.keys() - expected.keys()
    mismatched = [(key, expected[key], given[key]) for key in expected.keys() & given.keys()
                  if expected[key] != given[key]]
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(missing=missing, unexpected=unexpected,
                                      mismatched=mismatched, source=source, note=note)


def load_state_dict_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], *,
                           source: str = '', note: str = '') -> nn.Module:
    """Check keys/shapes with a full report, then ``load_state_dict(strict=True)``."""
    check_state_dict(module, state_dict, source=source, note=note)
    module.load_state_dict(dict(state_dict), strict=True)
    return module


# ---------------------------------------------------------------------------------------------
# Safe reading of foreign files
# ---------------------------------------------------------------------------------------------

def safe_torch_load(path: str | os.PathLike) -> Any:
    """``torch.load`` restricted to tensors and plain containers (``weights_only=True``).

    Raises:
        CheckpointError: the file needs arbitrary code to unpickle, or is not a torch file.
    """
    try:
        return torch.load(os.fspath(path), map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f'{path}: refused to unpickle: the file contains objects other than tensors and plain '
            f'containers, and loading it would run arbitrary code. Convert it in a trusted '
            f'environment to a plain state dict or safetensors. ({exc})') from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f'{path}: not a readable torch checkpoint (truncated or corrupt?): '
                              f'{exc}') from exc


def _unwrap(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """Find the state dict inside common wrappers and drop a DataParallel ``module.`` prefix."""
    # mmcv/mmpose: {'meta': ..., 'state_dict': ...}; PCT's own loader also accepts 'model'.
    while isinstance(obj, Mapping) and not all(torch.is_tensor(v) for v in obj.values()):
        wrapper = next((w for w in ('state_dict', 'model', 'module', 'net')
                        if isinstance(obj.get(w), Mapping)), None)
        if wrapper is None:
            break
        obj = obj[wrapper]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f'{source}: expected a state dict, found {type(obj).__name__}')
    tensors = {k: v for k, v in obj.items() if torch.is_tensor(v)}
    skipped = sorted(set(obj) - set(tensors))
    if skipped:
        _logger.info('%s: ignoring %d non-tensor entries: %s', source, len(skipped), skipped[:10])
    if tensors and all(k.startswith('module.') for k in tensors):
        tensors = {k[len('module.'):]: v for k, v in tensors.items()}
    return tensors


def read_foreign_state_dict(source: str | os.PathLike | Mapping[str, torch.Tensor]
                            ) -> tuple[dict[str, torch.Tensor], str]:
    """Read a plain tensor dict from a ``.safetensors`` or torch file (or pass a mapping through).

    Returns:
        ``(state_dict, name)`` where name describes the source for error messages.
    """
    if isinstance(source, Mapping):
        return _unwrap(source, '<state dict>'), '<state dict>'
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint not found: {path}')
    if path.suffix == '.safetensors':
        tensors, header = _read_safetensors(path)
        state = {k: v for k, v in tensors.items() if not k.startswith(_TOPOLOGY_PREFIX)}
        for alias, canonical in json.loads(header.get('aliases', '{}')).items():
            state[alias] = state[canonical]
        return _unwrap(state, str(path)), str(path)
    return _unwrap(safe_torch_load(path), str(path)), str(path)


# ---------------------------------------------------------------------------------------------
# Layout conversion (pure key maps, work on tensors or anything with .shape)
# ---------------------------------------------------------------------------------------------

def _reconcile_alias(state_dict: dict[str, Any], expected: Iterable[str], alias: str,
                     canonical: str) -> dict[str, Any]:
    """Handle a module registered under two names (official ``pct.extra_backbone`` = backbone).

    Alias keys are dropped when the target has no such module, and filled from the canonical
    keys when the target has the alias but the file does not.
    """
    expected = set(expected)
    out = dict(state_dict)
    has_alias = any(k.startswith(alias) for k in out)
    wants_alias = any(k.startswith(alias) for k in expected)
    if has_alias and not wants_alias:
        for key in [k for k in out if k.startswith(alias)]:
            twin = canonical + key[len(alias):]
            value = out.pop(key)
            if torch.is_tensor(value) and twin in out and torch.is_tensor(out[twin]) \
                    and not value.is_meta and not torch.equal(value, out[twin]):
                _logger.warning('dropping %s although it differs from %s', key, twin)
    elif wants_alias and not has_alias:
        for key in [k for k in out if k.startswith(canonical)]:
            out[alias + key[len(canonical):]] = out[key]
    return out


def convert_official_state_dict(state_dict: Mapping[str, Any],
                                expected_keys: Iterable[str]) -> dict[str, Any]:
    """Official ``PostoMETRO_Body_Network`` state dict -> our PostoMETRO (spec section 10.1).

    Our parameter names are the official ones; the only differences are the duplicated
    ``pct.extra_backbone.*`` keys (an alias of ``pct.backbone`` in the official model).
    """
    return _reconcile_alias(dict(state_dict), expected_keys, 'pct.extra_backbone.',
                            'pct.backbone.')


# FastMETRO wraps torchvision's R50 children in nn.Sequential: 0 conv1, 1 bn1, 2 relu,
# 3 maxpool, 4..7 layer1..4 (spec section 10.3).
_FASTMETRO_R50 = {'0': 'conv1', '1': 'bn1', '4': 'layer1', '5': 'layer2', '6': 'layer3',
                  '7': 'layer4'}
# Heads that exist in FastMETRO but are never used by PostoMETRO's forward.
_FASTMETRO_UNUSED = ('smpl_parameter_regressor.',)


def convert_fastmetro_state_dict(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """FastMETRO state dict -> our no-pose-token PostoMETRO.

    Maps the R50 ``backbone.{0,1,4..7}.*`` to ``backbone.{conv1,bn1,layer1..4}.*`` (HRNet
    backbones keep their names) and drops the unused SMPL-parameter regressor.
    """
    out: dict[str, Any] = {}
    dropped = []
    pattern = re.compile(r'^backbone\.(\d+)\.(.*)$')
    for key, value in state_dict.items():
        if key.startswith(_FASTMETRO_UNUSED):
            dropped.append(key)
            continue
        match = pattern.match(key)
        if match and match.group(1) in _FASTMETRO_R50:
            key = f'backbone.{_FASTMETRO_R50[match.group(1)]}.{match.group(2)}'
        out[key] = value
    if dropped:
        _logger.info('FastMETRO checkpoint: dropped %d unused keys (%s...)', len(dropped),
                     dropped[0])
    return out


def convert_pct_state_dict(state_dict: Mapping[str, Any], expected_keys: Iterable[str], *,
                           prefix: str = '') -> dict[str, Any]:
    """PCT mmpose checkpoint (``backbone.*``, ``extra_backbone.*``, ``keypoint_head.*``) -> target.

    Args:
        state_dict: unwrapped mmpose state dict (``state_dict``/``model`` wrapper removed).
        expected_keys: keys of the target module (a PCT module, or PostoMETRO with ``prefix``).
        prefix: prepended to every key, e.g. ``'pct.'`` when the target is the whole PostoMETRO.

    A stage-1 tokenizer checkpoint only has ``keypoint_head.tokenizer.*`` (+ ``extra_backbone``);
    load those with :func:`load_pct` ``part='tokenizer'``.
    """
    out = {prefix + key: value for key, value in state_dict.items()}
    return _reconcile_alias(out, expected_keys, prefix + 'extra_backbone.', prefix + 'backbone.')


# Classification/pose heads found in ImageNet, SimpleBaseline and HRNet-pose checkpoints.
_BACKBONE_HEADS = ('fc.', 'head.', 'classifier.', 'deconv_layers.', 'final_layer.',
                   'keypoint_head.', 'incre_modules.', 'downsamp_modules.')
_BACKBONE_PREFIXES = ('module.', 'backbone.', 'model.', 'encoder.')


def convert_backbone_state_dict(state_dict: Mapping[str, Any],
                                expected_keys: Iterable[str]) -> dict[str, Any]:
    """torchvision/timm/pose-pretrained backbone weights -> a bare backbone module.

    Strips wrapper prefixes (``module.``, ``backbone.``, ...) and drops classification/pose heads
    (``fc``, ``deconv_layers``, ``final_layer``, ...) that the target module does not have;
    everything else must match strictly.
    """
    expected = set(expected_keys)
    out = dict(state_dict)
    for prefix in _BACKBONE_PREFIXES:
        body = [k for k in out if not k.startswith(_BACKBONE_HEADS)]
        if body and all(k.startswith(prefix) for k in body) \
                and not any(k.startswith(prefix) for k in expected):
            out = {k.removeprefix(prefix): v for k, v in out.items()}
    heads = [k for k in out if k.startswith(_BACKBONE_HEADS) and k not in expected]
    for key in heads:
        del out[key]
    if heads:
        _logger.info('backbone weights: dropped %d head keys (%s...)', len(heads), heads[0])
    return out


# ---------------------------------------------------------------------------------------------
# Loaders for foreign layouts
# ---------------------------------------------------------------------------------------------

def load_official_postometro(source: str | os.PathLike | Mapping[str, torch.Tensor],
                             model: nn.Module) -> nn.Module:
    """Load an official PostoMETRO body-network checkpoint strictly into ``model``."""
    state_dict, name = read_foreign_state_dict(source)
    converted = convert_official_state_dict(state_dict, model.state_dict().keys())
    return load_state_dict_strict(model, converted, source=name,
                                  note='layout: official PostoMETRO body network')


def load_fastmetro(source: str | os.PathLike | Mapping[str, torch.Tensor],
                   model: nn.Module) -> nn.Module:
    """Load a FastMETRO checkpoint strictly into a PostoMETRO built without pose tokens."""
    cfg = getattr(model, 'cfg', None)
    if cfg is not None and getattr(cfg, 'use_pose_tokens', False):
        raise CheckpointError('FastMETRO checkpoints have no pose branch: build the model with '
                              'use_pose_tokens=False (e.g. config "postometro_s_r50_nopose")')
    state_dict, name = read_foreign_state_dict(source)
    note = 'layout: FastMETRO (backbone.0/1/4..7 -> conv1/bn1/layer1..4)'
    if 'transformer_1.encoder.layers.0.self_attn.in_proj_weight' in state_dict:
        layers = len({k.split('.')[3] for k in state_dict
                      if k.startswith('transformer_1.encoder.layers.')})
        note += f'; the file has {layers} encoder layer(s) per transformer (S=1, M=2, L=3)'
    return load_state_dict_strict(model, convert_fastmetro_state_dict(state_dict),
                                  source=name, note=note)


def load_pct(source: str | os.PathLike | Mapping[str, torch.Tensor], model: nn.Module, *,
             part: str = 'all') -> nn.Module:
    """Load a PCT checkpoint (mmpose layout) into a PCT module or into PostoMETRO's ``pct``.

    Args:
        source: path or state dict; the ``state_dict``/``model`` wrapper is removed.
        model: a PostoMETRO (its ``pct`` submodule is the target) or a PCT module.
        part: ``'all'`` (backbone + head + tokenizer, strict over the whole PCT), ``'tokenizer'``
            (stage-1 file: only ``keypoint_head.tokenizer.*``, strict over the tokenizer) or
            ``'backbone'`` (heatmap-pretrained Swin: strict over the backbone).
    """
    target = getattr(model, 'pct', model)
    state_dict, name = read_foreign_state_dict(source)
    if part == 'all':
        converted = convert_pct_state_dict(state_dict, target.state_dict().keys())
        load_state_dict_strict(target, converted, source=name, note='layout: PCT (mmpose)')
    elif part == 'tokenizer':
        tokenizer = target.keypoint_head.tokenizer
        sub = _sub_dict(state_dict, 'keypoint_head.tokenizer.', name)
        load_state_dict_strict(tokenizer, sub, source=name, note='layout: PCT tokenizer')
    elif part == 'backbone':
        load_backbone_weights(state_dict, target.backbone, source_name=name)
    else:
        raise ValueError(f"part must be 'all', 'tokenizer' or 'backbone', got {part!r}")
    return model


def _sub_dict(state_dict: Mapping[str, Any], prefix: str, name: str) -> dict[str, Any]:
    sub = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not sub:
        raise CheckpointMismatchError(missing=[prefix + '*'], source=name,
                                      note=f'no key starts with {prefix!r}')
    return sub


def load_backbone_weights(source: str | os.PathLike | Mapping[str, torch.Tensor],
                          backbone: nn.Module, *, source_name: str | None = None) -> nn.Module:
    """Load torchvision/timm/pose-pretrained weights strictly into a bare backbone module."""
    state_dict, name = read_foreign_state_dict(source)
    converted = convert_backbone_state_dict(state_dict, backbone.state_dict().keys())
    return load_state_dict_strict(backbone, converted, source=source_name or name,
                                  note='layout: backbone (prefixes stripped, heads dropped)')


# ---------------------------------------------------------------------------------------------
# Config <-> JSON
# ---------------------------------------------------------------------------------------------

def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A (nested) dataclass config as a JSON-ready dict."""
    return dataclasses.asdict(cfg)


def _coerce(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
        return config_from_dict(tp, value)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is type(None) and value is None:
                return None
            if dataclasses.is_dataclass(arg) and isinstance(value, Mapping):
                return config_from_dict(arg, value)
        return value
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v) for v in value)
        if args and len(args) == len(value):
            return tuple(_coerce(a, v) for a, v in zip(args, value))
        return tuple(value)
    return value


def config_from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """Rebuild a (nested, frozen) dataclass config from :func:`config_to_dict` output.

    Raises:
        CheckpointError: the dict has fields the class does not know (written by a newer version).
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = set(data) - names
    if unknown:
        raise CheckpointError(f'config fields unknown to {cls.__name__}: {sorted(unknown)}')
    return cls(**{k: _coerce(hints.get(k, Any), v) for k, v in data.items()})


# ---------------------------------------------------------------------------------------------
# Our own format
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CheckpointMeta:
    """Self-description stored in a checkpoint's safetensors header.

    Attributes:
        config: the rebuilt model config (``PostoMETROConfig``).
        config_dict: the same as plain JSON data.
        topology_fingerprint: ``MeshTopology.fingerprint()`` of the mesh assets used in training.
        topology_name: ``MeshTopology.name`` ('smpl' or 'procedural').
        has_topology: the topology arrays are embedded in the file.
        topology: the embedded ``MeshTopology`` (None if not embedded).
        provenance: free-form JSON (data, recipe, metrics, source checkpoint, ...).
        created_utc, torch_version, package_version: written automatically.
    """

    config: Any
    config_dict: dict[str, Any]
    topology_fingerprint: str
    topology_name: str
    has_topology: bool
    provenance: dict[str, Any]
    created_utc: str
    torch_version: str
    package_version: str
    format_version: int = FORMAT_VERSION
    topology: Any = dataclasses.field(default=None, repr=False, compare=False)


def _package_version() -> str:
    try:
        from postometro_ros import __version__
        return str(__version__)
    except ImportError:
        return 'unknown'


def _dedupe_shared(state_dict: Mapping[str, torch.Tensor]
                   ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """safetensors refuses shared storage: keep one name per tensor, remember the aliases."""
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for key, tensor in state_dict.items():
        ident = (tensor.device, tensor.untyped_storage().data_ptr(), tensor.storage_offset(),
                 tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype)
        if tensor.numel() and ident in seen:
            aliases[key] = seen[ident]
            continue
        seen[ident] = key
        unique[key] = tensor.detach().to('cpu').contiguous()
    return unique, aliases


def _topology_tensors(topology: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Flatten a MeshTopology into tensors (faces, CSR parts) + JSON shapes."""
    tensors: dict[str, torch.Tensor] = {}
    shapes: dict[str, list[int]] = {}
    for level, faces in enumerate(topology.faces):
        tensors[f'{_TOPOLOGY_PREFIX}faces.{level}'] = torch.from_numpy(np.ascontiguousarray(faces))
    for group in ('upsample', 'downsample', 'adjacency'):
        for level, mat in enumerate(getattr(topology, group)):
            mat = mat.tocsr()
            base = f'{_TOPOLOGY_PREFIX}{group}.{level}'
            for part in ('data', 'indices', 'indptr'):
                tensors[f'{base}.{part}'] = torch.from_numpy(
                    np.ascontiguousarray(getattr(mat, part)))
            shapes[base] = list(mat.shape)
    return tensors, {'name': topology.name, 'shapes': shapes}


def _topology_from_tensors(tensors: Mapping[str, torch.Tensor], info: Mapping[str, Any]) -> Any:
    import scipy.sparse as sp

    from postometro_ros.body.topology import MeshTopology

    faces = []
    while f'{_TOPOLOGY_PREFIX}faces.{len(faces)}' in tensors:
        faces.append(tensors[f'{_TOPOLOGY_PREFIX}faces.{len(faces)}'].numpy())
    groups = {}
    for group in ('upsample', 'downsample', 'adjacency'):
        mats = []
        while f'{_TOPOLOGY_PREFIX}{group}.{len(mats)}' in info['shapes']:
            base = f'{_TOPOLOGY_PREFIX}{group}.{len(mats)}'
            parts = [tensors[f'{base}.{p}'].numpy() for p in ('data', 'indices', 'indptr')]
            mats.append(sp.csr_matrix(tuple(parts), shape=tuple(info['shapes'][base])))
        groups[group] = tuple(mats)
    return MeshTopology(faces=tuple(faces), name=info['name'], **groups)


def save_state_dict(path: str | os.PathLike, state_dict: Mapping[str, torch.Tensor],
                    metadata: Mapping[str, Any] | None = None) -> Path:
    """Write any state dict as safetensors with JSON metadata (shared tensors de-duplicated).

    The write goes to a temporary file first, so an interrupted save never leaves a truncated
    checkpoint under the final name.
    """
    from safetensors.torch import save_file

    path = Path(path)
    unique, aliases = _dedupe_shared(state_dict)
    header = {key: json.dumps(value) for key, value in (metadata or {}).items()}
    header['aliases'] = json.dumps(aliases)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    save_file(unique, os.fspath(tmp), metadata=header)
    os.replace(tmp, path)
    return path


def save_checkpoint(path: str | os.PathLike, model: nn.Module, cfg: Any, topology: Any,
                    provenance: Mapping[str, Any] | None = None, *,
                    embed_topology: bool = True) -> Path:
    """Save a model in our self-describing safetensors format.

    Args:
        path: output ``.safetensors`` file.
        model: the network (its full ``state_dict()``, buffers included, is stored).
        cfg: its ``PostoMETROConfig`` (stored as JSON).
        topology: the ``MeshTopology`` the model was built with (fingerprint always stored; the
            arrays too unless ``embed_topology=False``).
        provenance: JSON-serialisable description (training data, recipe, metrics, parent).

    Returns:
        The written path.
    """
    tensors = dict(model.state_dict())
    bad = [k for k in tensors if k.startswith(_TOPOLOGY_PREFIX)]
    if bad:
        raise ValueError(f'parameter names may not start with {_TOPOLOGY_PREFIX!r}: {bad}')
    topo_info = None
    if embed_topology:
        topo_tensors, topo_info = _topology_tensors(topology)
        tensors.update(topo_tensors)
    metadata = {
        'format': FORMAT_NAME,
        'format_version': FORMAT_VERSION,
        'config_class': f'{type(cfg).__module__}.{type(cfg).__qualname__}',
        'config': config_to_dict(cfg),
        'topology_fingerprint': topology.fingerprint(),
        'topology_name': topology.name,
        'topology': topo_info,
        'provenance': dict(provenance or {}),
        'created_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'torch_version': torch.__version__,
        'package_version': _package_version(),
    }
    return save_state_dict(path, tensors, metadata)


def update_provenance(path: str | os.PathLike, **fields: Any) -> Path:
    """Add or replace provenance fields of one of our checkpoints in place (e.g. the offline
    metrics measured after training); tensors and all other metadata stay as they are."""
    path = Path(path)
    tensors, header = _read_safetensors(path)
    meta = {key: json.loads(value) for key, value in header.items()}
    if meta.get('format') != FORMAT_NAME:
        raise CheckpointError(f'{path}: not a {FORMAT_NAME} checkpoint (no format tag)')
    for alias, canonical in meta.pop('aliases', {}).items():
        tensors[alias] = tensors[canonical]          # shared again, so stored once again
    meta['provenance'] = {**meta.get('provenance', {}), **fields}
    return save_state_dict(path, tensors, meta)


def _check_safetensors_file(path: Path) -> dict[str, Any]:
    """Parse the safetensors header and name the tensors a truncated file cuts off."""
    size = path.stat().st_size
    with open(path, 'rb') as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f'{path}: file is {size} bytes, too short for a safetensors '
                                  f'header (truncated?)')
        (header_len,) = struct.unpack('<Q', head)
        if 8 + header_len > size:
            raise CheckpointError(f'{path}: safetensors header claims {header_len} bytes but the '
                                  f'file has {size}: truncated before any tensor data')
        try:
            header = json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f'{path}: corrupt safetensors header: {exc}') from exc
    data_size = size - 8 - header_len
    cut = [key for key, info in header.items()
           if key != '__metadata__' and info['data_offsets'][1] > data_size]
    if cut:
        raise CheckpointMismatchError(
            missing=cut, source=str(path),
            note=f'the file is truncated: {data_size} data bytes present, these tensors need more')
    return header


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    header = _check_safetensors_file(path)
    try:
        tensors = load_file(os.fspath(path))
    except SafetensorError as exc:
        raise CheckpointError(f'{path}: unreadable safetensors file: {exc}') from exc
    return tensors, header.get('__metadata__') or {}


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], CheckpointMeta]:
    """Read one of our checkpoints without building the model.

    Returns:
        ``(state_dict, meta)``; the state dict has aliases restored and no topology arrays.
    """
    from postometro_ros.model.config import PostoMETROConfig

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint not found: {path}')
    tensors, header = _read_safetensors(path)
    if header.get('format') != json.dumps(FORMAT_NAME):
        raise CheckpointError(f'{path}: not a {FORMAT_NAME} checkpoint (no format tag); for '
                              f'foreign layouts use load_official_postometro / load_fastmetro / '
                              f'load_pct')
    meta_raw = {key: json.loads(value) for key, value in header.items()}
    if meta_raw['format_version'] > FORMAT_VERSION:
        raise CheckpointError(f'{path}: format version {meta_raw["format_version"]} is newer '
                              f'than this code ({FORMAT_VERSION})')
    state_dict = {k: v for k, v in tensors.items() if not k.startswith(_TOPOLOGY_PREFIX)}
    for alias, canonical in meta_raw.get('aliases', {}).items():
        state_dict[alias] = state_dict[canonical]
    topology = None
    if meta_raw.get('topology') is not None:
        topology = _topology_from_tensors(
            {k: v for k, v in tensors.items() if k.startswith(_TOPOLOGY_PREFIX)},
            meta_raw['topology'])
    meta = CheckpointMeta(
        config=config_from_dict(PostoMETROConfig, meta_raw['config']),
        config_dict=meta_raw['config'],
        topology_fingerprint=meta_raw['topology_fingerprint'],
        topology_name=meta_raw['topology_name'],
        has_topology=meta_raw.get('topology') is not None,
        provenance=meta_raw.get('provenance', {}),
        created_utc=meta_raw.get('created_utc', ''),
        torch_version=meta_raw.get('torch_version', ''),
        package_version=meta_raw.get('package_version', ''),
        format_version=meta_raw['format_version'],
        topology=topology,
    )
    return state_dict, meta


def load_checkpoint(path: str | os.PathLike, topology: Any = None,
                    device: str | torch.device = 'cpu') -> tuple[nn.Module, CheckpointMeta]:
    """Build the model described by one of our checkpoints and load its weights strictly.

    Args:
        path: a ``.safetensors`` file written by :func:`save_checkpoint`.
        topology: the ``MeshTopology`` to build with; must have the fingerprint stored in the
            file. ``None`` uses the topology embedded in the file.
        device: where the model is put.

    Returns:
        ``(model, meta)``, the model in eval mode.

    Raises:
        CheckpointError: wrong format, truncated file, or a topology with another fingerprint.
        CheckpointMismatchError: keys or shapes differ from the model the config describes.
    """
    from postometro_ros.model.postometro import build_model

    state_dict, meta = read_checkpoint(path)
    if topology is None:
        topology = meta.topology
        if topology is None:
            raise CheckpointError(f'{path}: no topology embedded; pass the MeshTopology with '
                                  f'fingerprint {meta.topology_fingerprint[:16]}...')
    if topology.fingerprint() != meta.topology_fingerprint:
        raise CheckpointError(
            f'{path}: the checkpoint was trained for mesh assets "{meta.topology_name}" with '
            f'topology fingerprint {meta.topology_fingerprint[:16]}..., but the given topology '
            f'"{topology.name}" has {topology.fingerprint()[:16]}...: load the matching body '
            f'assets (models/body/...) or retrain')
    model = build_model(meta.config, topology)
    load_state_dict_strict(model, state_dict, source=str(path))
    return model.to(device).eval(), meta
