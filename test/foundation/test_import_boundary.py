# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The compute code imports with ROS made unimportable (CONTRACTS: only postometro_ros/ros/ may
use rclpy or message packages). Every module file under the covered subpackages is imported,
so new files are checked without editing this test."""
import json
import subprocess
import sys

import pytest

COVERED = ('model', 'body', 'synth', 'data', 'train', 'inference', 'geometry')
BLOCKED = (
    'rclpy', 'rcl_interfaces', 'rosidl_runtime_py', 'rosidl_parser', 'rosidl_generator_py',
    'rpyutils', 'ament_index_python', 'builtin_interfaces', 'std_msgs', 'std_srvs',
    'geometry_msgs', 'sensor_msgs', 'visualization_msgs', 'diagnostic_msgs', 'shape_msgs',
    'vision_msgs',
    'cv_bridge', 'launch', 'launch_ros', 'message_filters', 'tf2_ros',
    'postometro_ros.msg', 'postometro_ros.ros',
)

# Runs in a fresh interpreter: a meta-path finder refuses every blocked name (and its
# submodules) the way a machine without ROS would, then each module is imported in turn.
CHILD = r'''
import importlib, json, sys, traceback
from pathlib import Path
blocked, covered, repo = json.loads(sys.argv[1])

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + '.') for b in blocked):
            raise ModuleNotFoundError(f'No module named {name!r} (blocked by the test)', name=name)
        return None

sys.meta_path.insert(0, Blocker())
for name in blocked:
    sys.modules.pop(name, None)
try:
    import rclpy  # noqa: F401
    control = 'rclpy imported despite the blocker'
except ImportError:
    control = None

modules, failures = [], {}
for sub in covered:
    root = Path(repo) / 'postometro_ros' / sub
    for path in sorted(root.rglob('*.py')):
        if path.name == '__main__.py':  # would run the program
            continue
        parts = path.relative_to(repo).with_suffix('').parts
        name = '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)
        modules.append(name)
        try:
            importlib.import_module(name)
        except BaseException:
            failures[name] = traceback.format_exc(limit=-3)
leaked = sorted(m for m in sys.modules if any(m == b or m.startswith(b + '.') for b in blocked)
                and sys.modules[m] is not None)
print(json.dumps({'control': control, 'modules': modules, 'failures': failures,
                  'leaked': leaked}))
'''


@pytest.mark.slow  # imports the whole code base (torch, ultralytics, ...): 8-30 s
def test_compute_code_imports_without_ros(repo_root):
    args = json.dumps([list(BLOCKED), list(COVERED), str(repo_root)])
    proc = subprocess.run([sys.executable, '-c', CHILD, args], cwd=repo_root,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result['control'] is None, result['control']
    assert 'postometro_ros.model' in result['modules']
    assert len(result['modules']) >= len(COVERED)
    assert not result['failures'], '\n'.join(f'{m}:\n{tb}' for m, tb in result['failures'].items())
    assert not result['leaked'], result['leaked']


def test_blocker_catches_a_ros_import(repo_root, tmp_path):
    """Control: a module under a covered subpackage that imports rclpy is reported."""
    fake_repo = tmp_path / 'repo'
    pkg = fake_repo / 'postometro_ros'
    (pkg / 'model').mkdir(parents=True)
    (pkg / '__init__.py').write_text('')
    (pkg / 'model' / '__init__.py').write_text('')
    (pkg / 'model' / 'uses_ros.py').write_text('from std_msgs.msg import Header\n')
    args = json.dumps([list(BLOCKED), ['model'], str(fake_repo)])
    proc = subprocess.run([sys.executable, '-c', CHILD, args], cwd=fake_repo,
                          capture_output=True, text=True, timeout=120)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert list(result['failures']) == ['postometro_ros.model.uses_ros']
    assert 'blocked by the test' in result['failures']['postometro_ros.model.uses_ros']
