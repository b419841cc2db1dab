# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
""".ci/setup.sh names what is missing, with the install command, and fails (--check-only keeps
these runs from touching the real venv)."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest


def _path_without(tmp_path: Path, *missing: str) -> str:
    """A PATH of one directory holding links to every program on PATH except ``missing``."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for directory in os.environ['PATH'].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            link = bin_dir / entry.name
            if entry.name in missing or link.exists() or not os.access(entry.path, os.X_OK):
                continue
            link.symlink_to(entry.path)
    return str(bin_dir)


def _run(script: Path, env_path: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(['bash', str(script), '--check-only'], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PATH=env_path, **env))


def test_check_only_passes_on_this_machine(repo_root):
    proc = _run(repo_root / '.ci' / 'setup.sh', os.environ['PATH'])
    assert proc.returncode == 0, proc.stderr
    assert 'prerequisites ok' in proc.stdout


@pytest.mark.parametrize('tool', ['cmake', 'g++', 'make'])
def test_missing_build_tool_is_named(repo_root, tmp_path, tool):
    proc = _run(repo_root / '.ci' / 'setup.sh', _path_without(tmp_path, tool))
    assert proc.returncode == 1
    assert 'missing prerequisites' in proc.stderr
    assert f'  - {tool} ' in proc.stderr
    apt_line = [line for line in proc.stderr.splitlines() if 'apt-get install -y' in line]
    assert apt_line and f' {tool} ' in apt_line[0] + ' '


def test_old_cmake_is_rejected(repo_root, tmp_path):
    bin_dir = Path(_path_without(tmp_path, 'cmake'))
    fake = bin_dir / 'cmake'
    fake.write_text('#!/bin/sh\necho "cmake version 3.16.3"\n')
    fake.chmod(0o755)
    proc = _run(repo_root / '.ci' / 'setup.sh', str(bin_dir))
    assert proc.returncode == 1
    assert 'cmake >= 3.21 (found 3.16.3' in proc.stderr


def test_missing_python_for_a_new_venv(repo_root, tmp_path):
    # A copy of the script in a checkout without .venv: it needs a base interpreter.
    (tmp_path / 'repo' / '.ci').mkdir(parents=True)
    script = tmp_path / 'repo' / '.ci' / 'setup.sh'
    shutil.copy(repo_root / '.ci' / 'setup.sh', script)
    proc = _run(script, os.environ['PATH'], POSTOMETRO_PYTHON='python3-does-not-exist')
    assert proc.returncode == 1
    assert "python3 >= 3.10 ('python3-does-not-exist' not found" in proc.stderr
    assert not (tmp_path / 'repo' / '.venv').exists()


def test_ci_run_fails_when_no_tests_ran(repo_root):
    # No python test collection and no conftest imports: pytest quickly collects nothing (5).
    proc = subprocess.run(['bash', str(repo_root / '.ci' / 'run'), '-p', 'no:python',
                           '--noconftest', '-p', 'no:cacheprovider'],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, POSTOMETRO_CI_SKIP_SETUP='1'))
    assert proc.returncode == 1
    assert 'no tests were collected' in proc.stderr


def test_full_disk_is_named_before_a_new_venv(repo_root, tmp_path):
    # A full disk used to fail inside venv's ensurepip with no hint (CI, 2026-11-28).
    (tmp_path / 'repo' / '.ci').mkdir(parents=True)
    script = tmp_path / 'repo' / '.ci' / 'setup.sh'
    shutil.copy(repo_root / '.ci' / 'setup.sh', script)
    bin_dir = Path(_path_without(tmp_path, 'df'))
    fake = bin_dir / 'df'
    fake.write_text('#!/bin/sh\n'
                    'echo "Filesystem 1048576-blocks Used Available Capacity Mounted on"\n'
                    'echo "/dev/vda 258048 257848 200 100% /"\n')
    fake.chmod(0o755)
    proc = _run(script, str(bin_dir))
    assert proc.returncode == 1
    assert '8 GB of free disk space for .venv' in proc.stderr
    assert '200 MB free' in proc.stderr
    assert 'apt-get' not in proc.stderr
    assert not (tmp_path / 'repo' / '.venv').exists()
