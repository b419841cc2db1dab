# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Behaviour of the network on the tiny size: switches, masks, gradients, components."""

import json
import math

import numpy as np
import pytest
import torch

from model_topology import strip_topology
from postometro_ros.model.config import (
    PostoMETROConfig, list_configs, pct_config, postometro_config)
from postometro_ros.model.hrnet import ClsHRNet, PoseHRNet
from postometro_ros.model.pct import PCT, PoseTokenizer, sample_joint_features
from postometro_ros.model.position_encoding import sine_position_encoding
from postometro_ros.model.postometro import (
    build_model, decoder_attention_mask, FixedUpsample)
from postometro_ros.model.resnet import resnet50
from postometro_ros.model.swin_v2 import shifted_window_mask, SwinBlock, WindowAttention

SIZE = 128  # tiny tests run at 128 px (4x4 image tokens) to stay fast


@pytest.fixture(scope='module')
def topology():
    return strip_topology(120, 40, 12)


def _tiny(topology, name='postometro_tiny', seed=0, **overrides):
    torch.manual_seed(seed)
    overrides.setdefault('image_size', SIZE)
    return build_model(postometro_config(name, **overrides), topology)


def _num_params(module):
    return sum(p.numel() for p in module.parameters())


def _images(batch, size=SIZE, seed=1):
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


# --- configs -----------------------------------------------------------------------------------

def test_config_round_trip_and_overrides():
    for name in list_configs():
        cfg = postometro_config(name)
        again = PostoMETROConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
        assert again == cfg
    assert postometro_config('postometro_tiny', image_size=128).pct.image_size == 128
    assert postometro_config('postometro_s_r50').pct == pct_config('pct_base')
    with pytest.raises(KeyError, match='unknown config'):
        postometro_config('postometro_xl_r50')
    with pytest.raises(AssertionError, match='multiple of 32'):
        postometro_config('postometro_tiny', image_size=100)


# --- forward shapes for every switch ----------------------------------------------------------

@pytest.mark.parametrize('use_pose_tokens, twice, freeze, keypoints', [
    (True, True, True, True), (True, False, True, False), (True, True, False, True),
    (False, True, True, False)])
def test_forward_shapes(topology, use_pose_tokens, twice, freeze, keypoints):
    model = _tiny(topology, use_pose_tokens=use_pose_tokens, pose_tokens_twice=twice,
                  freeze_pose_branch=freeze).eval()
    with torch.inference_mode():
        out = model(_images(2), return_keypoints_2d=keypoints)
    m = model.cfg.pct.token_num
    assert out.cam.shape == (2, 3)
    assert out.joints_3d.shape == (2, 14, 3)
    assert out.vertices_coarse.shape == (2, 12, 3)
    assert out.vertices_intermediate.shape == (2, 40, 3)
    assert out.vertices_fine.shape == (2, 120, 3)
    assert (out.pose_token_scores.shape == (2, m)) if use_pose_tokens \
        else out.pose_token_scores is None
    assert (out.keypoints_2d.shape == (2, 17, 2)) if keypoints else out.keypoints_2d is None
    for value in vars(out).values():
        assert value is None or torch.isfinite(value).all()


def test_forward_at_256_matches_contract_default(topology):
    model = _tiny(topology, image_size=256).eval()
    with torch.inference_mode():
        out = model(_images(2, 256), return_keypoints_2d=True)
    assert out.vertices_fine.shape == (2, 120, 3) and out.keypoints_2d.shape == (2, 17, 2)


def test_empty_batch_returns_empty_outputs(topology):
    model = _tiny(topology).eval()
    out = model(_images(0), return_keypoints_2d=True)
    assert out.cam.shape == (0, 3) and out.vertices_fine.shape == (0, 120, 3)
    assert out.pose_token_scores.shape == (0, model.cfg.pct.token_num)
    assert out.keypoints_2d.shape == (0, 17, 2)
    nopose = _tiny(topology, name='postometro_tiny_nopose').eval()
    assert nopose(_images(0)).pose_token_scores is None
    with pytest.raises(ValueError, match='use_pose_tokens'):
        nopose(_images(1), return_keypoints_2d=True)


def test_eval_forward_is_deterministic_and_batch_independent(topology):
    model = _tiny(topology).eval()
    x = _images(3)
    with torch.inference_mode():
        a, b, single = model(x), model(x), model(x[1:2])
    assert torch.equal(a.vertices_fine, b.vertices_fine)
    torch.testing.assert_close(a.vertices_fine[1:2], single.vertices_fine, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a.pose_token_scores[1:2], single.pose_token_scores,
                               atol=1e-5, rtol=1e-4)


def test_keypoints_are_the_tokenizer_decoding_of_the_soft_tokens(topology):
    model = _tiny(topology).eval()
    x = _images(2)
    with torch.inference_mode():
        out = model(x, return_keypoints_2d=True)
        pct = model.pct(x)
        expected = model.pct.tokenizer.decode(pct.token_feats)
        soft = pct.logits.softmax(-1) @ model.pct.tokenizer.codebook
    torch.testing.assert_close(out.keypoints_2d, expected)
    torch.testing.assert_close(pct.token_feats, soft)
    torch.testing.assert_close(out.pose_token_scores, pct.logits.max(-1).values)


def test_pose_tokens_twice_changes_transformer_2_sequence(topology):
    lengths = {}
    for twice in (True, False):
        model = _tiny(topology, pose_tokens_twice=twice).eval()
        model.transformer_2.encoder.layers[0].register_forward_pre_hook(
            lambda mod, args, twice=twice: lengths.__setitem__(twice, args[0].shape[0]))
        with torch.inference_mode():
            model(_images(1))
    m, hw = model.cfg.pct.token_num, (SIZE // 32) ** 2
    assert lengths == {True: 1 + hw + 2 * m, False: 1 + hw + m}


# --- attention mask meaning ---------------------------------------------------------------------

def _check_mask_meaning(mask, adjacency, num_joints):
    adj = adjacency.toarray() != 0
    v = adj.shape[0]
    assert mask.shape == (num_joints + v, num_joints + v) and mask.dtype == torch.bool
    assert not mask[:num_joints].any(), 'joint queries must see every token'
    assert not mask[num_joints:, :num_joints].any(), 'vertex queries must see every joint'
    allowed = ~mask[num_joints:, num_joints:].numpy()
    np.testing.assert_array_equal(allowed, adj)
    assert allowed.diagonal().all(), 'a vertex must see itself'


def test_attention_mask_is_the_coarse_adjacency(topology):
    model = _tiny(topology)
    _check_mask_meaning(model.attention_mask, topology.adjacency[2], 14)
    assert 'attention_mask' not in model.state_dict()


def test_attention_mask_on_procedural_body():
    procedural = pytest.importorskip('postometro_ros.body.procedural')
    from postometro_ros.body.topology import MeshTopology
    assets = procedural.ensure_procedural_assets('models/body/procedural')
    topo = MeshTopology.load(assets / 'topology.npz')
    _check_mask_meaning(decoder_attention_mask(topo.adjacency[2], 14), topo.adjacency[2], 14)


def test_vertex_outputs_ignore_non_neighbour_vertex_inputs(topology):
    """Perturbing a non-neighbour's token leaves a vertex's first decoder-layer output intact."""
    model = _tiny(topology).eval()
    layer, mask = model.transformer_1.decoder.layers[0], model.attention_mask
    adj = topology.adjacency[2].toarray() != 0
    j_count, d = 14, model.cfg.model_dim_1
    gen = torch.Generator().manual_seed(0)
    t = torch.randn(j_count + adj.shape[0], 2, d, generator=gen)
    memory = torch.randn(5, 2, d, generator=gen)
    with torch.no_grad():
        base = layer(t, memory, None, mask)
        i = 5                                                 # a vertex in the middle
        far = int(np.flatnonzero(~adj[i])[0])
        near = int(np.flatnonzero(adj[i] & (np.arange(adj.shape[0]) != i))[0])
        for target, expect_change in ((far, False), (near, True), (-1, True)):
            t2 = t.clone()
            row = j_count + target if target >= 0 else 0      # -1: perturb joint 0
            t2[row] += 10 * torch.randn(2, d, generator=gen)
            out = layer(t2, memory, None, mask)
            change = (out[j_count + i] - base[j_count + i]).abs().max().item()
            assert change > 1e-3 if expect_change else change < 1e-6, (target, change)
        # Joints attend to everything: a far vertex still moves joint outputs.
        t2 = t.clone()
        t2[j_count + far] += 10 * torch.randn(2, d, generator=gen)
        assert (layer(t2, memory, None, mask)[0] - base[0]).abs().max() > 1e-3


# --- gradients and train/eval modes -------------------------------------------------------------

def _loss(out):
    return (out.vertices_fine.square().mean() + out.joints_3d.abs().mean()
            + out.cam.abs().mean())


def _grad_report(model):
    trained = {n for n, p in model.named_parameters()
               if p.grad is not None and p.grad.abs().sum() > 0}
    return trained, {n for n, p in model.named_parameters() if p.requires_grad}


def test_gradients_reach_exactly_the_trainable_parameters(topology):
    model = _tiny(topology).train()
    assert not model.pct.training and model.backbone.training
    _loss(model(_images(2))).backward()
    trained, trainable = _grad_report(model)
    assert trained == trainable
    assert not any(n.startswith('pct.') for n in trainable)
    assert all(p.grad is None for p in model.pct.parameters())
    assert {n.split('.')[0] for n in trained} >= {
        'backbone', 'transformer_1', 'transformer_2', 'conv_1x1', 'token_mixer', 'start_embed',
        'encoder', 'cam_token_embed', 'vertex_token_embed', 'coarse2intermediate_upsample',
        'dim_reduce_enc_pct', 'dim_reduce_enc_img', 'xyz_regressor', 'cam_predictor'}


def test_unfrozen_pose_branch_trains_only_the_pct_head(topology):
    model = _tiny(topology, freeze_pose_branch=False).train()
    assert model.pct.keypoint_head.training
    assert not model.pct.backbone.training and not model.pct.tokenizer.training
    _loss(model(_images(2))).backward()
    trained, trainable = _grad_report(model)
    assert trained == trainable
    head = {n for n in trained if n.startswith('pct.')}
    assert head and all(n.startswith('pct.keypoint_head.') and '.tokenizer.' not in n
                        for n in head)


def test_nopose_gradients(topology):
    model = _tiny(topology, name='postometro_tiny_nopose').train()
    _loss(model(_images(2))).backward()
    trained, trainable = _grad_report(model)
    assert trained == trainable and not hasattr(model, 'token_mixer')


# --- components -----------------------------------------------------------------------------

def test_fixed_upsample_equals_sparse_product(topology):
    up = FixedUpsample(topology.upsample[0])
    x = torch.randn(3, 40, 3)
    dense = torch.from_numpy(topology.upsample[0].toarray()).float()
    torch.testing.assert_close(up(x), dense @ x)
    ragged = topology.upsample[0].tolil()
    ragged[0, ragged.rows[0][0]] = 0                      # a row with fewer non-zeros
    ragged = ragged.tocsr()
    ragged.eliminate_zeros()
    torch.testing.assert_close(FixedUpsample(ragged)(x),
                               torch.from_numpy(ragged.toarray()).float() @ x)


def test_sine_position_encoding_formula():
    h, w, d = 3, 5, 16
    pos = sine_position_encoding(h, w, d)
    assert pos.shape == (h * w, d)
    for r, c, k in ((0, 0, 0), (2, 4, 3), (1, 2, 6), (2, 1, 9), (0, 3, 15)):
        half = d // 2
        coord, kk = ((r + 1) / h, k) if k < half else ((c + 1) / w, k - half)
        angle = coord * 2 * math.pi / 10000 ** (2 * (kk // 2) / half)
        expected = math.sin(angle) if kk % 2 == 0 else math.cos(angle)
        assert pos[r * w + c, k].item() == pytest.approx(expected, abs=1e-5)


def test_swin_windows_are_local_and_shift_connects_neighbours():
    torch.manual_seed(0)
    h = w = 8
    plain = SwinBlock(16, 2, window=4, shift=0, pretrain_window=4, rpe_hidden_dim=16).eval()
    shifted = SwinBlock(16, 2, window=4, shift=2, pretrain_window=4, rpe_hidden_dim=16).eval()
    mask = shifted_window_mask(h, w, 4, 2)
    x = torch.randn(1, h * w, 16)

    def moved(block, m, src, dst):
        x2 = x.clone()
        x2[0, src[0] * w + src[1]] += 5
        with torch.no_grad():
            return (block(x2, h, w, m) - block(x, h, w, m))[0, dst[0] * w + dst[1]].abs().max()

    assert moved(plain, None, (3, 3), (4, 4)) == 0           # different windows
    assert moved(plain, None, (0, 0), (3, 3)) > 1e-4         # same window
    assert moved(shifted, mask, (3, 3), (4, 4)) > 1e-4       # shifted window spans the border
    assert moved(shifted, mask, (0, 0), (7, 7)) < 1e-6       # rolled-around region is masked


def test_window_attention_matches_explicit_cosine_formula():
    torch.manual_seed(0)
    attn = WindowAttention(16, window=4, num_heads=2, pretrain_window=4, rpe_hidden_dim=8).eval()
    with torch.no_grad():
        attn.q_bias.normal_()
        attn.v_bias.normal_()
        attn.logit_scale[1] = 6.0                     # above the clamp at ln(100)
    mask = shifted_window_mask(8, 8, 4, 2)            # (4, 16, 16)
    x = torch.randn(2 * 4, 16, 16)                    # two images x four windows
    with torch.no_grad():
        got = attn(x, mask)
        qkv = x @ attn.qkv.weight.t() + torch.cat(
            [attn.q_bias, torch.zeros(16), attn.v_bias])
        q, k, v = qkv.view(8, 16, 3, 2, 8).permute(2, 0, 3, 1, 4)
        cos = torch.nn.functional.normalize(q, dim=-1) @ \
            torch.nn.functional.normalize(k, dim=-1).transpose(-1, -2)
        scale = attn.logit_scale.clamp(max=math.log(100)).exp()
        logits = cos * scale + attn.position_bias() + mask.repeat(2, 1, 1).unsqueeze(1)
        want = attn.proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(8, 16, 16))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    bias = attn.position_bias()
    assert bias.shape == (2, 16, 16) and 0 < bias.min() and bias.max() < 16


def test_position_bias_cache_follows_weight_updates():
    attn = WindowAttention(8, window=4, num_heads=2, pretrain_window=4, rpe_hidden_dim=8)
    with torch.no_grad():
        first = attn.position_bias()
        assert attn.position_bias() is first                  # cached without autograd
        attn.rpe_mlp[2].weight.add_(0.5)                      # in-place update (optimizer, load)
        second = attn.position_bias()
    assert not torch.equal(first, second)
    with torch.enable_grad():
        assert attn.position_bias().requires_grad             # training path is never cached


def test_backbone_output_shapes_on_meta():
    x = torch.empty(1, 3, 256, 256, device='meta')
    with torch.device('meta'):
        nets = {'r50': (resnet50(), 2048), 'w48': (PoseHRNet(48), 384),
                'w64': (ClsHRNet(64), 2048)}
    for name, (net, channels) in nets.items():
        assert net(x).shape == (1, channels, 8, 8), name
    assert not any(p.requires_grad for p in nets['w48'][0].final_layer.parameters())
    with torch.device('meta'):
        assert resnet50(output_stride=16)(x).shape == (1, 2048, 16, 16)


def test_stride_16_backbone_takes_stride_32_weights_and_gives_4x_image_tokens(topology):
    coarse = _tiny(topology).eval()
    fine = _tiny(topology, seed=1, backbone_stride=16).eval()
    assert fine.cfg.feature_size == 2 * coarse.cfg.feature_size == SIZE // 16
    fine.load_state_dict(coarse.state_dict())                 # same keys and shapes
    x = _images(2)
    with torch.inference_mode():
        assert coarse.backbone(x).shape[-2:] == (4, 4)
        assert fine.backbone(x).shape[-2:] == (8, 8)
        out_coarse, out_fine = coarse(x), fine(x)
    assert out_fine.vertices_fine.shape == out_coarse.vertices_fine.shape
    assert not torch.allclose(out_fine.joints_3d, out_coarse.joints_3d)   # a different grid
    with pytest.raises(AssertionError, match='backbone_stride'):
        postometro_config('postometro_tiny', backbone_stride=8)


# --- PCT tokenizer --------------------------------------------------------------------------

def _poses(batch, size=SIZE, seed=0):
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(batch, 17, 2, generator=gen) * size
    vis = (torch.rand(batch, 17, 1, generator=gen) > 0.2).float()
    return torch.cat([xy, vis], dim=-1)


def test_sample_joint_features_picks_nearest_cell():
    fmap = torch.arange(2 * 4 * 4, dtype=torch.float32).view(1, 2, 4, 4)
    joints = torch.tensor([[[0.0, 0.0], [47.0, 15.0], [200.0, -3.0]]])    # stride 32 at 128 px
    feats = sample_joint_features(fmap, joints, 128)
    # (x, y) cells: (0, 0), (1, 0) since 47/32 + .5 = 1.97, (3 clamped, 0)
    assert feats[0, :, 0].tolist() == [0.0, 1.0, 3.0]
    assert feats[0, :, 1].tolist() == [16.0, 17.0, 19.0]


def test_tokenizer_training_step_updates_codebook_and_trains_encoder():
    torch.manual_seed(0)
    cfg = pct_config('pct_tiny', image_size=SIZE)
    tok = PoseTokenizer(cfg, guide_channels=8).train()
    joints, img_feat = _poses(16), torch.randn(16, 8, 4, 4)
    before = tok.codebook.clone()
    out = tok(joints, img_feat)
    assert out.joints.shape == (16, 17, 2) and out.token_ids.shape == (16, cfg.token_num)
    assert not torch.equal(tok.codebook, before), 'EMA must move the codebook in training'
    loss = torch.nn.functional.smooth_l1_loss(out.joints, joints[..., :2], beta=0.05) \
        + 15.0 * out.commitment_loss
    loss.backward()
    for name in ('start_embed.weight', 'start_img_embed.weight', 'encoder.0.MLP_token.ff.0.weight',
                 'feature_embed.weight', 'recover_embed.weight', 'invisible_token'):
        assert tok.get_parameter(name).grad.abs().sum() > 0, name
    # Eval: no update, ids equal the nearest codebook entries used by encode().
    tok.eval()
    frozen = tok.codebook.clone()
    ids = tok(joints, img_feat).token_ids
    assert torch.equal(tok.codebook, frozen)
    assert torch.equal(ids, tok.encode(joints, img_feat))


def test_tokenizer_reseeds_dead_codes():
    torch.manual_seed(0)
    cfg = pct_config('pct_tiny', image_size=SIZE, dead_code_threshold=1e-3, guide_ratio=0.0)
    tok = PoseTokenizer(cfg).train()
    latent = tok.encode_latent(_poses(4), random_mask=False).detach().flatten(0, 1)
    ids = tok.quantize(latent)
    tok.update_codebook(latent, ids)
    unused = torch.ones(cfg.token_class_num, dtype=torch.bool)
    unused[ids] = False
    # Every unused code was re-seeded with one of the batch's encoder outputs.
    diff = tok.codebook[unused][:, None] - latent[None]
    assert diff.abs().amax(-1).min(dim=1).values.max() < 1e-5


def test_pct_alias_and_classifier_targets():
    torch.manual_seed(0)
    pct = PCT(pct_config('pct_tiny', image_size=SIZE)).eval()
    assert pct.extra_backbone is pct.backbone
    keys = pct.state_dict().keys()
    assert 'extra_backbone.norm3.weight' in keys and 'backbone.norm3.weight' in keys
    images, joints = _images(2), _poses(2)
    targets = pct.target_tokens(images, joints)
    assert targets.shape == (2, pct.cfg.token_num) and targets.dtype == torch.int64
    out = pct(images)
    assert out.logits.shape == (2, pct.cfg.token_num, pct.cfg.token_class_num)
    # Stage-2 losses: CE to the targets and the decoded soft-token pose, both reach the head.
    loss = torch.nn.functional.cross_entropy(out.logits.flatten(0, 1), targets.flatten()) \
        + (pct.decode_keypoints(out.token_feats) - joints[..., :2]).abs().mean()
    loss.backward()
    assert pct.keypoint_head.cls_pred_layer.weight.grad.abs().sum() > 0
    assert pct.keypoint_head.conv_trans[0].weight.grad.abs().sum() > 0


def test_tiny_wide_has_the_wider_cnn_and_the_same_transformers(topology):
    tiny, wide = _tiny(topology).eval(), _tiny(topology, name='postometro_tiny_wide').eval()
    assert _num_params(wide.backbone) == 2_798_880 and _num_params(tiny.backbone) == 309_456
    assert [len(s) for s in (wide.backbone.layer1, wide.backbone.layer2, wide.backbone.layer3,
                             wide.backbone.layer4)] == [2, 2, 2, 2]
    assert wide.conv_1x1.in_channels == wide.cfg.backbone_channels == 256
    # everything after the CNN's 1x1 projection has the tiny network's shapes
    shapes = {k: v.shape for k, v in tiny.state_dict().items()
              if not k.startswith(('backbone.', 'conv_1x1.weight'))}
    assert shapes == {k: v.shape for k, v in wide.state_dict().items()
                      if not k.startswith(('backbone.', 'conv_1x1.weight'))}
    with torch.inference_mode():
        assert wide(_images(2)).vertices_fine.shape == tiny(_images(2)).vertices_fine.shape


def test_tiny_wide_d128_widens_only_the_transformers(topology):
    wide = _tiny(topology, name='postometro_tiny_wide').eval()
    d128 = _tiny(topology, name='postometro_tiny_wide_d128').eval()
    assert _num_params(d128.backbone) == _num_params(wide.backbone)
    assert d128.conv_1x1.out_channels == 128 and d128.xyz_regressor.in_features == 64
    assert d128.transformer_1.encoder.layers[0].linear1.out_features == 256
    with torch.inference_mode():
        out = d128(_images(2), return_keypoints_2d=True)
    assert out.vertices_fine.shape == wide(_images(2)).vertices_fine.shape
    assert torch.isfinite(out.joints_3d).all()
