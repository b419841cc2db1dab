# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The node's parameters: one table of specs, declared with descriptors, validated on set.

Every parameter has a description, a type taken from its default, and a numeric range or a set
of allowed values. A bad value is refused with the reason: at run time through the on-set
callback (``ros2 param set`` reports the reason), and at start-up, where a bad override does
not stop the node: it is reported and the default is used instead. Parameters that shape the
ROS graph or the loaded models are read-only.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
import math
import re
from typing import Any, Callable

from rcl_interfaces.msg import (
    FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult)
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

__all__ = ['ParamSpec', 'PARAMETERS', 'NodeParams', 'validate', 'declare_parameters',
           'MESH_LEVELS']

MESH_LEVELS: tuple[str, ...] = ('fine', 'intermediate', 'coarse')
_DEVICE = re.compile(r'^(auto|cpu|cuda(:\d+)?)$')
# A TF frame-name prefix: empty, or ROS-name characters plus '-' and '/' (no leading '/':
# tf2 frame ids never start with one).
_TF_PREFIX = re.compile(r'^([A-Za-z0-9_][A-Za-z0-9_/-]*)?\Z')


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, default (gives the type), description and constraints."""

    name: str
    default: Any
    description: str
    read_only: bool = False
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    pattern: re.Pattern | None = None
    pattern_text: str = ''

    def constraint_text(self) -> str:
        """Human-readable constraints (also written into the descriptor)."""
        if self.choices is not None:
            return 'one of: ' + ', '.join(self.choices)
        if self.low is not None:
            return f'range [{self.low}, {self.high}]'
        if self.pattern is not None:
            return self.pattern_text
        return ''

    def descriptor(self) -> ParameterDescriptor:
        """The ``ParameterDescriptor`` rclpy enforces (type, read-only, numeric range)."""
        descriptor = ParameterDescriptor(
            name=self.name, description=self.description, read_only=self.read_only,
            additional_constraints=self.constraint_text())
        if self.low is not None and isinstance(self.default, float):
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(self.low), to_value=float(self.high))]
        elif self.low is not None and isinstance(self.default, int):
            descriptor.integer_range = [
                IntegerRange(from_value=int(self.low), to_value=int(self.high))]
        return descriptor


PARAMETERS: tuple[ParamSpec, ...] = (
    # Processing switch (changeable at run time; the ~/enable service sets it).
    ParamSpec('enabled', True,
              'Process incoming images. false: images are skipped before any detector or '
              'network work (counted in diagnostics as frames_skipped_disabled) and nothing is '
              'published for them; the ~/enable service (std_srvs/SetBool) sets this parameter.'),
    # Models (read-only: loaded once at start-up).
    ParamSpec('checkpoint', 'models/postometro_tiny_synth.safetensors',
              'PostoMETRO checkpoint (.safetensors written by save_checkpoint). Relative paths '
              'are tried against the working directory, then the package root.', read_only=True),
    ParamSpec('body_assets', '',
              'Body-asset directory (body_model.npz, topology.npz, regressors.npz) whose mesh '
              'topology replaces the one stored in the checkpoint. Empty: the checkpoint\'s '
              'own topology.', read_only=True),
    ParamSpec('detector', 'models/yolo_person_synth.pt',
              'Ultralytics YOLO person detector (.pt weights, or a model .yaml for an '
              'untrained network).', read_only=True),
    ParamSpec('device', 'auto',
              'Torch device for detector and network: auto (CUDA when available), cpu, cuda, '
              'cuda:N.', read_only=True, pattern=_DEVICE,
              pattern_text='auto, cpu, cuda or cuda:N'),
    ParamSpec('tracking', True,
              'Track people across frames (stable ids). Off: every person gets id "".',
              read_only=True),
    ParamSpec('tracker', 'bytetrack.yaml',
              'Ultralytics tracker configuration. It gives the ids; boxes are always the '
              'detector\'s own in the current image.',
              read_only=True, choices=('bytetrack.yaml', 'botsort.yaml')),
    # Detection (changeable at run time).
    ParamSpec('detection_threshold', 0.5,
              'Minimum person detector score, unitless.', low=0.0, high=1.0),
    ParamSpec('max_persons', 10,
              'Most people processed per frame (highest scores first).', low=1, high=64),
    # Input (read-only: they define the subscriptions).
    ParamSpec('image_transport', 'raw',
              'Input image topic: raw subscribes to "image" (sensor_msgs/Image), compressed to '
              '"image/compressed" (sensor_msgs/CompressedImage).', read_only=True,
              choices=('raw', 'compressed')),
    ParamSpec('image_reliability', 'best_effort',
              'Reliability of the image and camera_info subscriptions. best_effort receives '
              'from best-effort and reliable publishers alike.', read_only=True,
              choices=('best_effort', 'reliable', 'system_default')),
    ParamSpec('image_qos_depth', 1,
              'History depth of the image subscription; 1 keeps only the newest frame.',
              read_only=True, low=1, high=100),
    # Depth (use_depth read-only: it defines a subscription).
    ParamSpec('use_depth', False,
              'Subscribe to "depth/image" (sensor_msgs/Image 16UC1 millimetres or 32FC1 metres, '
              'registered to the colour image: same size and intrinsics) and refine each '
              'person\'s placement with it (translation_source = TRANSLATION_DEPTH).',
              read_only=True),
    ParamSpec('depth_slop', 0.1,
              'Largest stamp difference in seconds between a colour image and the depth image '
              'paired with it (the closest one is used).', low=0.0, high=10.0),
    ParamSpec('depth_sigma_rel', 0.015,
              'Relative depth standard deviation of a depth-refined placement (fraction of the '
              'distance), written into root_position_covariance.', low=0.001, high=1.0),
    # Outputs (changeable at run time).
    ParamSpec('mesh_level', 'fine', 'Mesh level published on ~/meshes.',
              choices=MESH_LEVELS),
    ParamSpec('publish_markers', True, 'Publish skeleton markers on ~/markers.'),
    ParamSpec('marker_lifetime', 0.5,
              'Lifetime of skeleton and mesh markers in seconds (0 = until replaced).',
              low=0.0, high=3600.0),
    ParamSpec('joint_marker_scale', 0.05, 'Joint sphere diameter in metres.',
              low=0.001, high=1.0),
    ParamSpec('mesh_marker_level', 'intermediate',
              'Mesh level drawn on ~/mesh_markers (TRIANGLE_LIST), or off.',
              choices=MESH_LEVELS + ('off',)),
    ParamSpec('mesh_marker_max_rate', 5.0,
              'Most ~/mesh_markers messages per second (RViz chokes on large marker floods).',
              low=0.01, high=1000.0),
    ParamSpec('mesh_marker_shading', True,
              'Per-corner Lambert shading of mesh markers (RViz draws triangle lists unlit); '
              'off: one flat colour per person.'),
    # TF output (changeable at run time).
    ParamSpec('publish_tf', False,
              'Broadcast a REP-155 body frame body_<id> per tracked, placed person on /tf '
              '(tf2_msgs/TFMessage): origin at the mid-hips, x forward, y left, z up, parent '
              'the image frame_id, stamp the image stamp. People without a track id or without '
              'translation (TRANSLATION_NONE) are skipped and counted in diagnostics.'),
    ParamSpec('publish_joint_tf', False,
              'With publish_tf: also one frame <joint_name>_<id> per joint, parented to '
              'body_<id>, identity rotation.'),
    ParamSpec('tf_prefix', '',
              'Prepended to every TF child frame name (body_<id>, <joint>_<id>), e.g. "cam1_" '
              'or "cam1/" for multi-camera rigs.', pattern=_TF_PREFIX,
              pattern_text='empty, or letters, digits, _, - and / (not first)'),
    # Diagnostics.
    ParamSpec('diagnostics_period', 1.0, 'Seconds between /diagnostics reports.',
              read_only=True, low=0.05, high=3600.0),
    ParamSpec('latency_warn_ms', 1000.0,
              'Diagnostics WARN when the mean processing latency exceeds this (ms).',
              low=1.0, high=1.0e6),
    ParamSpec('input_timeout', 5.0,
              'Diagnostics WARN when no image arrived for this many seconds.',
              low=0.1, high=86400.0),
)
_BY_NAME = {spec.name: spec for spec in PARAMETERS}


@dataclass
class NodeParams:
    """Current parameter values, typed (kept up to date by the on-set callback)."""

    enabled: bool
    checkpoint: str
    body_assets: str
    detector: str
    device: str
    tracking: bool
    tracker: str
    detection_threshold: float
    max_persons: int
    image_transport: str
    image_reliability: str
    image_qos_depth: int
    use_depth: bool
    depth_slop: float
    depth_sigma_rel: float
    mesh_level: str
    publish_markers: bool
    marker_lifetime: float
    joint_marker_scale: float
    mesh_marker_level: str
    mesh_marker_max_rate: float
    mesh_marker_shading: bool
    publish_tf: bool
    publish_joint_tf: bool
    tf_prefix: str
    diagnostics_period: float
    latency_warn_ms: float
    input_timeout: float


assert {f.name for f in fields(NodeParams)} == set(_BY_NAME), 'NodeParams out of sync'


def validate(name: str, value: Any) -> str | None:
    """Check one value against its spec.

    Args:
        name: parameter name.
        value: proposed value.

    Returns:
        None when acceptable, else the reason it is refused.
    """
    spec = _BY_NAME.get(name)
    if spec is None:
        return None  # not ours (e.g. qos_overrides.*, use_sim_time): rclpy handles those
    expected = type(spec.default)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        return f'{name} must be of type {expected.__name__}, got {type(value).__name__}'
    if isinstance(value, float) and not math.isfinite(value):
        return f'{name} must be finite, got {value}'
    if spec.low is not None and not spec.low <= value <= spec.high:
        return f'{name}={value} is outside {spec.constraint_text()}'
    if spec.choices is not None and value not in spec.choices:
        return f'{name}={value!r} is not {spec.constraint_text()}'
    if spec.pattern is not None and not spec.pattern.match(value):
        return f'{name}={value!r} is not {spec.pattern_text}'
    return None


def _override_value(node: Node, name: str) -> Any:
    """The start-up override of ``name`` (None if there is none)."""
    # rclpy keeps the command-line and params-file overrides here; there is no public getter.
    override = node._parameter_overrides.get(name)  # noqa: SLF001
    return None if override is None else override.value


def declare_parameters(node: Node, on_change: Callable[[str, Any], None],
                       on_reject: Callable[[str], None]) -> NodeParams:
    """Declare every parameter on ``node`` and keep a typed copy of the values.

    A start-up override that fails validation is reported through ``on_reject`` and replaced
    by the default, so a bad launch argument never stops the node.

    Args:
        node: the node.
        on_change: called with (name, value) after a run-time change was accepted.
        on_reject: called with the reason whenever a value is refused.

    Returns:
        The typed values; the same object is updated in place on later changes.
    """
    def pre_set(parameters: list[Parameter]) -> list[Parameter]:
        # Runs before rclpy's own type/range/read-only checks, so every refusal is counted.
        for parameter in parameters:
            spec = _BY_NAME.get(parameter.name)
            reason = validate(parameter.name, parameter.value)
            if reason is None and spec is not None and spec.read_only:
                reason = f'{parameter.name} is read-only (set it at start-up)'
            if reason is not None:
                on_reject(reason)
        return parameters

    def on_set(parameters: list[Parameter]) -> SetParametersResult:
        for parameter in parameters:
            reason = validate(parameter.name, parameter.value)
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    values = {}
    for spec in PARAMETERS:
        try:
            parameter = node.declare_parameter(spec.name, spec.default, spec.descriptor())
        except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
            fallback = spec.default
            override = _override_value(node, spec.name)
            # An integer given for a float parameter (marker_lifetime:=2) means the float.
            if (isinstance(spec.default, float) and isinstance(override, int)
                    and not isinstance(override, bool)
                    and validate(spec.name, float(override)) is None):
                fallback = float(override)
            else:
                on_reject(f'start-up value of {spec.name} refused ({exc}); '
                          f'using the default {spec.default!r}')
            parameter = node.declare_parameter(
                spec.name, fallback, spec.descriptor(), ignore_override=True)
        value = parameter.value
        values[spec.name] = float(value) if isinstance(spec.default, float) else value
    node.add_pre_set_parameters_callback(pre_set)
    params = NodeParams(**values)

    def post_set(parameters: list[Parameter]) -> None:
        for parameter in parameters:
            if parameter.name in _BY_NAME:
                value = parameter.value
                if isinstance(_BY_NAME[parameter.name].default, float):
                    value = float(value)
                setattr(params, parameter.name, value)
                on_change(parameter.name, value)

    node.add_post_set_parameters_callback(post_set)
    return params
