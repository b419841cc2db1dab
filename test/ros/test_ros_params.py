# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Parameter declaration and validation (in-process node, private context) and the yaml."""
from pathlib import Path

import pytest
import yaml

import rclpy
from rclpy.parameter import Parameter

from postometro_ros.ros.params import declare_parameters, PARAMETERS, validate

CONFIG = Path(__file__).resolve().parents[2] / 'config' / 'postometro_node.yaml'


@pytest.fixture
def make_node():
    context = rclpy.Context()
    rclpy.init(context=context)
    nodes = []

    def make(overrides=()):
        node = rclpy.create_node('param_test', context=context, cli_args=[
            '--ros-args', *[a for o in overrides for a in ('-p', o)]])
        changes, rejects = [], []
        params = declare_parameters(node, lambda n, v: changes.append((n, v)), rejects.append)
        nodes.append(node)
        return node, params, changes, rejects
    yield make
    for node in nodes:
        node.destroy_node()
    rclpy.shutdown(context=context)


def test_every_parameter_has_description_and_constraint():
    for spec in PARAMETERS:
        descriptor = spec.descriptor()
        assert len(descriptor.description) > 15, spec.name
        if isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool):
            assert descriptor.floating_point_range or descriptor.integer_range, spec.name
        if isinstance(spec.default, str) and spec.name not in (
                'checkpoint', 'body_assets', 'detector'):
            assert descriptor.additional_constraints, spec.name
        assert validate(spec.name, spec.default) is None, spec.name


def test_shipped_yaml_documents_every_parameter_with_its_default():
    values = yaml.safe_load(CONFIG.read_text())['/**']['ros__parameters']
    assert set(values) == {spec.name for spec in PARAMETERS}
    for spec in PARAMETERS:
        assert values[spec.name] == spec.default, spec.name
    text = CONFIG.read_text()
    for spec in PARAMETERS:  # a comment line right above each key
        lines = text.splitlines()
        index = next(i for i, line in enumerate(lines) if line.strip().startswith(spec.name + ':'))
        assert lines[index - 1].strip().startswith('#'), spec.name


def test_defaults_declared(make_node):
    node, params, _, rejects = make_node()
    assert not rejects
    for spec in PARAMETERS:
        assert node.get_parameter(spec.name).value == spec.default
        assert getattr(params, spec.name) == spec.default


def test_bad_startup_values_fall_back_to_defaults(make_node):
    node, params, _, rejects = make_node([
        'mesh_marker_max_rate:=-5.0', 'tracker:=nonsense.yaml', 'device:=gpu7',
        'max_persons:=3', 'marker_lifetime:=2'])
    assert params.mesh_marker_max_rate == 5.0 and params.tracker == 'bytetrack.yaml'
    assert params.device == 'auto'
    assert params.max_persons == 3
    assert params.marker_lifetime == 2.0  # an integer for a float parameter is accepted
    assert len(rejects) == 3 and all('refused' in r for r in rejects)
    assert node.get_parameter('mesh_marker_max_rate').value == 5.0


@pytest.mark.parametrize('name, value', [
    ('detection_threshold', 1.5), ('detection_threshold', -0.1), ('max_persons', 0),
    ('marker_lifetime', float('nan')), ('marker_lifetime', float('inf')),
    ('mesh_marker_level', 'ultra'), ('mesh_level', 'off'), ('joint_marker_scale', 1),
    ('publish_markers', 'yes'), ('checkpoint', 'other.safetensors'),
    ('image_transport', 'compressed'), ('publish_tf', 1), ('tf_prefix', '/cam1'),
    ('tf_prefix', 'cam 1'),
])
def test_runtime_bad_values_refused_with_reason(make_node, name, value):
    node, params, changes, rejects = make_node()
    before = getattr(params, name)
    result = node.set_parameters([Parameter(name, value=value)])[0]
    assert not result.successful and result.reason
    assert len(rejects) == 1 and name in rejects[0]
    assert getattr(params, name) == before and not changes


def test_runtime_good_value_updates_typed_params(make_node):
    node, params, changes, rejects = make_node()
    assert node.set_parameters([Parameter('detection_threshold', value=0.25)])[0].successful
    assert node.set_parameters([Parameter('mesh_marker_level', value='off')])[0].successful
    assert params.detection_threshold == 0.25 and params.mesh_marker_level == 'off'
    assert changes == [('detection_threshold', 0.25), ('mesh_marker_level', 'off')]
    assert not rejects
