# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Export PostoMETRO to ONNX (dynamic batch) and check it against PyTorch with onnxruntime.

Input ``images``: (B, 3, S, S) float32, ImageNet-normalised RGB crops (see ``Predictor``).
Outputs, in order: ``cam`` (B, 3), ``joints_3d`` (B, 14, 3), ``vertices_coarse``,
``vertices_intermediate``, ``vertices_fine`` (B, V, 3), then ``pose_token_scores`` (B, T) when
the model has pose tokens, then ``keypoints_2d`` (B, 17, 2) when exported with keypoints.

Uses the TorchScript-based exporter (``dynamo=False``), which needs no extra packages.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
import warnings

import numpy as np
import torch
from torch import nn

_logger = logging.getLogger(__name__)

__all__ = ['check_onnx', 'export_onnx', 'main', 'output_names']

_MESH_OUTPUTS = ('cam', 'joints_3d', 'vertices_coarse', 'vertices_intermediate',
                 'vertices_fine')


def output_names(model: nn.Module, return_keypoints_2d: bool = False) -> list[str]:
    """Names of the exported outputs, in order."""
    names = list(_MESH_OUTPUTS)
    if getattr(model.cfg, 'use_pose_tokens', False):
        names.append('pose_token_scores')
        if return_keypoints_2d:
            names.append('keypoints_2d')
    return names


class _TupleOutputs(nn.Module):
    """Adapter: the exporter needs a tuple of tensors, not a dataclass."""

    def __init__(self, model: nn.Module, names: list[str], return_keypoints_2d: bool):
        super().__init__()
        self.model = model
        self.names = names
        self.return_keypoints_2d = return_keypoints_2d

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(images, return_keypoints_2d=self.return_keypoints_2d)
        return tuple(getattr(out, name) for name in self.names)


def export_onnx(model: nn.Module, path: str | os.PathLike, *, opset: int = 17,
                return_keypoints_2d: bool = False, example_batch: int = 2) -> Path:
    """Export ``model`` (eval mode, CPU, float32) with a dynamic batch axis.

    Args:
        model: a built PostoMETRO.
        path: output ``.onnx`` file.
        opset: ONNX opset version.
        return_keypoints_2d: also export the decoded COCO-17 keypoints.
        example_batch: batch of the tracing input (any B works at run time).

    Returns:
        The written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.to('cpu', torch.float32).eval()
    names = output_names(model, return_keypoints_2d)
    wrapper = _TupleOutputs(model, names, return_keypoints_2d)
    size = model.cfg.image_size
    example = torch.randn(example_batch, 3, size, size)
    dynamic = {'images': {0: 'batch'}, **{name: {0: 'batch'} for name in names}}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter('ignore', category=DeprecationWarning)
        warnings.simplefilter('ignore', category=torch.jit.TracerWarning)
        torch.onnx.export(wrapper, (example,), os.fspath(path), input_names=['images'],
                          output_names=names, dynamic_axes=dynamic, opset_version=opset,
                          do_constant_folding=True, dynamo=False)
    _logger.info('exported %s (%s) to %s', model.cfg.name, ', '.join(names), path)
    return path


def check_onnx(model: nn.Module, path: str | os.PathLike, *,
               batch_sizes: tuple[int, ...] = (1, 3), return_keypoints_2d: bool = False,
               seed: int = 0) -> dict[str, float]:
    """Run the ONNX file with onnxruntime (CPU) and compare it with PyTorch.

    Returns:
        Max absolute difference per output over all tested batch sizes.
    """
    import onnxruntime as ort

    model = model.to('cpu', torch.float32).eval()
    names = output_names(model, return_keypoints_2d)
    session = ort.InferenceSession(os.fspath(path), providers=['CPUExecutionProvider'])
    generator = torch.Generator().manual_seed(seed)
    size = model.cfg.image_size
    diffs = dict.fromkeys(names, 0.0)
    for batch in batch_sizes:
        images = torch.randn(batch, 3, size, size, generator=generator)
        with torch.inference_mode():
            ref = model(images, return_keypoints_2d=return_keypoints_2d)
        got = session.run(names, {'images': images.numpy()})
        for name, value in zip(names, got):
            want = getattr(ref, name).numpy()
            if value.shape != want.shape:
                raise AssertionError(f'{name}: onnx shape {value.shape} != torch {want.shape}')
            diffs[name] = max(diffs[name], float(np.abs(value - want).max()))
    return diffs


def main(argv: list[str] | None = None) -> int:
    """``postometro-export-onnx``: export a checkpoint (or a random-init config) and check it."""
    parser = argparse.ArgumentParser(prog='postometro-export-onnx',
                                     description=__doc__.split('\n')[0])
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--checkpoint', type=Path, help='our .safetensors checkpoint')
    src.add_argument('--config', help='random-init config name, e.g. postometro_tiny')
    parser.add_argument('--body-assets', type=Path, default=None,
                        help='asset dir with topology.npz (default: procedural body; with '
                             '--checkpoint: the topology embedded in the file)')
    parser.add_argument('--out', type=Path, required=True, help='output .onnx file')
    parser.add_argument('--keypoints', action='store_true', help='also export keypoints_2d')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--no-check', action='store_true', help='skip the onnxruntime check')
    parser.add_argument('--atol', type=float, default=1e-3, help='check tolerance (metres/px)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')

    from postometro_ros.body.topology import MeshTopology

    topology = MeshTopology.load(args.body_assets / 'topology.npz') if args.body_assets else None
    if args.checkpoint:
        from postometro_ros.model.checkpoint import load_checkpoint

        model, _ = load_checkpoint(args.checkpoint, topology)
    else:
        from postometro_ros.body.procedural import ensure_procedural_assets
        from postometro_ros.model.config import postometro_config
        from postometro_ros.model.postometro import build_model

        if topology is None:
            topology = MeshTopology.load(ensure_procedural_assets() / 'topology.npz')
        torch.manual_seed(0)
        model = build_model(postometro_config(args.config), topology)
    export_onnx(model, args.out, opset=args.opset, return_keypoints_2d=args.keypoints)
    print(f'wrote {args.out}')
    if args.no_check:
        return 0
    diffs = check_onnx(model, args.out, return_keypoints_2d=args.keypoints)
    for name, diff in diffs.items():
        print(f'  {name:24s} max |onnx - torch| = {diff:.2e}')
    worst = max(diffs.values())
    if worst > args.atol:
        print(f'error: difference {worst:.2e} exceeds --atol {args.atol}')
        return 1
    print('onnxruntime output matches PyTorch')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
