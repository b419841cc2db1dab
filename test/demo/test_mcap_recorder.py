# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""MCAP recording: ros2msg schemas + CDR, read back and decoded in two independent ways."""

import numpy as np
import pytest

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from postometro_ros.ros.recorder import McapRecorder, message_definition, read_mcap


def _image(i):
    h, w = 4, 5
    data = (np.arange(h * w * 3, dtype=np.uint8) + i).tobytes()
    return Image(header=Header(stamp=Time(sec=10 + i, nanosec=5), frame_id='cam_optical'),
                 height=h, width=w, encoding='rgb8', step=w * 3, data=data)


def _markers(i):
    m = Marker(header=Header(stamp=Time(sec=10 + i), frame_id='cam_optical'), ns='mesh', id=7,
               type=Marker.TRIANGLE_LIST, action=Marker.ADD)
    m.pose.orientation.w = 1.0
    m.points = [Point(x=float(k), y=0.5, z=2.0 + i) for k in range(6)]
    m.colors = [ColorRGBA(r=1.0, a=1.0)] * 6
    return MarkerArray(markers=[m])


def test_definition_lists_dependencies_once():
    text = message_definition('visualization_msgs/msg/MarkerArray')
    assert text.startswith('Marker[] markers') or 'Marker[] markers' in text.split('=' * 80)[0]
    for dep in ('visualization_msgs/Marker', 'std_msgs/Header', 'geometry_msgs/Pose',
                'geometry_msgs/Point', 'std_msgs/ColorRGBA', 'builtin_interfaces/Duration'):
        assert text.count(f'MSG: {dep}\n') == 1, dep


def test_round_trip(tmp_path):
    path = tmp_path / 'out.mcap'
    with McapRecorder(path) as rec:
        for i in range(3):
            rec.write_message('/camera/image', _image(i), 1_000 + i)
            rec.write_message('/postometro/mesh_markers', _markers(i), 1_000 + i)
        info = CameraInfo(header=Header(frame_id='cam_optical'), width=5, height=4)
        info.k = [500.0, 0.0, 2.0, 0.0, 500.0, 1.5, 0.0, 0.0, 1.0]
        rec.add_channel('/camera/camera_info', 'sensor_msgs/msg/CameraInfo')
        rec.write('/camera/camera_info', serialize_message(info), 2_000)
    assert rec.counts == {'/camera/image': 3, '/postometro/mesh_markers': 3,
                          '/camera/camera_info': 1}

    # 1) rclpy deserialisation of the stored bytes.
    msgs = list(read_mcap(path))
    assert [m[0] for m in msgs].count('/camera/image') == 3
    images = [deserialize_message(d, Image) for t, _, _, d in msgs if t == '/camera/image']
    assert [im.header.stamp.sec for im in images] == [10, 11, 12]
    assert bytes(images[2].data) == bytes(_image(2).data)
    marker = [deserialize_message(d, MarkerArray) for t, _, _, d in msgs
              if t == '/postometro/mesh_markers'][1].markers[0]
    assert marker.type == Marker.TRIANGLE_LIST and len(marker.points) == 6
    assert marker.points[3].x == 3.0 and marker.points[3].z == 3.0

    # 2) an independent decoder that only knows the schema text (what Foxglove does).
    with open(path, 'rb') as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        assert summary.statistics.message_count == 7
        assert {s.encoding for s in summary.schemas.values()} == {'ros2msg'}
        assert {c.message_encoding for c in summary.channels.values()} == {'cdr'}
        decoded = {}
        for _, channel, _, dec in reader.iter_decoded_messages():
            decoded.setdefault(channel.topic, []).append(dec)
    assert decoded['/camera/camera_info'][0].k[0] == pytest.approx(500.0)
    assert decoded['/camera/image'][1].encoding == 'rgb8'
    assert decoded['/postometro/mesh_markers'][2].markers[0].points[5].x == pytest.approx(5.0)
    assert len(decoded['/postometro/mesh_markers'][2].markers[0].colors) == 6


def test_custom_messages_round_trip(tmp_path):
    msg_mod = pytest.importorskip('postometro_ros.msg', reason='messages not built (.ci/setup.sh)')
    arr = msg_mod.Human3DArray(header=Header(frame_id='cam_optical'), skeleton='j14')
    h = msg_mod.Human3D(id='3', detection_score=0.9, translation_source=1)
    h.joints_3d = np.arange(42, dtype=np.float32)
    h.root_position.z = 4.0
    arr.humans = [h]
    path = tmp_path / 'h.mcap'
    with McapRecorder(path) as rec:
        rec.write_message('/postometro/humans', arr, 1)
    with open(path, 'rb') as f:
        (_, _, _, dec), = make_reader(f, decoder_factories=[DecoderFactory()]) \
            .iter_decoded_messages()
    assert dec.skeleton == 'j14' and dec.humans[0].id == '3'
    assert list(dec.humans[0].joints_3d)[41] == pytest.approx(41.0)
    assert dec.humans[0].root_position.z == pytest.approx(4.0)
