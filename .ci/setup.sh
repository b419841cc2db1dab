#!/usr/bin/env bash
# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
#
# One-command set-up of the development environment (called by both README commands).
#   bash .ci/setup.sh               create/update .venv, build msg/, configure offline use
#   bash .ci/setup.sh --check-only  only check the machine's prerequisites, change nothing
# Idempotent: every step is skipped when its inputs did not change (stamp files in .venv).
# Everything it writes stays inside the repository (.venv/, build/venv/).
# Environment: POSTOMETRO_PYTHON (base interpreter for a new venv, default python3),
#              POSTOMETRO_SETUP_CHECK_ONLY=1 (same as --check-only).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
BUILD="$REPO/build/venv"
BASE_PYTHON="${POSTOMETRO_PYTHON:-python3}"
CHECK_ONLY="${POSTOMETRO_SETUP_CHECK_ONLY:-0}"
for arg in "$@"; do
  case "$arg" in
    --check-only) CHECK_ONLY=1 ;;
    -h|--help) sed -n '3,10p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
T_START=$(date +%s.%N)
T_STEP=$T_START
SUMMARY=()
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
step_done() {  # step_done <label>: print and record the time since the previous step
  local t; t=$(now)
  echo "setup.sh: $1 ($(elapsed "$T_STEP" "$t") s)"
  SUMMARY+=("$1 $(elapsed "$T_STEP" "$t")s")
  T_STEP=$t
}
sha() { cat "$@" | sha256sum | cut -c1-64; }
run_logged() {  # run_logged <log> <what> <cmd...>: quiet unless it fails
  local log="$1" what="$2"; shift 2
  if ! "$@" > "$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "setup.sh: ERROR: $what failed; full log: $log" >&2
    exit 1
  fi
}

# ---------------------------------------------------------------- 1. prerequisites
MISSING=()
APT=()
version_ge() {  # version_ge <have> <need>: true if have >= need (dotted numbers)
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}
find_ldconfig() {
  command -v ldconfig 2>/dev/null || { [ -x /sbin/ldconfig ] && echo /sbin/ldconfig; } \
    || { [ -x /usr/sbin/ldconfig ] && echo /usr/sbin/ldconfig; } || true
}
LDCONFIG="$(find_ldconfig)"
LDCACHE=""
if [ -n "$LDCONFIG" ]; then LDCACHE="$("$LDCONFIG" -p 2>/dev/null || true)"; fi
has_lib() {  # has_lib <soname>
  if [ -n "$LDCACHE" ]; then
    grep -q "[[:space:]]$1 " <<<"$LDCACHE" && return 0
  fi
  local d
  for d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 /usr/lib /lib; do
    [ -e "$d/$1" ] && return 0
  done
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then  # the base interpreter is only needed to create the venv
  if ! command -v "$BASE_PYTHON" >/dev/null 2>&1; then
    MISSING+=("python3 >= 3.10 ('$BASE_PYTHON' not found; set POSTOMETRO_PYTHON to use another one)")
    APT+=(python3 python3-venv)
  else
    PYV="$("$BASE_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    if ! version_ge "$PYV" 3.10; then
      MISSING+=("python3 >= 3.10 ('$BASE_PYTHON' is $PYV; set POSTOMETRO_PYTHON to a newer one)")
      APT+=(python3)
    elif ! "$BASE_PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
      MISSING+=("the Python venv module with ensurepip for '$BASE_PYTHON' (Debian/Ubuntu: python3-venv)")
      APT+=(python3-venv)
    fi
  fi
fi
if ! command -v cmake >/dev/null 2>&1; then
  MISSING+=("cmake >= 3.21 (builds the message interfaces in msg/)")
  APT+=(cmake)
else
  CMV="$(cmake --version | head -n1 | awk '{print $3}')"
  if ! version_ge "$CMV" 3.21; then
    MISSING+=("cmake >= 3.21 (found $CMV; newer: 'pip install cmake' or your distribution's backports)")
    APT+=(cmake)
  fi
fi
for tool in gcc g++ make; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    MISSING+=("$tool (C/C++ toolchain for the generated message code)")
    case "$tool" in gcc) APT+=(gcc) ;; g++) APT+=(g++) ;; make) APT+=(make) ;; esac
  fi
done
# System libraries of opencv-python (libGL, glib, xcb) and of moderngl's headless EGL renderer.
for lib in libGL.so.1:libgl1 libEGL.so.1:libegl1 libglib-2.0.so.0:libglib2.0-0 \
           libgthread-2.0.so.0:libglib2.0-0 libxcb.so.1:libxcb1; do
  if ! has_lib "${lib%%:*}"; then
    MISSING+=("system library ${lib%%:*} (Debian/Ubuntu package ${lib##*:})")
    APT+=("${lib##*:}")
  fi
done
if [ ! -e /usr/share/glvnd/egl_vendor.d/50_mesa.json ] && ! has_lib libEGL_mesa.so.0; then
  MISSING+=("Mesa EGL driver libEGL_mesa.so.0 (headless rendering; packages libegl-mesa0 libgl1-mesa-dri)")
  APT+=(libegl-mesa0 libgl1-mesa-dri)
fi

# A new .venv takes about 6.4 GB; a full disk otherwise fails deep inside venv's ensurepip.
if [ ! -x "$VENV/bin/python" ]; then
  FREE_MB="$(df -Pm "$REPO" | awk 'NR == 2 { print $4 }')"
  if [ -n "$FREE_MB" ] && [ "$FREE_MB" -lt 8192 ]; then
    MISSING+=("8 GB of free disk space for .venv (PyTorch, ROS 2 and ultralytics wheels); $FREE_MB MB free on the disk of $REPO")
  fi
fi

if [ "${#MISSING[@]}" -gt 0 ]; then
  {
    echo "setup.sh: ERROR: missing prerequisites:"
    for m in "${MISSING[@]}"; do echo "  - $m"; done
    if [ "${#APT[@]}" -gt 0 ]; then
      echo "Install them (Debian/Ubuntu) with:"
      echo "  sudo apt-get update && sudo apt-get install -y $(printf '%s\n' "${APT[@]}" | sort -u | tr '\n' ' ')"
    fi
  } >&2
  exit 1
fi
step_done "prerequisites ok"
if [ "$CHECK_ONLY" = 1 ]; then
  echo "setup.sh: --check-only: all prerequisites found, nothing changed"
  exit 0
fi

# ---------------------------------------------------------------- 2. venv
if [ -d "$VENV" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  echo "setup.sh: ERROR: $VENV exists but its python does not run (base interpreter moved?)." >&2
  echo "  Remove it and run again: rm -rf '$VENV' && bash .ci/setup.sh" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$BASE_PYTHON" -m venv "$VENV"
  run_logged "$VENV/.postometro-pip.log" "pip upgrade" \
    "$VENV/bin/python" -m pip install --upgrade pip==26.3
  step_done "created .venv"
fi
PY="$VENV/bin/python"
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
# The venv holds package.xml files of every ROS wheel: keep colcon from crawling it.
touch "$VENV/COLCON_IGNORE"

# ---------------------------------------------------------------- 3. pinned requirements
REQ_HASH="$(sha "$REPO/.ci/requirements.txt")"
REQ_STAMP="$VENV/.postometro-requirements.sha256"
if [ "$(cat "$REQ_STAMP" 2>/dev/null)" != "$REQ_HASH" ]; then
  echo "setup.sh: installing .ci/requirements.txt (first time: minutes, about 6.4 GB;" \
    "log: $VENV/.postometro-pip.log)"
  run_logged "$VENV/.postometro-pip.log" "pip install -r .ci/requirements.txt" \
    "$PY" -m pip install -r "$REPO/.ci/requirements.txt"
  echo "$REQ_HASH" > "$REQ_STAMP"
  step_done "installed requirements"
else
  step_done "requirements unchanged"
fi

# ---------------------------------------------------------------- 4. msg/ -> .venv (plain CMake)
# Only the pins the generated code depends on (ROS wheels, NumPy headers) trigger a rebuild.
BUILD_PINS="$(grep -E '^(ros-|catkin-pkg|numpy|setuptools)' "$REPO/.ci/requirements.txt" || true)"
MSG_HASH="$(sha "$REPO"/msg/*.msg "$REPO/CMakeLists.txt" "$REPO/cmake/pypi_wheel_includes.cmake" \
  "$REPO/package.xml" <(echo "$BUILD_PINS"))"
MSG_STAMP="$VENV/.postometro-msg.sha256"
# The generated Python package goes off sys.path, into $IFACE_DIR/postometro_ros; the repo's
# postometro_ros/__init__.py adds it to its __path__ through pkgutil.extend_path, which reads
# the directory from site-packages/postometro_ros.pkg. (A second postometro_ros directory in
# site-packages would shadow the editable install of the repo.)
IFACE_DIR="$VENV/lib/postometro_ros_interfaces"
if [ "$(cat "$MSG_STAMP" 2>/dev/null)" != "$MSG_HASH" ] || [ ! -d "$IFACE_DIR/postometro_ros/msg" ] \
    || [ ! -f "$SITE/postometro_ros.pkg" ]; then
  mkdir -p "$BUILD"
  touch "$REPO/build/COLCON_IGNORE" 2>/dev/null || true
  LOG="$BUILD/setup-build.log"
  # Stale generated files of renamed/removed messages would survive a plain install.
  rm -rf "$IFACE_DIR"
  echo "setup.sh: building msg/ into .venv (log: $LOG)"
  build_msgs() {
    export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
    cmake -S "$REPO" -B "$BUILD" -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PY" \
      -DBUILD_TESTING=OFF -DPOSTOMETRO_INSTALL_PYTHON_SOURCES=OFF \
      -DPYTHON_INSTALL_DIR="${IFACE_DIR#"$VENV/"}" \
      && cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" \
      && cmake --install "$BUILD"
  }
  run_logged "$LOG" "building msg/" build_msgs
  echo "$IFACE_DIR/postometro_ros" > "$SITE/postometro_ros.pkg"
  echo "$MSG_HASH" > "$MSG_STAMP"
  step_done "built msg/ into .venv"
else
  step_done "msg/ unchanged"
fi

# ---------------------------------------------------------------- 4b. tf2_msgs/TFMessage -> .venv, only if missing
# The node's optional /tf output needs tf2_msgs/msg/TFMessage. The PyPI ROS wheels have no
# tf2_msgs, so .ci/tf2_msgs (TFMessage only, upstream definition and type hash) is built into
# site-packages like msg/ above. Only when no tf2_msgs imports: a ROS 2 installation's own
# (complete) tf2_msgs must never be shadowed by this partial copy. The stamp marks our copy;
# it is kept up to date while it is the one that imports.
TF2_SRC="$REPO/.ci/tf2_msgs"
TF2_BUILD="$REPO/build/tf2_msgs"
TF2_HASH="$(sha "$TF2_SRC/msg/TFMessage.msg" "$TF2_SRC/CMakeLists.txt" "$TF2_SRC/package.xml" \
  "$REPO/cmake/pypi_wheel_includes.cmake" <(echo "$BUILD_PINS"))"
TF2_STAMP="$VENV/.postometro-tf2_msgs.sha256"
# Where tf2_msgs.msg imports from (empty: nowhere); from / so that no repo path is picked up.
TF2_FOUND="$(cd / && "$PY" -c 'import os, tf2_msgs.msg as m; print(os.path.dirname(os.path.dirname(os.path.abspath(m.__file__))))' 2>/dev/null || true)"
TF2_OURS=0
if [ -f "$TF2_STAMP" ] && { [ -z "$TF2_FOUND" ] || [ "$TF2_FOUND" -ef "$SITE/tf2_msgs" ]; }; then
  TF2_OURS=1
fi
if [ -n "$TF2_FOUND" ] && [ "$TF2_OURS" = 0 ]; then
  step_done "tf2_msgs found at $TF2_FOUND: vendored TFMessage not built"
elif [ "$TF2_OURS" = 1 ] && [ "$(cat "$TF2_STAMP")" = "$TF2_HASH" ] && [ -n "$TF2_FOUND" ]; then
  step_done "tf2_msgs (vendored TFMessage) unchanged"
else
  mkdir -p "$TF2_BUILD"
  touch "$REPO/build/COLCON_IGNORE" 2>/dev/null || true
  TF2_LOG="$TF2_BUILD/setup-build.log"
  echo "setup.sh: no tf2_msgs in .venv: building .ci/tf2_msgs (TFMessage only) into .venv (log: $TF2_LOG)"
  build_tf2_msgs() {
    export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
    cmake -S "$TF2_SRC" -B "$TF2_BUILD" -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PY" \
      -DBUILD_TESTING=OFF \
      && cmake --build "$TF2_BUILD" -j "$(nproc 2>/dev/null || echo 2)" \
      && cmake --install "$TF2_BUILD"
  }
  run_logged "$TF2_LOG" "building .ci/tf2_msgs" build_tf2_msgs
  echo "$TF2_HASH" > "$TF2_STAMP"
  step_done "built tf2_msgs (vendored TFMessage) into .venv"
fi

# ---------------------------------------------------------------- 5. editable install (console scripts)
# Edits to the repo take effect without reinstalling; pip reinstalls of other packages keep it.
DEV_HASH="$(sha "$REPO/setup.py" "$REPO/package.xml" <(echo "$BUILD_PINS"))"
DEV_STAMP="$VENV/.postometro-editable.sha256"
if [ "$(cat "$DEV_STAMP" 2>/dev/null)" != "$DEV_HASH" ] \
    || ! ls "$SITE"/__editable__.postometro_ros-*.pth >/dev/null 2>&1; then
  run_logged "$VENV/.postometro-pip.log" "pip install -e ." \
    "$PY" -m pip install --no-deps --no-build-isolation -e "$REPO"
  echo "$DEV_HASH" > "$DEV_STAMP"
  step_done "installed postometro_ros (editable) and its console scripts"
else
  step_done "editable install unchanged"
fi

# ---------------------------------------------------------------- 6. offline configuration
# ultralytics looks up DNS names at import and downloads Arial.ttf when it trains; both are
# turned off here for every interpreter start of this venv (a .pth file runs at start-up).
YOLO_DIR="$VENV/ultralytics"
mkdir -p "$YOLO_DIR/Ultralytics"
FONT="$SITE/matplotlib/mpl-data/fonts/ttf/DejaVuSans.ttf"
for name in Arial.ttf Arial.Unicode.ttf; do
  if [ ! -s "$YOLO_DIR/Ultralytics/$name" ]; then cp "$FONT" "$YOLO_DIR/Ultralytics/$name"; fi
done
cat > "$VENV/postometro.env.new" <<EOF
# Written by .ci/setup.sh: environment for working offline with this venv.
# Shells: set -a; . .venv/postometro.env; set +a   (python in .venv sets these by itself)
YOLO_OFFLINE=1
YOLO_AUTOINSTALL=false
YOLO_CONFIG_DIR=$YOLO_DIR
EOF
PTH="import os; [os.environ.setdefault(k, v) for k, v in (('YOLO_OFFLINE', '1'), ('YOLO_AUTOINSTALL', 'false'), ('YOLO_CONFIG_DIR', '$YOLO_DIR'))]"
if ! cmp -s "$VENV/postometro.env.new" "$VENV/postometro.env"; then
  mv "$VENV/postometro.env.new" "$VENV/postometro.env"
else
  rm -f "$VENV/postometro.env.new"
fi
if [ "$(cat "$SITE/postometro_ros_env.pth" 2>/dev/null)" != "$PTH" ]; then
  echo "$PTH" > "$SITE/postometro_ros_env.pth"
fi
step_done "offline configuration"

# ---------------------------------------------------------------- 7. verify
if ! (cd / && "$PY" - "$REPO" <<'EOF'
import os
import sys

import postometro_ros
from postometro_ros.msg import Human3DArray

repo = os.path.join(sys.argv[1], 'postometro_ros')
assert os.path.samefile(postometro_ros.__path__[0], repo), postometro_ros.__path__
assert os.environ.get('YOLO_OFFLINE') == '1'
Human3DArray()
# /tf output: TFMessage (vendored or a ROS installation's) with loadable type support.
from rclpy.serialization import serialize_message
from tf2_msgs.msg import TFMessage
serialize_message(TFMessage())
EOF
); then
  echo "setup.sh: ERROR: .venv does not import postometro_ros from $REPO with its messages" \
    "(postometro_ros.msg, tf2_msgs.msg)." >&2
  echo "  Remove the stamps to rebuild: rm -f $VENV/.postometro-*.sha256 && bash .ci/setup.sh" >&2
  exit 1
fi
step_done "verified imports"

echo "setup.sh: OK in $(elapsed "$T_START" "$(now)") s [$(IFS=';'; echo "${SUMMARY[*]}" | sed 's/;/, /g')]" \
  "- use $VENV/bin/python"
