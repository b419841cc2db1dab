# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Record ROS 2 topics into an MCAP file that Foxglove and the ROS 2 tools open.

rosbag2 is not installable from PyPI, so the file is written with the ``mcap`` package: one
``ros2msg`` schema per message type (the ``.msg`` text of the type followed by the text of every
type it uses, in the layout rosbag2 writes), ``cdr`` message encoding, and the serialized bytes
exactly as they arrived (subscriptions with ``raw=True``; no deserialise/serialise round trip).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
from pathlib import Path
import re
import sys
import threading
import time

from mcap.writer import CompressionType, Writer
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message

logger = logging.getLogger(__name__)

_PRIMITIVES = frozenset({
    'bool', 'byte', 'char', 'float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32',
    'uint32', 'int64', 'uint64', 'string', 'wstring'})
_REPO_MSG_DIR = Path(__file__).resolve().parents[2] / 'msg'
_SEPARATOR = '=' * 80


def _msg_search_dirs(package: str) -> list[Path]:
    prefixes = [Path(p) for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    prefixes.append(Path(sys.prefix))
    dirs = [p / 'share' / package / 'msg' for p in prefixes]
    if package == 'postometro_ros':
        dirs.append(_REPO_MSG_DIR)
    return dirs


def find_msg_file(msg_type: str) -> Path:
    """Locate the ``.msg`` file of ``pkg/msg/Type`` (or ``pkg/Type``).

    Raises:
        FileNotFoundError: no install prefix (``AMENT_PREFIX_PATH``, the Python prefix) has it.
    """
    package, name = _split_type(msg_type)
    for d in _msg_search_dirs(package):
        f = d / f'{name}.msg'
        if f.is_file():
            return f
    raise FileNotFoundError(f'no .msg file for {msg_type} in {_msg_search_dirs(package)}')


def _split_type(msg_type: str) -> tuple[str, str]:
    parts = msg_type.split('/')
    if len(parts) == 3:
        return parts[0], parts[2]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise ValueError(f'not a message type: {msg_type!r}')


def _field_types(text: str, package: str) -> list[str]:
    """Complex field types (``pkg/Type``) used by a ``.msg`` text, in order of appearance."""
    out = []
    for line in text.splitlines():
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        tokens = line.split()
        if len(tokens) < 2 or '=' in tokens[1] or (len(tokens) > 2 and tokens[2].startswith('=')):
            continue  # constants are primitives
        base = re.sub(r'\[.*\]$', '', tokens[0])
        base = re.sub(r'<=\d+$', '', base)
        if base in _PRIMITIVES:
            continue
        if base == 'Header':
            base = 'std_msgs/Header'
        elif '/' not in base:
            base = f'{package}/{base}'
        out.append(base)
    return out


def message_definition(msg_type: str) -> str:
    """Full ``ros2msg`` definition text of ``msg_type`` with all its dependencies.

    Args:
        msg_type: e.g. ``'sensor_msgs/msg/Image'``.

    Returns:
        The type's ``.msg`` text, then for each dependency (depth first, once each) a line of 80
        ``=``, ``MSG: pkg/Type`` and its ``.msg`` text.
    """
    package, name = _split_type(msg_type)
    main = find_msg_file(msg_type).read_text()
    parts = [main.rstrip('\n')]
    seen = {f'{package}/{name}'}
    stack = list(reversed(_field_types(main, package)))
    while stack:
        dep = stack.pop()
        if dep in seen:
            continue
        seen.add(dep)
        dep_pkg, dep_name = _split_type(dep)
        text = find_msg_file(dep).read_text()
        parts.append(f'{_SEPARATOR}\nMSG: {dep_pkg}/{dep_name}\n{text.rstrip(chr(10))}')
        stack.extend(reversed(_field_types(text, dep_pkg)))
    return '\n'.join(parts) + '\n'


def message_class(msg_type: str) -> type:
    """Generated message class of ``pkg/msg/Type`` (rosidl_runtime_py is not on PyPI)."""
    package, name = _split_type(msg_type)
    return getattr(importlib.import_module(f'{package}.msg'), name)


def type_name(msg_class) -> str:
    """``pkg/msg/Type`` of a generated message class."""
    module = msg_class.__module__.split('.')
    return f'{module[0]}/msg/{msg_class.__name__}'


class McapRecorder:
    """Thread-safe MCAP writer for ROS 2 CDR messages.

    Args:
        path: output ``.mcap`` file (parent directories are created).
        compression: ``'zstd'``, ``'lz4'`` or ``'none'``.
    """

    def __init__(self, path: str | os.PathLike, compression: str = 'zstd'):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, 'wb')
        self._writer = Writer(self._file, compression=CompressionType[compression.upper()])
        self._writer.start(profile='ros2', library='postometro_ros')
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self._sequence: dict[str, int] = {}
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self._closed = False

    def add_channel(self, topic: str, msg_type: str) -> int:
        """Register ``topic`` with type ``pkg/msg/Type`` (idempotent); returns the channel id."""
        with self._lock:
            if topic in self._channels:
                return self._channels[topic]
            if msg_type not in self._schemas:
                self._schemas[msg_type] = self._writer.register_schema(
                    name=msg_type, encoding='ros2msg',
                    data=message_definition(msg_type).encode())
            cid = self._writer.register_channel(
                topic=topic, message_encoding='cdr', schema_id=self._schemas[msg_type])
            self._channels[topic] = cid
            self._sequence[topic] = 0
            self.counts[topic] = 0
            return cid

    def write(self, topic: str, data: bytes, log_time_ns: int,
              publish_time_ns: int | None = None) -> None:
        """Append one serialized message on a registered topic."""
        with self._lock:
            if self._closed:
                return
            self._writer.add_message(
                channel_id=self._channels[topic], log_time=int(log_time_ns), data=bytes(data),
                publish_time=int(log_time_ns if publish_time_ns is None else publish_time_ns),
                sequence=self._sequence[topic])
            self._sequence[topic] += 1
            self.counts[topic] += 1

    def write_message(self, topic: str, msg, log_time_ns: int) -> None:
        """Serialize a message object and append it (registers the channel if needed)."""
        if topic not in self._channels:
            self.add_channel(topic, type_name(type(msg)))
        self.write(topic, serialize_message(msg), log_time_ns)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._writer.finish()
                self._file.close()
                self._closed = True

    def __enter__(self) -> McapRecorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RecorderNode(Node):
    """Subscribes to topics (raw CDR) and writes them into an MCAP file.

    Args:
        recorder: the MCAP writer.
        topics: topic name -> message class.
        node_name: ROS node name.
        reliable: subscribe RELIABLE (default; matches the node's reliable publishers) or
            BEST_EFFORT.
        depth: history depth per subscription.
        callback: optional ``callback(topic, data_bytes, receive_time_ns)`` after each write.
    """

    def __init__(self, recorder: McapRecorder, topics: dict[str, type], *,
                 node_name: str = 'postometro_recorder', reliable: bool = True, depth: int = 20,
                 callback=None, **node_kwargs):
        super().__init__(node_name, **node_kwargs)
        self.recorder = recorder
        self._callback = callback
        qos = QoSProfile(depth=depth, reliability=(
            ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT))
        self._subs = []
        for topic, cls in topics.items():
            name = self.resolve_topic_name(topic)
            recorder.add_channel(name, type_name(cls))
            self._subs.append(self.create_subscription(
                cls, topic, lambda data, t=name: self._on_message(t, data), qos, raw=True))

    def _on_message(self, topic: str, data: bytes) -> None:
        now = time.time_ns()
        self.recorder.write(topic, data, now)
        if self._callback is not None:
            self._callback(topic, data, now)


def read_mcap(path: str | os.PathLike):
    """Yield ``(topic, schema_name, log_time_ns, data)`` for every message in an MCAP file."""
    from mcap.reader import make_reader
    with open(path, 'rb') as f:
        for schema, channel, message in make_reader(f).iter_messages():
            yield channel.topic, schema.name, message.log_time, message.data


def main(args: list[str] | None = None) -> None:
    """``python -m postometro_ros.ros.recorder out.mcap /topic:pkg/msg/Type ...``."""
    parser = argparse.ArgumentParser(description='Record ROS 2 topics into an MCAP file.')
    parser.add_argument('output')
    parser.add_argument('topics', nargs='+', help='topic:pkg/msg/Type')
    ns, ros_args = parser.parse_known_args(args)
    rclpy.init(args=ros_args)
    topics = {t.split(':', 1)[0]: message_class(t.split(':', 1)[1]) for t in ns.topics}
    with McapRecorder(ns.output) as rec:
        node = RecorderNode(rec, topics)
        try:
            rclpy.spin(node)
        except KeyboardInterrupt:
            pass
        finally:
            node.destroy_node()
            rclpy.try_shutdown()


if __name__ == '__main__':
    main()
