# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""launch/demo.launch.py and config/postometro.rviz, checked without the launch package.

``launch``/``launch_ros`` are not installable here (ENVIRONMENT.md §8), so the launch file is run
against small recording stand-ins of the five launch classes it uses; what it declares (nodes,
executables, parameters, remappings, arguments) is then checked against the package.
"""

import ast
import importlib.util
from pathlib import Path
import re
import sys
import types

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / 'launch' / 'demo.launch.py'


class _Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _Config(_Recorded):
    """Stand-in for LaunchConfiguration: remembers the name."""


@pytest.fixture()
def launch_description(monkeypatch):
    mods = {name: types.ModuleType(name) for name in (
        'launch', 'launch.actions', 'launch.conditions', 'launch.substitutions', 'launch_ros',
        'launch_ros.actions', 'launch_ros.parameter_descriptions', 'launch_ros.substitutions')}
    mods['launch'].LaunchDescription = _Recorded
    mods['launch.actions'].DeclareLaunchArgument = type('Arg', (_Recorded,), {})
    mods['launch.conditions'].IfCondition = type('If', (_Recorded,), {})
    mods['launch.substitutions'].LaunchConfiguration = _Config
    mods['launch.substitutions'].PathJoinSubstitution = type('Join', (_Recorded,), {})
    mods['launch_ros.actions'].Node = type('Node', (_Recorded,), {})
    mods['launch_ros.parameter_descriptions'].ParameterValue = type('PV', (_Recorded,), {})
    mods['launch_ros.substitutions'].FindPackageShare = type('Share', (_Recorded,), {})
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    spec = importlib.util.spec_from_file_location('demo_launch', LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def _entry_points():
    text = (REPO / 'setup.py').read_text()
    return set(re.findall(r"'([\w-]+) = postometro_ros[\w.]+:main'", text))


def test_launch_file_is_valid_python():
    tree = ast.parse(LAUNCH.read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == 'generate_launch_description'
               for n in tree.body)


def test_launch_graph(launch_description):
    entities = launch_description.args[0]
    args = {e.kwargs.get('name', e.args[0]): e for e in entities
            if type(e).__name__ == 'Arg'}
    nodes = {e.kwargs['name']: e for e in entities if type(e).__name__ == 'Node'}
    assert set(nodes) == {'camera', 'postometro', 'rviz2'}
    scripts = _entry_points()
    for name in ('camera', 'postometro'):
        assert nodes[name].kwargs['package'] == 'postometro_ros'
        assert nodes[name].kwargs['executable'] in scripts
    # Every LaunchConfiguration used anywhere is declared.
    used = set()

    def walk(obj):
        if isinstance(obj, _Config):
            used.add(obj.args[0])
        elif isinstance(obj, _Recorded):
            for v in list(obj.args) + list(obj.kwargs.values()):
                walk(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v)
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v)
    walk(list(nodes.values()))
    assert used <= set(args), used - set(args)
    # The node listens where the camera publishes (camera namespace + relative topics).
    remaps = dict((k, v.args[0]) for k, v in nodes['postometro'].kwargs['remappings'])
    assert remaps == {'image': 'image_topic', 'camera_info': 'camera_info_topic'}
    assert args['image_topic'].kwargs['default_value'] == '/camera/image'
    assert nodes['camera'].kwargs['namespace'] == 'camera'
    # Camera parameters exist in the camera node.
    cam_params = set(nodes['camera'].kwargs['parameters'][0])
    source = (REPO / 'postometro_ros' / 'ros' / 'camera_source.py').read_text()
    for p in cam_params:
        assert f"p('{p}'" in source, p
    node_params = set(nodes['postometro'].kwargs['parameters'][1])
    assert node_params == {'checkpoint', 'detector', 'device', 'image_reliability',
                           'detection_threshold', 'enabled', 'publish_tf'}
    params_src = (REPO / 'postometro_ros' / 'ros' / 'params.py').read_text()
    for p in node_params:
        assert f"ParamSpec('{p}'" in params_src, p
    # The body frames are on in the demo (the RViz TF display shows them), typed as a bool.
    publish_tf = nodes['postometro'].kwargs['parameters'][1]['publish_tf']
    assert type(publish_tf).__name__ == 'PV' and publish_tf.kwargs['value_type'] is bool
    assert publish_tf.args[0].args[0] == 'publish_tf'
    assert args['publish_tf'].kwargs['default_value'] == 'true'
    # RViz gets the shipped config and only starts on request.
    assert nodes['rviz2'].kwargs['arguments'][0] == '-d'
    assert type(nodes['rviz2'].kwargs['condition']).__name__ == 'If'
    assert args['rviz_config'].kwargs['default_value'].args[0][-1] == 'postometro.rviz'


def test_rviz_config_matches_topics():
    cfg = yaml.safe_load((REPO / 'config' / 'postometro.rviz').read_text())
    vm = cfg['Visualization Manager']
    assert vm['Global Options']['Fixed Frame'] == 'camera_optical_frame'
    topics = {d['Topic']['Value']: d['Class'] for d in vm['Displays'] if 'Topic' in d}
    assert topics == {
        '/postometro/markers': 'rviz_default_plugins/MarkerArray',
        '/postometro/mesh_markers': 'rviz_default_plugins/MarkerArray',
        '/postometro/debug_image': 'rviz_default_plugins/Image'}
    node_src = (REPO / 'postometro_ros' / 'ros' / 'node.py').read_text()
    for topic in topics:
        assert f"'~/{topic.rsplit('/', 1)[1]}'" in node_src
    # The body frames of publish_tf (on in the launch file) are shown, without arrows back to
    # the camera (clutter with several people).
    tf_displays = [d for d in vm['Displays'] if d['Class'] == 'rviz_default_plugins/TF']
    assert len(tf_displays) == 1
    assert tf_displays[0]['Enabled'] is True and tf_displays[0]['Show Axes'] is True
    assert tf_displays[0]['Show Arrows'] is False
    # The camera source's default frame is the RViz fixed frame.
    assert "'frame_id', 'camera_optical_frame'" in (
        REPO / 'postometro_ros' / 'ros' / 'camera_source.py').read_text()
