# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Camera source + postometro node (+ RViz): ``ros2 launch postometro_ros demo.launch.py``.

Examples::

    ros2 launch postometro_ros demo.launch.py                          # synthetic video, RViz
    ros2 launch postometro_ros demo.launch.py source:=/path/video.mp4 rviz:=false
    ros2 launch postometro_ros demo.launch.py source:=device:0 detector:=yolo11n.pt
    ros2 launch postometro_ros demo.launch.py use_camera_source:=false \\
        image_topic:=/my_camera/image_raw camera_info_topic:=/my_camera/camera_info

The same graph runs without the ``launch`` package through ``postometro-demo`` (one process).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'postometro_ros'


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    cfg = LaunchConfiguration
    arguments = [
        DeclareLaunchArgument(
            'source', default_value='synth',
            description='Camera source: synth[:frames:seed] (synthetic video), a video file, '
                        'an image folder, or device:N (OpenCV camera).'),
        DeclareLaunchArgument('rate', default_value='5.0', description='Camera rate in Hz.'),
        DeclareLaunchArgument('loop', default_value='true',
                              description='Restart file sources at the end.'),
        DeclareLaunchArgument('camera_reliability', default_value='reliable',
                              description='Camera publisher QoS: reliable or best_effort.'),
        DeclareLaunchArgument('frame_id', default_value='camera_optical_frame',
                              description='Optical frame of the camera (header.frame_id).'),
        DeclareLaunchArgument('use_camera_source', default_value='true',
                              description='Start the camera source (false: use your camera).'),
        DeclareLaunchArgument('image_topic', default_value='/camera/image',
                              description='Image topic the node subscribes to.'),
        DeclareLaunchArgument('camera_info_topic', default_value='/camera/camera_info',
                              description='CameraInfo topic the node subscribes to.'),
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution([share, 'config', 'postometro_node.yaml']),
            description='Node parameter file.'),
        DeclareLaunchArgument(
            'checkpoint',
            default_value=PathJoinSubstitution([share, 'models',
                                                'postometro_tiny_synth.safetensors']),
            description='PostoMETRO checkpoint (.safetensors).'),
        DeclareLaunchArgument(
            'detector',
            default_value=PathJoinSubstitution([share, 'models', 'yolo_person_synth.pt']),
            description='Ultralytics person detector weights.'),
        DeclareLaunchArgument('device', default_value='auto',
                              description='auto, cpu, cuda or cuda:N.'),
        DeclareLaunchArgument(
            'image_reliability', default_value='reliable',
            description='Node image subscription QoS: reliable (matches the reliable camera '
                        'source) or best_effort (for best-effort cameras; with Fast DDS their '
                        'process needs `python -m postometro_ros.ros.dds` as '
                        'FASTDDS_DEFAULT_PROFILES_FILE for frames over 512 KiB).'),
        DeclareLaunchArgument('detection_threshold', default_value='0.3',
                              description='Person score threshold (the demo detector scores '
                                          'low).'),
        DeclareLaunchArgument(
            'enabled', default_value='true',
            description='Node processes images from the start; false: it starts disabled '
                        'until the ~/enable service (std_srvs/SetBool) is called with true.'),
        DeclareLaunchArgument(
            'publish_tf', default_value='true',
            description='Node broadcasts a REP-155 body frame body_<id> per tracked person on '
                        '/tf (shown by the RViz TF display); false: no /tf output.'),
        DeclareLaunchArgument('rviz', default_value='true', description='Start RViz.'),
        DeclareLaunchArgument(
            'rviz_config',
            default_value=PathJoinSubstitution([share, 'config', 'postometro.rviz']),
            description='RViz configuration.'),
    ]

    camera = Node(
        package=PACKAGE, executable='postometro-camera', name='camera', namespace='camera',
        output='screen', condition=IfCondition(cfg('use_camera_source')),
        parameters=[{
            'source': cfg('source'),
            'rate': ParameterValue(cfg('rate'), value_type=float),
            'loop': ParameterValue(cfg('loop'), value_type=bool),
            'reliability': cfg('camera_reliability'),
            'frame_id': cfg('frame_id'),
        }])

    node = Node(
        package=PACKAGE, executable='postometro-node', name='postometro', output='screen',
        parameters=[cfg('params_file'), {
            'checkpoint': cfg('checkpoint'),
            'detector': cfg('detector'),
            'device': cfg('device'),
            'image_reliability': cfg('image_reliability'),
            'detection_threshold': ParameterValue(cfg('detection_threshold'),
                                                  value_type=float),
            'enabled': ParameterValue(cfg('enabled'), value_type=bool),
            'publish_tf': ParameterValue(cfg('publish_tf'), value_type=bool),
        }],
        remappings=[('image', cfg('image_topic')), ('camera_info', cfg('camera_info_topic'))])

    rviz = Node(
        package='rviz2', executable='rviz2', name='rviz2', output='log',
        arguments=['-d', cfg('rviz_config')], condition=IfCondition(cfg('rviz')))

    return LaunchDescription(arguments + [camera, node, rviz])
