# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The dev venv made by .ci/setup.sh: from any directory (as console scripts run), the repo's
sources are the package and the generated messages merge into it."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

CHILD = r'''
import importlib.util, json, os, sys
import postometro_ros
from postometro_ros.msg import Human3DArray
modules = json.loads(sys.argv[1])
print(json.dumps({
    'path': postometro_ros.__path__[:],
    'msg': os.path.dirname(sys.modules['postometro_ros.msg'].__file__),
    'origins': {m: (importlib.util.find_spec(m) or None) and importlib.util.find_spec(m).origin
                for m in modules},
    'yolo_offline': os.environ.get('YOLO_OFFLINE'),
}))
'''


def test_repo_sources_and_generated_messages_from_any_directory(repo_root, tmp_path):
    scripts = dict(re.findall(r"'(postometro-[\w-]+) = ([\w.]+):\w+'",
                              (repo_root / 'setup.py').read_text()))
    existing = [m for m in scripts.values()
                if repo_root.joinpath(*m.split('.')).with_suffix('.py').exists()]
    env = {k: v for k, v in os.environ.items() if not k.startswith('YOLO_')}
    proc = subprocess.run([sys.executable, '-c', CHILD, json.dumps(existing)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(result['path'][0]).resolve() == (repo_root / 'postometro_ros').resolve()
    assert not Path(result['msg']).resolve().is_relative_to(repo_root / 'postometro_ros')
    for module, origin in result['origins'].items():
        assert Path(origin).resolve().is_relative_to(repo_root.resolve()), (module, origin)
    assert result['yolo_offline'] == '1'  # set by the venv's postometro_ros_env.pth
    for name in scripts:  # console scripts of the editable install
        assert (Path(sys.prefix) / 'bin' / name).exists(), name
