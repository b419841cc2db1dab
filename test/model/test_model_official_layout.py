# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Official sizes: parameter counts, state-dict layout and FLOPs (ARCHITECTURE-SPEC 10, 13).

Everything is built on the meta device, so no full-size weights are allocated.
"""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from model_topology import smpl_sized_topology
from postometro_ros.model.config import postometro_config
from postometro_ros.model.postometro import build_model


@pytest.fixture(scope='module')
def topology():
    return smpl_sized_topology()


def _meta_model(topology, name, **overrides):
    with torch.device('meta'):
        model = build_model(postometro_config(name, **overrides), topology)
    return model.to('meta')


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('name, expected', [
    ('postometro_s_r50', 164_406_034),
    ('postometro_s_r50_nopose', 33_549_398),
    ('postometro_m_r50', 172_225_298),
    ('postometro_l_r50', 180_044_562),
    ('postometro_s_hrnet_w48', 205_371_987),
])
def test_total_parameter_counts(topology, name, expected):
    assert _count(_meta_model(topology, name)) == expected


def test_component_parameter_counts(topology):
    m = _meta_model(topology, 'postometro_s_r50')
    modulator = sum(_count(getattr(m, n)) for n in
                    ('start_embed', 'encoder', 'encoder_layer_norm', 'token_mlp', 'token_mixer'))
    head = _count(m.pct.keypoint_head) - _count(m.pct.tokenizer)
    assert _count(m.backbone) == 23_508_032
    assert _count(m.transformer_1) == 7_358_464
    assert _count(m.transformer_2) == 463_360
    assert _count(m.conv_1x1) == 1_049_088
    assert _count(m.coarse2intermediate_upsample) == 744_336
    assert sum(_count(getattr(m, n)) for n in
               ('cam_token_embed', 'joint_token_embed', 'vertex_token_embed')) == 228_352
    for n in ('dim_reduce_enc_cam', 'dim_reduce_enc_img', 'dim_reduce_dec', 'dim_reduce_enc_pct'):
        assert _count(getattr(m, n)) == 65_664
    assert modulator == 2_656_302
    assert _count(m.pct) == 128_134_670
    assert _count(m.pct.backbone) == 86_893_816
    assert head == 38_570_696
    assert _count(m.pct.keypoint_head.mixer_trans) == 35_658_112
    assert _count(m.pct.tokenizer) == 2_670_158
    hrnet = _meta_model(topology, 'postometro_s_hrnet_w48')
    assert _count(hrnet.backbone) == 65_325_953
    assert tuple(hrnet.conv_1x1.weight.shape) == (512, 384, 1, 1)


def test_trainable_counts_follow_freeze_switch(topology):
    def trainable(m):
        return sum(p.numel() for p in m.parameters() if p.requires_grad)

    # Default: whole PCT frozen. Official construction: Swin + tokenizer frozen, head trains.
    assert trainable(_meta_model(topology, 'postometro_s_r50')) == 164_406_034 - 128_134_670
    assert trainable(_meta_model(topology, 'postometro_s_r50', freeze_pose_branch=False)) \
        == 74_842_060


# --- Independent table of the official key layout (ARCHITECTURE-SPEC 10.1) -------------------

def _bn(prefix, c):
    return {f'{prefix}.weight': (c,), f'{prefix}.bias': (c,), f'{prefix}.running_mean': (c,),
            f'{prefix}.running_var': (c,), f'{prefix}.num_batches_tracked': ()}


def _lin(prefix, cout, cin, bias=True):
    keys = {f'{prefix}.weight': (cout, cin)}
    if bias:
        keys[f'{prefix}.bias'] = (cout,)
    return keys


def _ln(prefix, c):
    return {f'{prefix}.weight': (c,), f'{prefix}.bias': (c,)}


def _resnet50_keys():
    keys = {'conv1.weight': (64, 3, 7, 7), **_bn('bn1', 64)}
    inplanes = 64
    for li, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3)), start=1):
        for b in range(blocks):
            p = f'layer{li}.{b}'
            keys[f'{p}.conv1.weight'] = (planes, inplanes, 1, 1)
            keys[f'{p}.conv2.weight'] = (planes, planes, 3, 3)
            keys[f'{p}.conv3.weight'] = (planes * 4, planes, 1, 1)
            for i, c in ((1, planes), (2, planes), (3, planes * 4)):
                keys.update(_bn(f'{p}.bn{i}', c))
            if b == 0:
                keys[f'{p}.downsample.0.weight'] = (planes * 4, inplanes, 1, 1)
                keys.update(_bn(f'{p}.downsample.1', planes * 4))
            inplanes = planes * 4
    return keys


def _mha(prefix, d):
    return {f'{prefix}.in_proj_weight': (3 * d, d), f'{prefix}.in_proj_bias': (3 * d,),
            **_lin(f'{prefix}.out_proj', d, d)}


def _transformer_keys(d, ff, layers):
    keys = {}
    for part, n_norm in (('encoder', 2), ('decoder', 3)):
        for i in range(layers):
            p = f'{part}.layers.{i}'
            keys.update(_mha(f'{p}.self_attn', d))
            if part == 'decoder':
                keys.update(_mha(f'{p}.multihead_attn', d))
            keys.update(_lin(f'{p}.linear1', ff, d))
            keys.update(_lin(f'{p}.linear2', d, ff))
            for k in range(1, n_norm + 1):
                keys.update(_ln(f'{p}.norm{k}', d))
        keys.update(_ln(f'{part}.norm', d))
    return keys


def _swin_b_keys():
    keys = {'patch_embed.proj.weight': (128, 3, 4, 4), 'patch_embed.proj.bias': (128,),
            **_ln('patch_embed.norm', 128)}
    for s, (depth, heads, win) in enumerate(zip((2, 2, 18, 2), (4, 8, 16, 32), (16, 16, 16, 8))):
        c = 128 * 2 ** s
        for b in range(depth):
            p = f'layers.{s}.blocks.{b}'
            keys.update(_ln(f'{p}.norm1', c))
            keys.update(_ln(f'{p}.norm2', c))
            keys.update({f'{p}.attn.logit_scale': (heads, 1, 1), f'{p}.attn.q_bias': (c,),
                         f'{p}.attn.v_bias': (c,), f'{p}.attn.qkv.weight': (3 * c, c),
                         f'{p}.attn.relative_coords_table': (1, 2 * win - 1, 2 * win - 1, 2),
                         f'{p}.attn.relative_position_index': (win * win, win * win)})
            keys.update(_lin(f'{p}.attn.proj', c, c))
            keys.update(_lin(f'{p}.attn.rpe_mlp.0', 512, 2))
            keys.update(_lin(f'{p}.attn.rpe_mlp.2', heads, 512, bias=False))
            keys.update(_lin(f'{p}.mlp.fc1', 4 * c, c))
            keys.update(_lin(f'{p}.mlp.fc2', c, 4 * c))
        if s < 3:
            keys[f'layers.{s}.downsample.reduction.weight'] = (2 * c, 4 * c)
            keys.update(_ln(f'layers.{s}.downsample.norm', 2 * c))
    keys.update(_ln('norm3', 1024))
    return keys


def _mixer_keys(prefix, hidden, hidden_inter, tokens, token_inter):
    return {**_ln(f'{prefix}.layernorm1', hidden), **_ln(f'{prefix}.layernorm2', hidden),
            **_lin(f'{prefix}.MLP_token.ff.0', token_inter, tokens),
            **_lin(f'{prefix}.MLP_token.ff.3', tokens, token_inter),
            **_lin(f'{prefix}.MLP_channel.ff.0', hidden_inter, hidden),
            **_lin(f'{prefix}.MLP_channel.ff.3', hidden, hidden_inter)}


def _fc_block(prefix, cout, cin):
    return {**_lin(f'{prefix}.ff.0', cout, cin), **_ln(f'{prefix}.ff.1', cout)}


def _pct_head_keys():
    keys = {'conv_trans.0.weight': (256, 1024, 1, 1), **_bn('conv_trans.1', 256)}
    for b in range(2):
        p = f'conv_head.0.{b}'
        keys.update({f'{p}.conv1.weight': (256, 256, 3, 3), f'{p}.conv2.weight': (256, 256, 3, 3),
                     **_bn(f'{p}.bn1', 256), **_bn(f'{p}.bn2', 256)})
    keys.update(_fc_block('mixer_trans', 2176, 16384))
    for i in range(4):
        keys.update(_mixer_keys(f'mixer_head.{i}', 64, 256, 34, 64))
    keys.update(_fc_block('mixer_norm_layer', 64, 64))
    keys.update(_lin('cls_pred_layer', 2048, 64))
    tok = {'invisible_token': (1, 1, 512), 'codebook': (2048, 512), 'ema_cluster_size': (2048,),
           'ema_w': (2048, 512), **_lin('start_img_embed', 256, 1024),
           **_lin('start_embed', 256, 2),
           **_ln('encoder_layer_norm', 512), **_lin('token_mlp', 34, 17),
           **_lin('feature_embed', 512, 512), **_lin('decoder_token_mlp', 17, 34),
           **_lin('decoder_start', 32, 512), **_mixer_keys('decoder.0', 32, 64, 17, 64),
           **_ln('decoder_layer_norm', 32), **_lin('recover_embed', 2, 32)}
    for i in range(4):
        tok.update(_mixer_keys(f'encoder.{i}', 512, 512, 17, 64))
    keys.update({f'tokenizer.{k}': v for k, v in tok.items()})
    return keys


def _official_s_r50_layout():
    """(prefix, keys) in registration order, shapes as in the official S-R50 network."""
    body = {**_transformer_keys(512, 2048, 1)}
    groups = [
        ('backbone.', _resnet50_keys()),
        ('transformer_1.', body),
        ('transformer_2.', _transformer_keys(128, 512, 1)),
        ('', {**_lin('dim_reduce_enc_cam', 128, 512), **_lin('dim_reduce_enc_img', 128, 512),
              **_lin('dim_reduce_dec', 128, 512), 'cam_token_embed.weight': (1, 512),
              'joint_token_embed.weight': (14, 512), 'vertex_token_embed.weight': (431, 512),
              **_lin('xyz_regressor', 3, 128), **_lin('cam_predictor', 3, 128),
              'conv_1x1.weight': (512, 2048, 1, 1), 'conv_1x1.bias': (512,),
              **_lin('coarse2intermediate_upsample', 1723, 431)}),
        ('pct.backbone.', _swin_b_keys()),
        ('pct.extra_backbone.', _swin_b_keys()),
        ('pct.keypoint_head.', _pct_head_keys()),
        ('', {**_fc_block('token_mixer', 512, 513), **_lin('start_embed', 512, 512),
              **_ln('encoder_layer_norm', 512), **_lin('token_mlp', 34, 34),
              **_lin('dim_reduce_enc_pct', 128, 512)}),
    ]
    for i in range(4):
        groups[-1][1].update(_mixer_keys(f'encoder.{i}', 512, 512, 34, 64))
    return groups


def test_official_table_matches_spec_prefix_counts():
    table = {}
    for prefix, keys in _official_s_r50_layout():
        table.update({prefix + k: v for k, v in keys.items()})
    assert len(table) == 1575

    def n(prefix):
        return sum(k.startswith(prefix) for k in table)

    assert (n('backbone.'), n('transformer_1.'), n('pct.backbone.'), n('pct.extra_backbone.'),
            n('pct.keypoint_head.tokenizer.'), n('encoder.'), n('pct.keypoint_head.mixer_head.'),
            n('pct.keypoint_head.conv_head.')) == (318, 34, 471, 471, 82, 48, 48, 24)


def test_official_state_dict_loads_strictly(topology):
    model = _meta_model(topology, 'postometro_s_r50')
    table = {}
    for prefix, keys in _official_s_r50_layout():
        table.update({prefix + k: v for k, v in keys.items()})
    ours = model.state_dict(keep_vars=True)
    assert sorted(ours) == sorted(table)
    mismatched = {k: (tuple(v.shape), table[k]) for k, v in ours.items()
                  if tuple(v.shape) != table[k]}
    assert not mismatched
    int_keys = ('num_batches_tracked', 'relative_position_index')
    state = {k: torch.empty(shape, device='meta',
                            dtype=torch.int64 if k.endswith(int_keys) else torch.float32)
             for k, shape in table.items()}
    result = model.load_state_dict(state, strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
    # A truncated state dict must fail strictly, naming the key.
    state.pop('pct.keypoint_head.tokenizer.codebook')
    with pytest.raises(RuntimeError, match='tokenizer.codebook'):
        model.load_state_dict(state, strict=True, assign=True)


def test_nopose_layout_is_the_official_layout_without_pose_branch(topology):
    model = _meta_model(topology, 'postometro_s_r50_nopose')
    table = {}
    for prefix, keys in _official_s_r50_layout()[:4]:
        table.update({prefix + k: v for k, v in keys.items()})
    assert {k: tuple(v.shape) for k, v in model.state_dict(keep_vars=True).items()} == table


def _flops_by_module(model, batch=1, **kwargs):
    counter = FlopCounterMode(display=False, depth=3)
    with counter:
        model(torch.empty(batch, 3, 256, 256, device='meta'), **kwargs)
    return {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}


def test_flops_and_token_counts_match_official(topology):
    """T1/T2 FLOPs pin the token sequences (99 / 133 encoder tokens, 98 / 132 memory)."""
    model = _meta_model(topology, 'postometro_s_r50').eval()
    seen = {}
    for name in ('transformer_1', 'transformer_2'):
        getattr(model, name).encoder.layers[0].register_forward_pre_hook(
            lambda mod, args, name=name: seen.__setitem__(name, args[0].shape[0]))
        getattr(model, name).decoder.layers[0].register_forward_pre_hook(
            lambda mod, args, name=name: seen.__setitem__(name + '_memory', args[1].shape[0]))
    flops = _flops_by_module(model)
    assert seen == {'transformer_1': 99, 'transformer_1_memory': 98,
                    'transformer_2': 133, 'transformer_2_memory': 132}
    expected_gflops = {'PostoMETRO.backbone': 10.677, 'PostoMETRO.pct.backbone': 43.936,
                       'PostoMETRO.pct.keypoint_head': 0.427, 'PostoMETRO.transformer_1': 4.507,
                       'PostoMETRO.transformer_2': 0.406}
    for key, gflops in expected_gflops.items():
        assert flops[key] / 1e9 == pytest.approx(gflops, abs=1.5e-3), key
