# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Camera source node: folder / video sources, intrinsics, both reliabilities, over real DDS."""

import json
import threading
import time

import cv2
import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from postometro_ros.ros.camera_source import (
    CameraSourceNode, guess_intrinsics, iter_video, open_source)

K_GT = [[500.0, 0.0, 31.5], [0.0, 510.0, 23.5], [0.0, 0.0, 1.0]]


def _images(n=3, w=64, h=48):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture()
def folder(tmp_path):
    for i, img in enumerate(_images()):
        cv2.imwrite(str(tmp_path / f'{i:03d}.png'), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        (tmp_path / f'{i:03d}.json').write_text(json.dumps({
            'camera': {'fx': K_GT[0][0], 'fy': K_GT[1][1], 'cx': K_GT[0][2],
                       'cy': K_GT[1][2]}}))
    return tmp_path


def test_folder_and_video_sources(folder, tmp_path):
    frames = list(open_source(str(folder)))
    assert [f.index for f in frames] == [0, 1, 2]
    assert np.array_equal(frames[1].image, _images()[1])
    assert np.allclose(frames[0].K, K_GT)
    video = tmp_path / 'v.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 10, (64, 48))
    for img in _images(4):
        writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    writer.release()
    vframes = list(iter_video(video))
    assert len(vframes) == 4 and vframes[0].image.shape == (48, 64, 3) and vframes[0].K is None
    K = guess_intrinsics(640, 480, 90.0)
    assert K[0, 0] == pytest.approx(320.0) and K[0, 2] == pytest.approx(319.5)
    with pytest.raises(FileNotFoundError, match='camera source not found'):
        open_source(str(tmp_path / 'missing.mp4'))


@pytest.mark.parametrize('reliability', ['reliable', 'best_effort'])
def test_publishes_images_and_camera_info(folder, reliability):
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        cam = CameraSourceNode(context=context, parameter_overrides=[
            Parameter('source', value=str(folder)), Parameter('rate', value=20.0),
            Parameter('reliability', value=reliability),
            Parameter('frame_id', value='test_optical')])
        sub = rclpy.create_node('camera_sink', context=context)
        got_img, got_info = [], []
        # A best-effort subscriber matches both kinds of publisher (what the node uses).
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
        sub.create_subscription(Image, 'image', got_img.append, qos)
        sub.create_subscription(CameraInfo, 'camera_info', got_info.append, qos)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(sub)
        spin = threading.Thread(target=executor.spin, daemon=True)
        spin.start()
        deadline = time.time() + 20
        while cam.count_subscribers('image') == 0 or sub.count_publishers('image') == 0:
            assert time.time() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
        executor.add_node(cam)
        while not cam.done.is_set() or len(got_img) < 3:
            assert time.time() < deadline, (len(got_img), cam.published)
            time.sleep(0.05)
        executor.shutdown(timeout_sec=1.0)
        spin.join(timeout=5.0)   # before the nodes are destroyed
        assert cam.published == 3
        assert len(got_img) == 3 and len(got_info) == 3
        img = got_img[2]
        assert (img.encoding, img.width, img.height, img.step) == ('rgb8', 64, 48, 192)
        assert img.header.frame_id == 'test_optical'
        assert np.array_equal(np.frombuffer(img.data, np.uint8).reshape(48, 64, 3),
                              _images()[2])
        assert np.allclose(np.reshape(got_info[2].k, (3, 3)), K_GT)
        assert got_info[2].header.stamp == img.header.stamp
        assert (got_info[2].width, got_info[2].height) == (64, 48)
        cam.destroy_node()
        sub.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_bad_parameters_refused(folder):
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        with pytest.raises(ValueError, match='rate must be > 0'):
            CameraSourceNode(context=context, parameter_overrides=[
                Parameter('source', value=str(folder)), Parameter('rate', value=0.0)])
        with pytest.raises(ValueError, match='reliability'):
            CameraSourceNode(context=context, parameter_overrides=[
                Parameter('source', value=str(folder)), Parameter('reliability', value='x')])
    finally:
        rclpy.try_shutdown(context=context)
