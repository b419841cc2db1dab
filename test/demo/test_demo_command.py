# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The README demo command, end to end in a subprocess (short synthetic video)."""

import json
from pathlib import Path
import subprocess
import sys

import cv2
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_command_writes_all_outputs(tmp_path):
    out = tmp_path / 'demo'
    proc = subprocess.run(
        [sys.executable, '-m', 'postometro_ros.ros.demo', '--source', 'synth:10:0',
         '--rate', '2', '--out', str(out), '--synth-cache', str(tmp_path / 'cache'),
         '--snapshots', '2'],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # No thread died on the way (a dead executor thread once left the node deaf after warm-up).
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert '=== postometro demo summary ===' in proc.stdout
    summary = json.loads((out / 'summary.json').read_text())
    trained = (REPO / 'models' / 'postometro_tiny_synth.safetensors').is_file()
    # Never pretend: an untrained network is announced in the summary and on stdout.
    assert summary['untrained'] is (not trained)
    assert ('UNTRAINED' in proc.stdout) is (not trained)
    assert summary['frames_published'] == 10, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 1 <= summary['frames_processed'] <= 10, proc.stdout[-3000:] + proc.stderr[-3000:]
    # The node accounts for every frame it received: processed (+ the warm-up frame) or dropped.
    assert summary['node_frames_received'] == (
        summary['frames_processed'] + 1 + sum(summary['node_drops'].values())), summary
    assert summary['node_stage_latency_ms'].get('detect', 0) > 0

    cap = cv2.VideoCapture(str(out / 'annotated.mp4'))
    n_video = 0
    while cap.read()[0]:
        n_video += 1
    assert n_video == summary['frames_processed']
    snaps = sorted(out.glob('snapshot_*.png'))
    assert 1 <= len(snaps) <= 2
    assert cv2.imread(str(snaps[0])).shape == (480, 640, 3)

    with open(out / 'demo.mcap', 'rb') as f:
        counts = {}
        expected_bodies, tf_children = {}, {}   # image stamp -> body frame names
        for _, channel, _, msg in make_reader(
                f, decoder_factories=[DecoderFactory()]).iter_decoded_messages():
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
            if channel.topic == '/postometro/humans':
                assert msg.header.frame_id == 'camera_optical_frame'
                # The node broadcasts body_<id> for each tracked, placed person of the frame
                # (TRACK_LOST farewells are not people of the frame).
                expected_bodies[_stamp(msg.header.stamp)] = {
                    f'body_{h.id}' for h in msg.humans
                    if h.id and h.translation_source in (1, 2) and h.track_state != 3}
            if channel.topic == '/tf':
                stamps = {_stamp(t.header.stamp) for t in msg.transforms}
                assert len(stamps) == 1, stamps          # one message per processed frame
                assert {t.header.frame_id for t in msg.transforms} == {'camera_optical_frame'}
                tf_children[stamps.pop()] = [t.child_frame_id for t in msg.transforms]
            if channel.topic == '/postometro/skeleton_info':
                assert len(msg.joint_names) == 14
            if channel.topic == '/postometro/mesh_topology':
                assert len(msg.faces) == 3 * sum(msg.num_faces) > 0
    # One ~/humans per processed frame, plus the warm-up frame.
    assert counts['/postometro/humans'] == summary['frames_processed'] + 1
    for topic in ('/postometro/skeleton_info', '/postometro/mesh_topology', '/diagnostics',
                  '/camera/camera_info', '/postometro/markers'):
        assert counts.get(topic, 0) >= 1, (topic, counts)
    # publish_tf is on in the demo: /tf holds the body frames of the ids in ~/humans, per frame.
    tracked = set().union(*expected_bodies.values())
    assert tracked, 'no tracked, placed person in ~/humans'
    assert counts.get('/tf', 0) >= 1 and tf_children, counts
    for stamp, children in tf_children.items():
        assert stamp in expected_bodies, 'a /tf stamp that is no ~/humans stamp'
        assert len(children) == len(set(children))
        assert set(children) == expected_bodies[stamp], (children, expected_bodies[stamp])
    # Every frame with a tracked person after the warm-up frame (its /tf may precede discovery
    # of the publisher, made on first use) has its /tf message.
    later = [k for k in sorted(expected_bodies)[1:] if expected_bodies[k]]
    assert later and all(k in tf_children for k in later), (later, sorted(tf_children))


def _stamp(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec
