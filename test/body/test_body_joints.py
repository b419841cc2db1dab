# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Joint-set constants: lengths, mappings and left/right permutations agree with the names."""

import pytest

from postometro_ros.body import joints as J


def _swap(name: str) -> str:
    if name.startswith('left_'):
        return 'right_' + name[5:]
    if name.startswith('right_'):
        return 'left_' + name[6:]
    return name


@pytest.mark.parametrize('names,perm', [
    (J.SMPL24_NAMES, J.SMPL24_FLIP_PERM), (J.J14_NAMES, J.J14_FLIP_PERM),
    (J.H36M17_NAMES, J.H36M17_FLIP_PERM), (J.J24_NAMES, J.J24_FLIP_PERM),
    (J.COCO17_NAMES, J.COCO17_FLIP_PERM)])
def test_flip_permutations_swap_left_and_right(names, perm):
    assert len(perm) == len(names) == len(set(names))
    assert [names[p] for p in perm] == [_swap(n) for n in names]


def test_coco_flip_pairs_match_permutation():
    perm = list(range(17))
    for a, b in J.COCO17_FLIP_PAIRS:
        perm[a], perm[b] = b, a
    assert tuple(perm) == J.COCO17_FLIP_PERM


@pytest.mark.parametrize('names,parents', [
    (J.SMPL24_NAMES, J.SMPL24_PARENTS), (J.J14_NAMES, J.J14_PARENTS),
    (J.H36M17_NAMES, J.H36M17_PARENTS)])
def test_parents_form_a_tree(names, parents):
    assert len(parents) == len(names) and parents.count(-1) == 1
    for j in range(len(names)):  # every joint reaches the root without cycles
        seen, k = set(), j
        while parents[k] != -1:
            assert k not in seen
            seen.add(k)
            k = parents[k]


def test_smpl_kinematic_tree_is_topologically_ordered():
    assert all(p < j for j, p in enumerate(J.SMPL24_PARENTS) if p >= 0)
    assert J.SMPL24_NAMES[J.SMPL24_PARENTS[J.SMPL24_NAMES.index('left_elbow')]] == \
        'left_shoulder'


def test_evaluation_mappings_select_the_same_joints():
    # FastMETRO: J24_TO_J14 and H36M_J17_TO_J14 pick the LSP joints; the 14th is 'head'.
    assert [J.J24_NAMES[i] for i in J.J24_TO_J14] == list(J.J14_NAMES)
    assert [J.H36M17_NAMES[i] for i in J.H36M17_TO_J14] == list(J.J14_NAMES)
    assert J.J24_TO_J14[13] == 18
    assert J.H36M17_TO_J14 == (3, 2, 1, 4, 5, 6, 16, 15, 14, 11, 12, 13, 8, 10)
    assert [J.J14_NAMES[i] for i in J.J14_PELVIS_PAIR] == ['right_hip', 'left_hip']


# Joints with the same name but a different definition (H36M 'neck' is the thorax, 'head' the
# head top) or no SMPL counterpart (face points) map to -1.
@pytest.mark.parametrize('mapping,target,unmapped', [
    (J.SMPL24_TO_J24, J.J24_NAMES, {'top_of_head', 'thorax', 'spine', 'jaw', 'nose',
                                    'left_eye', 'right_eye', 'left_ear', 'right_ear'}),
    (J.SMPL24_TO_COCO17, J.COCO17_NAMES, {'nose', 'left_eye', 'right_eye', 'left_ear',
                                          'right_ear'}),
    (J.SMPL24_TO_H36M17, J.H36M17_NAMES, {'torso', 'neck', 'nose', 'head'}),
    (J.SMPL24_TO_J14, J.J14_NAMES, set())])
def test_smpl_mappings_connect_same_named_joints(mapping, target, unmapped):
    assert len(mapping) == len(target)
    for k, name in enumerate(target):
        if name in unmapped:
            assert mapping[k] == -1, name
        else:
            assert J.SMPL24_NAMES[mapping[k]] == name
