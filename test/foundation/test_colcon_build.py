# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""`colcon build` of the package in a normal workspace layout, against the venv's ROS 2 wheels,
and the install space works: code, messages, share/ and the ros2-run executables."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SKIP_COPY = ('.venv', 'build', 'install', 'log', '.git', '__pycache__', 'runs', 'outputs',
             '*.egg-info', '.pytest_cache')
EXECUTABLES = ('postometro-demo', 'postometro-node', 'postometro-camera', 'postometro-synth',
               'postometro-body', 'postometro-train', 'postometro-eval', 'postometro-fetch',
               'postometro-export-onnx')


def _modules(repo_root: Path) -> list[Path]:
    """Source files of the EXECUTABLES' entry points (from setup.py)."""
    text = (repo_root / 'setup.py').read_text()
    found = []
    for name in EXECUTABLES:
        module = text.split(f"'{name} = ", 1)[1].split(':', 1)[0]
        found.append(repo_root.joinpath(*module.split('.')).with_suffix('.py'))
    return found


def _is_under(path: str, root: Path) -> bool:
    return Path(path).resolve().is_relative_to(root.resolve())


@pytest.mark.slow
@pytest.mark.ros
def test_colcon_build_and_install_space(repo_root, tmp_path):
    colcon = Path(sys.executable).with_name('colcon')
    if not colcon.exists():
        pytest.fail(f'colcon is not installed next to {sys.executable}: run bash .ci/setup.sh')
    venv = Path(sys.prefix)
    ws = tmp_path / 'ws'
    shutil.copytree(repo_root, ws / 'src' / 'postometro_ros',
                    ignore=shutil.ignore_patterns(*SKIP_COPY))
    env = dict(os.environ, PATH=f'{venv / "bin"}{os.pathsep}{os.environ["PATH"]}',
               VIRTUAL_ENV=str(venv), AMENT_PREFIX_PATH=str(venv), CMAKE_PREFIX_PATH=str(venv))
    build = subprocess.run([str(colcon), 'build', '--event-handlers', 'console_direct-'],
                           cwd=ws, env=env, capture_output=True, text=True, timeout=900)
    logs = sorted((ws / 'log').glob('latest_build/postometro_ros/stdout_stderr.log'))
    detail = logs[0].read_text()[-6000:] if logs else build.stdout[-6000:]
    assert build.returncode == 0, f'colcon build failed:\n{detail}\n{build.stderr[-3000:]}'

    install = ws / 'install'
    check = subprocess.run(
        ['bash', '-c', 'source "$1/setup.bash" && exec "$2" "$3" "$1"', 'check',
         str(install), sys.executable, str(HERE / 'colcon_install_check.py')],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr[-4000:]
    result = json.loads(check.stdout.strip().splitlines()[-1])
    site = Path(result['site'])
    for key in ('package', 'msg', 'body'):
        assert _is_under(result[key], site), (key, result[key], site)
    assert result['mesh_ok'] and result['people_ok']
    assert result['skeleton_info'] == ['a']

    share = Path(result['share'])
    assert share == install / 'postometro_ros' / 'share' / 'postometro_ros'
    for name in ('package.xml', 'launch', 'config', 'models', 'msg/Human3DArray.msg'):
        assert (share / name).exists(), name
    bin_dir = install / 'postometro_ros' / 'lib' / 'postometro_ros'
    for name in EXECUTABLES:
        script = bin_dir / name
        assert os.access(script, os.X_OK), script
        shebang = script.read_text().splitlines()[0]
        assert Path(shebang[2:]).parent == Path(sys.executable).parent, shebang

    # One wrapper runs for real (the first whose module exists already).
    runnable = [name for name, module in zip(EXECUTABLES, _modules(repo_root)) if module.exists()]
    if runnable:
        run = subprocess.run(
            ['bash', '-c', 'source "$1/setup.bash" && exec "$2" --help', 'run', str(install),
             str(bin_dir / runnable[0])],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, (runnable[0], run.stdout[-2000:], run.stderr[-2000:])
