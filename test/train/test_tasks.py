# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Training stages on a tiny labelled set made from the procedural body: GT consistency, losses,
the tokenizer's pixel fold, and tokenizer -> classifier -> PostoMETRO -> evaluation end to end."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from postometro_ros.body import joints as J
from postometro_ros.body.body_model import load_body_assets
from postometro_ros.body.procedural import ensure_procedural_assets
from postometro_ros.data.datasets import DataConfig, collate_samples
from postometro_ros.data.transforms import AugmentConfig
from postometro_ros.data.tsv import write_tsv_split
from postometro_ros.model.checkpoint import load_checkpoint
from postometro_ros.train.evaluate import evaluate_checkpoint, format_table
from postometro_ros.train.losses import (MeshLossConfig, joints_2d_l1, joints_3d_l1,
                                         orthographic_projection, vertex_l1)
from postometro_ros.train.mesh import (J24_TO_J14, MeshModelConfig, MeshTask, MeshTaskConfig)
from postometro_ros.train.metrics import mpjpe_mm
from postometro_ros.train.tokenizer import (ClassifierTask, ClassifierTaskConfig, PCTModelConfig,
                                            TokenizerModule, TokenizerTask, TokenizerTaskConfig)
from postometro_ros.train.trainer import OptimConfig, Trainer, TrainerConfig

SIZE = 64
STEPS = 60
MODELS = Path(__file__).resolve().parents[2] / 'models'


@pytest.fixture(scope='module')
def body_dir():
    return ensure_procedural_assets()


@pytest.fixture(scope='module')
def data_root(tmp_path_factory, body_dir):
    """8 labelled crops per split: joints from the body model's regressors, pinhole projection."""
    root = tmp_path_factory.mktemp('mini_synth')
    assets = load_body_assets(body_dir)
    body = assets.body_model()
    rng = np.random.default_rng(0)
    for split in ('train', 'test_clean'):
        records = []
        for i in range(8):
            pose = rng.normal(scale=0.2, size=72)
            pose[:3] = [np.pi + rng.normal(scale=0.2), rng.normal(scale=0.5), 0.0]  # upright
            betas = rng.normal(scale=0.5, size=10)
            with torch.no_grad():
                v = body(betas=torch.tensor(betas[None], dtype=torch.float32),
                         global_orient=torch.tensor(pose[None, :3], dtype=torch.float32),
                         body_pose=torch.tensor(pose[None, 3:], dtype=torch.float32)
                         ).vertices[0].numpy().astype(np.float64)
            v += [0.0, 0.0, 3.0]
            j14 = assets.j14_regressor @ v
            j24 = np.repeat(j14[13:14], 24, axis=0)
            j24[list(J.J24_TO_J14)] = j14
            j24[J.J24_NAMES.index('pelvis')] = assets.h36m_regressor[0] @ v
            f, c = 60.0, 40.0
            uv24 = f * j24[:, :2] / j24[:, 2:] + c
            coco = (assets.coco17_regressor @ v) if assets.coco17_regressor is not None \
                else j24[[J.J24_NAMES.index(n) for n in J.COCO17_NAMES]]
            uvc = f * coco[:, :2] / coco[:, 2:] + c
            label = {'center': [c, c], 'scale': 0.4, 'has_2d_joints': 1, 'has_3d_joints': 1,
                     '2d_joints': np.concatenate([uv24, np.ones((24, 1))], 1).tolist(),
                     '3d_joints': np.concatenate([j24, np.ones((24, 1))], 1).tolist(),
                     '2d_joints_coco17': np.concatenate([uvc, np.ones((17, 1))], 1).tolist(),
                     'pose': pose.tolist(), 'betas': betas.tolist(), 'has_smpl': 1}
            img = rng.integers(0, 255, size=(80, 80, 3), dtype=np.uint8)
            records.append((f'{split}{i}', img, [label]))
        write_tsv_split(root, split, records)
    return root


def _trainer_cfg(out, **kw):
    return TrainerConfig(out_dir=str(out), epochs=1, batch_size=4, steps_per_epoch=2,
                         progress=False, tensorboard=False, device='cpu', log_every_steps=1,
                         optim=OptimConfig(lr=1e-3), **kw)


def test_gt_mesh_matches_label_joints_under_augmentation(data_root, body_dir):
    aug = AugmentConfig(flip_prob=0.5, rot_zero_prob=0.0)
    task = MeshTask(MeshTaskConfig(
        model=MeshModelConfig(use_pose_tokens=False, image_size=SIZE), body_assets=str(body_dir),
        data=DataConfig(root=str(data_root), augment=aug)))
    module = task.build_module()
    train, _ = task.build_datasets()
    for seeds in ((None,) * 8, range(1, 9), range(11, 19)):
        keys = [i if s is None else (i, s) for i, s in zip(range(8), seeds)]
        batch = collate_samples([train[k] for k in keys])
        fine = module.gt_meshes(batch['pose'], batch['betas'])[2]
        mesh_joints = torch.einsum('jv,bvc->bjc', module.joint_regressor, fine)
        err = mpjpe_mm(mesh_joints, batch['joints_3d'][:, J24_TO_J14, :3])
        assert err.max() < 1.0, err  # mm: pose, flip and rotation stay consistent with the joints


def test_losses_vanish_for_perfect_predictions():
    gt3 = torch.randn(3, 14, 4)
    gt3[..., 3] = 1.0
    assert joints_3d_l1(gt3[..., :3] + 5.0, gt3, torch.ones(3)) < 1e-6  # hip-centred
    cam = torch.tensor([[2.0, 0.1, -0.2]] * 3)
    gt2 = torch.cat([orthographic_projection(gt3[..., :3], cam), torch.ones(3, 14, 1)], -1)
    assert joints_2d_l1(orthographic_projection(gt3[..., :3], cam), gt2) < 1e-6
    gt2[0, :, 2] = 0.0  # invisible joints do not count
    noisy = orthographic_projection(gt3[..., :3], cam)
    noisy[0] += 10
    assert joints_2d_l1(noisy, gt2) < 1e-6
    meshes = (torch.randn(3, 5, 3), torch.randn(3, 7, 3))
    bad = (meshes[0] + 1, meshes[1] + 1)
    assert vertex_l1(bad, meshes, torch.tensor([0.0, 0, 0]), (0.5, 0.5)) == 0
    assert math.isclose(float(vertex_l1(bad, meshes, torch.tensor([1.0, 0, 0]), (0.5, 0.5))), 1.0,
                        rel_tol=1e-6)
    assert MeshLossConfig().vertices == 1000 and MeshLossConfig().joints_2d == 100


def test_tokenizer_pixel_fold_is_exact():
    module = TokenizerModule(TokenizerTaskConfig(pct=PCTModelConfig(image_size=SIZE))).eval()
    kp = torch.rand(4, 17, 3) * SIZE
    kp[..., 2] = 1.0
    norm_out = module.tokenizer(module.normalize(kp))
    pix_out = module.pixel_tokenizer().eval()(kp)
    torch.testing.assert_close(pix_out.joints, (norm_out.joints + 1) * SIZE / 2, atol=1e-3,
                               rtol=1e-5)
    assert torch.equal(pix_out.token_ids, norm_out.token_ids)


@pytest.mark.slow  # three short trainings and an evaluation: ~30 s on a busy 2-core machine
def test_tokenizer_classifier_mesh_end_to_end(data_root, body_dir, tmp_path):
    data = DataConfig(root=str(data_root))
    pct = PCTModelConfig(image_size=SIZE)
    tok = TokenizerTask(TokenizerTaskConfig(pct=pct, data=data, export=str(tmp_path / 'tok.st')))
    t = Trainer(_trainer_cfg(tmp_path / 'tok'), tok)
    tok_metrics = t.fit()
    assert tok_metrics['recon_px'] > 0 and tok_metrics['codebook_used'] >= 1
    t.export(tmp_path / 'tok.st', {})
    cls = ClassifierTask(ClassifierTaskConfig(pct=pct, data=data,
                                              tokenizer_weights=str(tmp_path / 'tok.st')))
    t = Trainer(_trainer_cfg(tmp_path / 'cls'), cls)
    metrics = t.fit()
    assert 0.0 <= metrics['token_acc'] <= 1.0 and math.isfinite(metrics['decoded_px'])
    # the classifier starts from the exported tokenizer exactly
    assert metrics['tokenizer_px'] == pytest.approx(tok_metrics['recon_px'], rel=1e-4)
    t.export(tmp_path / 'pct.st', {})
    mesh = MeshTask(MeshTaskConfig(
        model=MeshModelConfig(image_size=SIZE, pct_weights=str(tmp_path / 'pct.st'), dropout=0.0),
        body_assets=str(body_dir), data=data))
    t = Trainer(_trainer_cfg(tmp_path / 'mesh'), mesh)
    metrics = t.fit()
    assert {'mpvpe', 'mpjpe', 'pa_mpjpe', 'mpjpe_tokens'} <= set(metrics)
    path = t.export(tmp_path / 'mesh.safetensors', {'test': True})
    model, meta = load_checkpoint(path)
    assert model.cfg.use_pose_tokens and meta.provenance == {'test': True}
    # frozen pose branch: the PCT weights in the export are the stage-2 file's
    from postometro_ros.train.tokenizer import read_pct_file
    pct_weights, _, _ = read_pct_file(tmp_path / 'pct.st')
    for k, v in model.pct.state_dict().items():
        assert torch.equal(v, pct_weights[k]), k
    result = evaluate_checkpoint(path, data_root, splits=('test_clean',), body_assets=body_dir,
                                 baseline_samples=8, qualitative=1, out_dir=tmp_path / 'eval')
    clean = result['splits']['test_clean']
    assert clean['pa_mpjpe'] == pytest.approx(metrics['pa_mpjpe'], rel=1e-4)
    assert len(clean['pa_mpjpe_per_joint']) == 14
    assert 0.0 <= clean['facing_ok_share'] <= 1.0 and 0.0 <= clean['facing_deg'] <= 180.0
    if clean['facing_ok_share'] > 0:
        assert clean['pa_mpjpe_facing_ok'] > 0.0
    assert 0.0 < clean['joints_2d_px'] < 128.0    # projected mesh joints, input pixels
    assert (tmp_path / 'eval' / 'qualitative_test_clean_0.png').exists()
    table = format_table({'mean': result['baseline']['body frame']['splits'],
                          'model': result['splits']}, ('test_clean',))
    assert 'PA-MPJPE' in table and 'model' in table
    # --record stores the clean metrics in the checkpoint (the node's accuracy test reads them)
    from postometro_ros.train.evaluate import main as eval_main
    assert eval_main(['--checkpoint', str(path), '--data', str(data_root),
                      '--splits', 'test_clean', '--body', str(body_dir),
                      '--baseline-samples', '0', '--record']) == 0
    recorded = load_checkpoint(path)[1].provenance
    assert recorded['test'] is True
    assert recorded['metrics']['pa_mpjpe_mm'] == pytest.approx(clean['pa_mpjpe'], abs=0.051)
    assert recorded['metrics']['samples'] == 8 and recorded['metrics']['split'] == 'test_clean'


def test_heatmap_targets_decode_back_to_the_keypoints():
    from postometro_ros.train.backbone import (HEATMAP_STRIDE, BackboneTaskConfig, HeatmapModule,
                                               decode_heatmaps)
    module = HeatmapModule(BackboneTaskConfig(image_size=SIZE))
    rng = np.random.default_rng(1)
    kp = torch.from_numpy(rng.uniform(-10, SIZE + 10, size=(6, 17, 3))).float()
    kp[..., 2] = 1.0
    kp[0, 0, 2] = 0.0                                                        # unlabelled
    target, weight = module.targets(kp)
    assert target.shape == (6, 17, SIZE // HEATMAP_STRIDE, SIZE // HEATMAP_STRIDE)
    inside = ((kp[..., :2] >= -0.5) & (kp[..., :2] <= SIZE - 0.5)).all(-1)   # pixel edges
    inside[0, 0] = False
    assert torch.equal(weight.bool(), inside)
    decoded = (decode_heatmaps(target) + 0.5) * HEATMAP_STRIDE - 0.5
    err = (decoded - kp[..., :2]).norm(dim=-1)
    margin = 2 * HEATMAP_STRIDE
    interior = ((kp[..., :2] >= margin) & (kp[..., :2] <= SIZE - margin)).all(-1)
    assert err[interior].max() < 0.4 * HEATMAP_STRIDE          # quarter-pixel refinement
    assert err[inside].max() < 1.0 * HEATMAP_STRIDE            # a Gaussian cut by the border


def test_stride16_backbone_has_a_shorter_head_and_loads_into_a_stride16_mesh(body_dir, tmp_path):
    from postometro_ros.train.backbone import BackboneTask, BackboneTaskConfig, HeatmapModule
    task = BackboneTask(BackboneTaskConfig(image_size=SIZE, backbone_stride=16))
    module = task.build_module()
    assert module.heatmaps(torch.zeros(2, 3, SIZE, SIZE)).shape == (2, 17, SIZE // 4, SIZE // 4)
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in module.deconv_layers) == 2
    path = task.export(module, tmp_path / 'bb16.safetensors', {})
    net = MeshTask(MeshTaskConfig(
        model=MeshModelConfig(image_size=SIZE, use_pose_tokens=False, backbone_stride=16,
                              backbone_weights=str(path)),
        body_assets=str(body_dir))).build_module().model
    assert all(torch.equal(v, module.backbone.state_dict()[k])
               for k, v in net.backbone.state_dict().items())
    with pytest.raises(ValueError, match='stride 16'):
        HeatmapModule(BackboneTaskConfig(model='pct_tiny', image_size=SIZE, backbone_stride=16))


def test_backbone_stage_continues_from_its_own_export_only(tmp_path):
    from postometro_ros.train.backbone import BackboneTask, BackboneTaskConfig
    first = BackboneTask(BackboneTaskConfig(image_size=SIZE))
    trained = first.build_module()
    path = first.export(trained, tmp_path / 'bb.safetensors', {})
    again = BackboneTask(BackboneTaskConfig(image_size=SIZE, init_weights=str(path)))
    state = again.build_module().state_dict()
    assert all(torch.equal(v, state[k]) for k, v in trained.state_dict().items())
    wider = BackboneTask(BackboneTaskConfig(model='postometro_tiny_wide', image_size=SIZE,
                                            init_weights=str(path)))
    with pytest.raises(ValueError, match='postometro_tiny_wide'):
        wider.build_module()
    not_stage0 = str(MODELS / 'pct_tiny_synth.safetensors')
    with pytest.raises(ValueError, match='not a stage-0 export'):
        BackboneTask(BackboneTaskConfig(image_size=SIZE, init_weights=not_stage0)).build_module()


@pytest.mark.parametrize('model', ['postometro_tiny', 'pct_tiny'])
def test_backbone_stage_learns_and_initialises_the_next_stage(model, data_root, body_dir,
                                                              tmp_path):
    from postometro_ros.model.checkpoint import read_foreign_state_dict
    from postometro_ros.train.backbone import BackboneTask, BackboneTaskConfig
    data = DataConfig(root=str(data_root), augment=AugmentConfig(enabled=False))
    task = BackboneTask(BackboneTaskConfig(model=model, image_size=SIZE, data=data))
    # 8 crops, batch 8: one step per epoch
    t = Trainer(TrainerConfig(out_dir=str(tmp_path / 'bb'), epochs=STEPS, batch_size=8,
                              progress=False, tensorboard=False,
                              device='cpu', log_every_steps=1, optim=OptimConfig(lr=3e-3)), task)
    batch = collate_samples([t.train_set[i] for i in range(8)])
    with torch.no_grad():
        first = t.module(batch)['heatmap'].item()
    metrics = t.fit()
    assert metrics['keypoint_px'] > 0
    with torch.no_grad():
        last = t.module(batch)['heatmap'].item()
    # cross-entropy above its floor (the targets' own entropy) halves: it fits the 8 crops'
    # heatmaps
    target, weight = t.module.targets(batch['keypoints'])
    p = target.flatten(2) / target.flatten(2).sum(-1, keepdim=True)
    floor = ((-(p * p.clamp_min(1e-12).log()).sum(-1) * weight).sum() / weight.sum()).item()
    assert last - floor < 0.5 * (first - floor), (first, last, floor)
    path = t.export(tmp_path / 'bb.safetensors', {})
    saved, _ = read_foreign_state_dict(path)
    if model == 'postometro_tiny':
        net = MeshTask(MeshTaskConfig(
            model=MeshModelConfig(image_size=SIZE, use_pose_tokens=False,
                                  backbone_weights=str(path)),
            body_assets=str(body_dir), data=data)).build_module().model
        backbone = net.backbone
    else:
        tok = TokenizerTask(TokenizerTaskConfig(pct=PCTModelConfig(image_size=SIZE), data=data))
        tok.export(tok.build_module(), tmp_path / 'tok.st', {})
        backbone = ClassifierTask(ClassifierTaskConfig(
            pct=PCTModelConfig(image_size=SIZE), data=data,
            tokenizer_weights=str(tmp_path / 'tok.st'),
            backbone_weights=str(path))).build_module().pct.backbone
    state = backbone.state_dict()
    assert state and all(torch.equal(v, saved['backbone.' + k]) for k, v in state.items())
