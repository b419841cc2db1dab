# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Key/shape layouts of foreign checkpoints, written from ARCHITECTURE-SPEC section 10.

Independent of our model code: the R50 part comes from torchvision (on the meta device), the
rest from the spec's tables. Values are meta tensors, so the S-size layouts cost no memory.
"""

import torch
from torch import nn
import torchvision


def _t(*shape):
    return torch.empty(shape, device='meta')


def _linear(prefix, out_f, in_f, bias=True):
    d = {f'{prefix}.weight': _t(out_f, in_f)}
    if bias:
        d[f'{prefix}.bias'] = _t(out_f)
    return d


def _norm(prefix, n):
    return {f'{prefix}.weight': _t(n), f'{prefix}.bias': _t(n)}


def _bn(prefix, n):
    return {**_norm(prefix, n), f'{prefix}.running_mean': _t(n), f'{prefix}.running_var': _t(n),
            f'{prefix}.num_batches_tracked': torch.empty((), dtype=torch.long, device='meta')}


def _mixer(prefix, hidden, hidden_inter, tokens, token_inter):
    return {**_norm(f'{prefix}.layernorm1', hidden),
            **_linear(f'{prefix}.MLP_token.ff.0', token_inter, tokens),
            **_linear(f'{prefix}.MLP_token.ff.3', tokens, token_inter),
            **_norm(f'{prefix}.layernorm2', hidden),
            **_linear(f'{prefix}.MLP_channel.ff.0', hidden_inter, hidden),
            **_linear(f'{prefix}.MLP_channel.ff.3', hidden, hidden_inter)}


def torchvision_r50(prefix='backbone.', fastmetro=False):
    """PoseResNet-50 keys (= torchvision minus fc), or FastMETRO's nn.Sequential numbering."""
    with torch.device('meta'):
        tv = torchvision.models.resnet50()
    module = nn.Sequential(*list(tv.children())[:-2]) if fastmetro else tv
    return {prefix + k: v for k, v in module.state_dict().items() if not k.startswith('fc.')}


def transformer(prefix, d, ff, layers):
    out = {}
    for kind in ('encoder', 'decoder'):
        for i in range(layers):
            p = f'{prefix}.{kind}.layers.{i}'
            attns = ['self_attn'] + (['multihead_attn'] if kind == 'decoder' else [])
            for attn in attns:
                out[f'{p}.{attn}.in_proj_weight'] = _t(3 * d, d)
                out[f'{p}.{attn}.in_proj_bias'] = _t(3 * d)
                out.update(_linear(f'{p}.{attn}.out_proj', d, d))
            out.update(_linear(f'{p}.linear1', ff, d))
            out.update(_linear(f'{p}.linear2', d, ff))
            for n in range(1, 4 if kind == 'decoder' else 3):
                out.update(_norm(f'{p}.norm{n}', d))
        out.update(_norm(f'{prefix}.{kind}.norm', d))
    return out


def body_network(layers=1, v_coarse=431, v_mid=1723, backbone_channels=2048):
    """FastMETRO/PostoMETRO body-network keys without backbone and pose branch."""
    out = {**transformer('transformer_1', 512, 2048, layers),
           **transformer('transformer_2', 128, 512, layers)}
    for name in ('dim_reduce_enc_cam', 'dim_reduce_enc_img', 'dim_reduce_dec'):
        out.update(_linear(name, 128, 512))
    out['cam_token_embed.weight'] = _t(1, 512)
    out['joint_token_embed.weight'] = _t(14, 512)
    out['vertex_token_embed.weight'] = _t(v_coarse, 512)
    out.update(_linear('xyz_regressor', 3, 128))
    out.update(_linear('cam_predictor', 3, 128))
    out['conv_1x1.weight'] = _t(512, backbone_channels, 1, 1)
    out['conv_1x1.bias'] = _t(512)
    out.update(_linear('coarse2intermediate_upsample', v_mid, v_coarse))
    return out


def swin_v2_base(prefix):
    """Swin-V2-B of PCT (embed 128, depths 2/2/18/2, windows 16/16/16/8), 471 keys."""
    out = {f'{prefix}patch_embed.proj.weight': _t(128, 3, 4, 4),
           f'{prefix}patch_embed.proj.bias': _t(128),
           **_norm(f'{prefix}patch_embed.norm', 128)}
    for s, (depth, heads, w) in enumerate(zip((2, 2, 18, 2), (4, 8, 16, 32), (16, 16, 16, 8))):
        c = 128 * 2 ** s
        for b in range(depth):
            p = f'{prefix}layers.{s}.blocks.{b}'
            out.update({**_norm(f'{p}.norm1', c), **_norm(f'{p}.norm2', c),
                        f'{p}.attn.logit_scale': _t(heads, 1, 1), f'{p}.attn.q_bias': _t(c),
                        f'{p}.attn.v_bias': _t(c), f'{p}.attn.qkv.weight': _t(3 * c, c),
                        **_linear(f'{p}.attn.proj', c, c),
                        **_linear(f'{p}.attn.rpe_mlp.0', 512, 2),
                        f'{p}.attn.rpe_mlp.2.weight': _t(heads, 512),
                        f'{p}.attn.relative_coords_table': _t(1, 2 * w - 1, 2 * w - 1, 2),
                        f'{p}.attn.relative_position_index': torch.empty(
                            (w * w, w * w), dtype=torch.long, device='meta'),
                        **_linear(f'{p}.mlp.fc1', 4 * c, c), **_linear(f'{p}.mlp.fc2', c, 4 * c)})
        if s < 3:
            out[f'{prefix}layers.{s}.downsample.reduction.weight'] = _t(2 * c, 4 * c)
            out.update(_norm(f'{prefix}layers.{s}.downsample.norm', 2 * c))
    out.update(_norm(f'{prefix}norm3', 1024))
    return out


def pct_base(prefix=''):
    """PCT-base pose model in the mmpose layout (backbone, extra_backbone, keypoint_head)."""
    head = f'{prefix}keypoint_head'
    out = {**swin_v2_base(f'{prefix}backbone.'), **swin_v2_base(f'{prefix}extra_backbone.')}
    out[f'{head}.conv_trans.0.weight'] = _t(256, 1024, 1, 1)
    out.update(_bn(f'{head}.conv_trans.1', 256))
    for i in range(2):
        p = f'{head}.conv_head.0.{i}'
        out.update({f'{p}.conv1.weight': _t(256, 256, 3, 3), **_bn(f'{p}.bn1', 256),
                    f'{p}.conv2.weight': _t(256, 256, 3, 3), **_bn(f'{p}.bn2', 256)})
    out.update({**_linear(f'{head}.mixer_trans.ff.0', 2176, 16384),
                **_norm(f'{head}.mixer_trans.ff.1', 2176)})
    for i in range(4):
        out.update(_mixer(f'{head}.mixer_head.{i}', 64, 256, 34, 64))
    out.update({**_linear(f'{head}.mixer_norm_layer.ff.0', 64, 64),
                **_norm(f'{head}.mixer_norm_layer.ff.1', 64),
                **_linear(f'{head}.cls_pred_layer', 2048, 64)})
    tok = f'{head}.tokenizer'
    out.update({f'{tok}.invisible_token': _t(1, 1, 512), f'{tok}.codebook': _t(2048, 512),
                f'{tok}.ema_cluster_size': _t(2048), f'{tok}.ema_w': _t(2048, 512),
                **_linear(f'{tok}.start_img_embed', 256, 1024),
                **_linear(f'{tok}.start_embed', 256, 2)})
    for i in range(4):
        out.update(_mixer(f'{tok}.encoder.{i}', 512, 512, 17, 64))
    out.update({**_norm(f'{tok}.encoder_layer_norm', 512), **_linear(f'{tok}.token_mlp', 34, 17),
                **_linear(f'{tok}.feature_embed', 512, 512),
                **_linear(f'{tok}.decoder_token_mlp', 17, 34),
                **_linear(f'{tok}.decoder_start', 32, 512),
                **_mixer(f'{tok}.decoder.0', 32, 64, 17, 64),
                **_norm(f'{tok}.decoder_layer_norm', 32),
                **_linear(f'{tok}.recover_embed', 2, 32)})
    return out


def pose_modulator():
    """PostoMETRO's pose-token modulator + dim_reduce_enc_pct (spec section 4.2)."""
    out = {**_linear('token_mixer.ff.0', 512, 513), **_norm('token_mixer.ff.1', 512),
           **_linear('start_embed', 512, 512)}
    for i in range(4):
        out.update(_mixer(f'encoder.{i}', 512, 512, 34, 64))
    out.update({**_norm('encoder_layer_norm', 512), **_linear('token_mlp', 34, 34),
                **_linear('dim_reduce_enc_pct', 128, 512)})
    return out


def official_postometro_s_r50():
    """The 1575-key official PostoMETRO-S + PoseResNet-50 + PCT-B state dict (meta tensors)."""
    return {**torchvision_r50(), **body_network(), **pct_base('pct.'), **pose_modulator()}


def fastmetro_r50(layers=1, with_smpl_regressor=True):
    """A FastMETRO R50 checkpoint: nn.Sequential backbone numbering, optional SMPL regressor."""
    out = {**torchvision_r50(fastmetro=True), **body_network(layers)}
    if with_smpl_regressor:
        out.update(_linear('smpl_parameter_regressor.fc1', 1024, 1723 * 3))
    return out
