# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""tf2_msgs/msg/TFMessage for the node's /tf output: the vendored build of .ci/tf2_msgs (PyPI
wheels) or a ROS 2 installation's own. Either way its type must be upstream's exactly, or rviz2
and tf2_ros listeners (which match on the RIHS01 type hash) ignore the node's transforms."""
import json
from pathlib import Path
import time

import pytest

rclpy = pytest.importorskip('rclpy')
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

pytestmark = pytest.mark.ros

# ros2/geometry2 tf2_msgs/msg/TFMessage (unchanged since the type hashes were introduced in
# Iron); the same value appears in public rmw_zenoh liveliness tokens for /tf.
UPSTREAM_HASH = 'RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087'
# type_description_interfaces/FieldType: NESTED_TYPE (1) + unbounded sequence offset (144).
NESTED_UNBOUNDED_SEQUENCE = 145


def test_type_description_is_upstreams(repo_root):
    import tf2_msgs
    from tf2_msgs.msg import TFMessage

    # <prefix>/lib/pythonX.Y/site-packages/tf2_msgs -> <prefix>/share/tf2_msgs (venv or ROS).
    prefix = Path(tf2_msgs.__file__).resolve().parents[4]
    description = json.loads((prefix / 'share' / 'tf2_msgs' / 'msg' / 'TFMessage.json')
                             .read_text())
    assert description['type_hashes'][0] == {'type_name': 'tf2_msgs/msg/TFMessage',
                                             'hash_string': UPSTREAM_HASH}
    own = description['type_description_msg']['type_description']
    assert own['type_name'] == 'tf2_msgs/msg/TFMessage'
    assert [(f['name'], f['type']['type_id'], f['type']['nested_type_name'])
            for f in own['fields']] == [
        ('transforms', NESTED_UNBOUNDED_SEQUENCE, 'geometry_msgs/msg/TransformStamped')]
    assert TFMessage.get_fields_and_field_types() == {
        'transforms': 'sequence<geometry_msgs/TransformStamped>'}
    # The vendored definition is the upstream one, line for line.
    vendored = (repo_root / '.ci' / 'tf2_msgs' / 'msg' / 'TFMessage.msg').read_text()
    assert vendored == 'geometry_msgs/TransformStamped[] transforms\n'


def test_publisher_advertises_the_upstream_hash_over_dds():
    """The hash DDS discovery reports comes from the compiled type support, not the json."""
    from geometry_msgs.msg import TransformStamped
    from tf2_msgs.msg import TFMessage

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node('tf2_msgs_check', context=context)
        received = []
        publisher = node.create_publisher(TFMessage, 'tf2_msgs_check', 10)
        node.create_subscription(TFMessage, 'tf2_msgs_check', received.append, 10)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        infos = node.get_publishers_info_by_topic('/tf2_msgs_check')
        assert len(infos) == 1
        assert str(infos[0].topic_type_hash) == UPSTREAM_HASH
        assert infos[0].topic_type == 'tf2_msgs/msg/TFMessage'
        sent = TFMessage(transforms=[TransformStamped(child_frame_id='a')])
        deadline = time.monotonic() + 20.0
        while not received and time.monotonic() < deadline:
            publisher.publish(sent)
            executor.spin_once(timeout_sec=0.2)
        assert received and received[0].transforms[0].child_frame_id == 'a'
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
