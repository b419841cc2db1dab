# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""package.xml, CMakeLists.txt, setup.py, msg/ and .ci/requirements.txt agree with each other,
and the pip wheel holds the ROS-free package with its console scripts."""
import importlib.metadata
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import postometro_ros


def _cmake_list(repo_root: Path, name: str) -> list[str]:
    text = (repo_root / 'CMakeLists.txt').read_text()
    body = re.search(rf'set\({name}\s*\n(.*?)\)', text, re.S).group(1)
    return re.findall(r'"([^"]+)"', body)


def _msg_files(repo_root: Path) -> list[Path]:
    return sorted((repo_root / 'msg').glob('*.msg'))


def _console_scripts(repo_root: Path) -> dict[str, str]:
    text = (repo_root / 'setup.py').read_text()
    return dict(re.findall(r"'(postometro-[\w-]+) = ([\w.]+:\w+)'", text))


def test_versions_agree(repo_root):
    xml = ElementTree.parse(repo_root / 'package.xml').getroot()
    assert xml.get('format') == '3'
    assert xml.findtext('name') == 'postometro_ros'
    assert postometro_ros.__version__ == xml.findtext('version')


def test_every_msg_is_built_and_its_dependencies_declared(repo_root):
    listed = _cmake_list(repo_root, 'msg_files')
    assert listed == [f'msg/{p.name}' for p in _msg_files(repo_root)]
    assert len(listed) == 6
    xml = ElementTree.parse(repo_root / 'package.xml').getroot()
    depends = {e.text for e in xml.findall('depend')}
    cmake = (repo_root / 'CMakeLists.txt').read_text()
    cmake_deps = set(re.search(r'DEPENDENCIES ([\w ]+)\n', cmake).group(1).split())
    own = {p.stem for p in _msg_files(repo_root)}
    for path in _msg_files(repo_root):
        for line in path.read_text().splitlines():
            field = line.split('#', 1)[0].split()
            if not field or '=' in line.split('#', 1)[0]:
                continue
            base = field[0].split('[', 1)[0]
            if '/' in base:
                pkg = base.split('/', 1)[0]
                assert pkg in depends and pkg in cmake_deps, f'{path.name}: {pkg} not declared'
            else:
                assert base in own or base.islower(), f'{path.name}: unknown type {base}'


def test_every_msg_field_is_documented(repo_root):
    """Each field and constant has a comment on its line or on the line(s) right above."""
    for path in _msg_files(repo_root):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            code = line.split('#', 1)[0].strip()
            if not code:
                continue
            documented = '#' in line or (i > 0 and lines[i - 1].lstrip().startswith('#'))
            # a block of fields right below one comment (e.g. parallel arrays) counts too
            j = i
            while not documented and j > 0 and lines[j - 1].split('#', 1)[0].strip():
                j -= 1
                documented = j > 0 and lines[j - 1].lstrip().startswith('#')
            assert documented, f'{path.name}:{i + 1}: {line!r} has no comment'


def test_console_scripts_agree_with_cmake_wrappers(repo_root):
    scripts = _console_scripts(repo_root)
    assert len(scripts) == 9
    wrappers = dict(entry.split('=', 1) for entry in _cmake_list(repo_root, '_entry_points'))
    assert wrappers == scripts


def test_requirements_are_pinned_and_installed(repo_root):
    for line in (repo_root / '.ci' / 'requirements.txt').read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        assert re.fullmatch(r'[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+', line), line
        name, version = line.split('==')
        assert importlib.metadata.version(name) == version, f'{name}: installed != {version}'


def test_wheel_is_ros_free_with_console_scripts(repo_root, tmp_path):
    src = tmp_path / 'src'
    shutil.copytree(repo_root / 'postometro_ros', src / 'postometro_ros',
                    ignore=shutil.ignore_patterns('__pycache__'))
    for name in ('setup.py', 'package.xml', 'README.md'):
        if (repo_root / name).exists():
            shutil.copy(repo_root / name, src / name)
    proc = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
                           '--no-build-isolation', '-q', '-w', str(tmp_path / 'dist'), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheel = next((tmp_path / 'dist').glob('postometro_ros-*.whl'))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith('/METADATA'))).decode()
        entry_points = zf.read(next(n for n in names if n.endswith('/entry_points.txt'))).decode()
    for sub in ('model', 'body', 'synth', 'data', 'train', 'inference', 'geometry', 'ros'):
        assert f'postometro_ros/{sub}/__init__.py' in names, sub
    assert not any(n.startswith('postometro_ros/msg/') for n in names)
    requires = [line for line in meta.splitlines() if line.startswith('Requires-Dist:')]
    assert any('torch' in r for r in requires)
    assert not any(re.search(r'ros-|rclpy|_msgs', r) for r in requires), requires
    for script, target in _console_scripts(repo_root).items():
        assert f'{script} = {target}' in entry_points
