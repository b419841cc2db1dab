# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The node on ``image/compressed`` (own process, real DDS): good JPEG/PNG frames from either
QoS are processed; corrupt payloads are reported and skipped."""
import cv2
import numpy as np
import pytest

from sensor_msgs.msg import CompressedImage

from ros_node_harness import Probe, running_node

pytestmark = [pytest.mark.ros, pytest.mark.slow]

W, H = 320, 240


@pytest.fixture(scope='module')
def node(untrained_checkpoint, tiny_detector, tmp_path_factory):
    log_path = tmp_path_factory.mktemp('node_log') / 'node_compressed.log'
    # wait=False: Probe.wait_ready waits for subscribers on the raw image topic; here the node
    # subscribes to image/compressed instead.
    with running_node([
        '-p', f'checkpoint:={untrained_checkpoint}', '-p', f'detector:={tiny_detector}',
        '-p', 'device:=cpu', '-p', 'tracking:=false', '-p', 'detection_threshold:=0.0',
        '-p', 'max_persons:=1', '-p', 'diagnostics_period:=0.2',
        '-p', 'image_transport:=compressed',
    ], log_path, wait=False) as (probe, process):
        def ready():
            if not process.alive():
                raise AssertionError(process.log())
            return probe.diagnostics and all(
                p.get_subscription_count() > 0 for p in probe.compressed_pubs.values())
        assert probe.spin_until(ready, 120.0), process.log()
        yield probe, process


def encoded(probe: Probe, extension: str, image: np.ndarray) -> CompressedImage:
    ok, data = cv2.imencode(extension, image)
    assert ok
    msg = CompressedImage(header=probe.header(), format=extension[1:])
    msg.data = data.tobytes()
    return msg


@pytest.fixture(scope='module')
def bgr() -> np.ndarray:
    image = np.full((H, W, 3), 80, np.uint8)
    image[30:220, 130:190] = (40, 90, 200)
    return image


@pytest.mark.parametrize('reliability', ['best_effort', 'reliable'])
def test_jpeg_frames_from_both_qos(node, bgr, reliability):
    probe, _ = node
    msg = encoded(probe, '.jpg', bgr)
    out = probe.send(msg, reliability=reliability)
    assert out.header == msg.header and len(out.humans) == 1


def test_16_bit_png(node, bgr):
    probe, _ = node
    msg = encoded(probe, '.png', bgr.astype(np.uint16) * 257)
    assert probe.send(msg).header == msg.header


@pytest.mark.parametrize('payload', [b'\xff\xd8\xff\xe0 garbage that is no JPEG', b''])
def test_corrupt_compressed_is_reported_and_next_frame_processed(node, bgr, payload):
    probe, process = node
    before = probe.stat('dropped_compressed')
    bad = CompressedImage(header=probe.header(), format='jpeg')
    bad.data = payload
    probe.compressed_pubs['reliable'].publish(bad)
    probe.wait_stat('dropped_compressed', lambda v: v >= before + 1)
    probe.wait_log('compressed image')
    assert not any(h.header.stamp == bad.header.stamp for h in probe.humans)
    out = probe.send(encoded(probe, '.jpg', bgr))
    assert len(out.humans) == 1 and process.alive()
