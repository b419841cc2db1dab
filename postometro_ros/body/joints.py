# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Standard joint sets, their orders and the mappings between them.

All constants are tuples of plain ints/strings so they can be used as index lists in numpy and
torch alike. Conventions:

* ``*_NAMES``: joint names in the set's order (lower-case, ``left_``/``right_`` from the
  person's point of view).
* ``*_PARENTS``: kinematic/drawing parent of each joint, ``-1`` for the root.
* ``*_FLIP_PERM``: index permutation that swaps left and right (``flipped = joints[PERM]``).
* ``A_TO_B``: a tuple with one entry per joint of set ``B`` giving the index in set ``A``
  (``joints_b = joints_a[A_TO_B]``); ``-1`` where set ``A`` has no such joint.

The 24-joint "J24" order (LSP-extended) and the H36M-17 order are the ones used by the
METRO/FastMETRO data files and evaluation code; the 14-joint evaluation set follows the LSP order.
"""

# SMPL's 24 kinematic joints (also the procedural body's skeleton).
SMPL24_NAMES = (
    'pelvis', 'left_hip', 'right_hip', 'spine1', 'left_knee', 'right_knee', 'spine2',
    'left_ankle', 'right_ankle', 'spine3', 'left_foot', 'right_foot', 'neck', 'left_collar',
    'right_collar', 'head', 'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow',
    'left_wrist', 'right_wrist', 'left_hand', 'right_hand',
)
SMPL24_PARENTS = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)
SMPL24_FLIP_PERM = (
    0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22,
)

# 14-joint evaluation set (LSP order), used for MPJPE / PA-MPJPE.
J14_NAMES = (
    'right_ankle', 'right_knee', 'right_hip', 'left_hip', 'left_knee', 'left_ankle',
    'right_wrist', 'right_elbow', 'right_shoulder', 'left_shoulder', 'left_elbow', 'left_wrist',
    'neck', 'head',
)
# Drawing tree rooted at the neck; the hips hang from the neck (torso sides).
J14_PARENTS = (1, 2, 12, 12, 3, 4, 7, 8, 12, 12, 9, 10, -1, 12)
J14_FLIP_PERM = (5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13)
# Indices of right_hip and left_hip: their mid-point is the centre for the 14-joint metrics.
J14_PELVIS_PAIR = (2, 3)

# Human3.6M 17-joint order as produced by J_regressor_h36m_correct.npy.
H36M17_NAMES = (
    'pelvis', 'right_hip', 'right_knee', 'right_ankle', 'left_hip', 'left_knee', 'left_ankle',
    'torso', 'neck', 'nose', 'head', 'left_shoulder', 'left_elbow', 'left_wrist',
    'right_shoulder', 'right_elbow', 'right_wrist',
)
H36M17_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
H36M17_FLIP_PERM = (0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13)
# FastMETRO's H36M_J17_TO_J14: joints regressed from a mesh -> evaluation set.
H36M17_TO_J14 = (3, 2, 1, 4, 5, 6, 16, 15, 14, 11, 12, 13, 8, 10)

# METRO/FastMETRO 24-joint LSP-extended order used in the TSV labels ('2d_joints', '3d_joints').
J24_NAMES = (
    'right_ankle', 'right_knee', 'right_hip', 'left_hip', 'left_knee', 'left_ankle',
    'right_wrist', 'right_elbow', 'right_shoulder', 'left_shoulder', 'left_elbow', 'left_wrist',
    'neck', 'top_of_head', 'pelvis', 'thorax', 'spine', 'jaw', 'head', 'nose', 'left_eye',
    'right_eye', 'left_ear', 'right_ear',
)
J24_FLIP_PERM = (
    5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13, 14, 15, 16, 17, 18, 19, 21, 20, 23, 22,
)
# The 14th evaluation joint is J24 'head' (18), not 'top_of_head' (13).
J24_TO_J14 = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 18)

# COCO-17 keypoints (the 2D pose set of PCT / the pose tokenizer).
COCO17_NAMES = (
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
    'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip',
    'left_knee', 'right_knee', 'left_ankle', 'right_ankle',
)
COCO17_FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
COCO17_FLIP_PERM = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
COCO17_SKELETON = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
    (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)

# SMPL kinematic joints that have a counterpart in the other sets (-1: no counterpart; e.g. the
# face points are surface landmarks, not SMPL joints). Hip/shoulder centres of SMPL sit at the
# joint centres, so they approximate but do not equal annotated LSP/COCO points.
SMPL24_TO_J24 = (
    8, 5, 2, 1, 4, 7, 21, 19, 17, 16, 18, 20, 12, -1, 0, -1, -1, -1, 15, -1, -1, -1, -1, -1,
)
SMPL24_TO_J14 = tuple(SMPL24_TO_J24[i] for i in J24_TO_J14)
SMPL24_TO_COCO17 = (-1, -1, -1, -1, -1, 16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8)
SMPL24_TO_H36M17 = (0, 2, 5, 8, 1, 4, 7, -1, -1, -1, -1, 16, 18, 20, 17, 19, 21)
