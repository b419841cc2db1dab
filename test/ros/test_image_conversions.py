# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Image message <-> numpy conversions: every encoding, padded rows, endianness, bad input."""
import cv2
import numpy as np
import pytest

from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from postometro_ros.ros.conversions import (
    camera_info_to_k, check_depth_image, compressed_to_rgb, depth_image_to_metres,
    image_to_rgb, ImageDecodeError, rgb_to_image_msg, SUPPORTED_ENCODINGS)

H, W = 6, 8


@pytest.fixture(scope='module')
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


def make_msg(pixels: np.ndarray, encoding: str, *, pad: int = 0,
             big_endian: bool = False) -> Image:
    """Pack (H, W[, C]) pixels the way a camera driver would, with ``pad`` bytes per row."""
    pixels = pixels.reshape(pixels.shape[0], pixels.shape[1], -1)
    dtype = pixels.dtype.newbyteorder('>' if big_endian else '<')
    rows = pixels.astype(dtype).reshape(pixels.shape[0], -1).view(np.uint8)
    rows = np.concatenate([rows, np.full((rows.shape[0], pad), 0xAB, np.uint8)], axis=1)
    msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding,
                is_bigendian=int(big_endian), step=rows.shape[1])
    msg.data = rows.tobytes()
    return msg


def expected_and_source(rgb: np.ndarray, encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """(expected RGB output, pixels to pack) for an encoding."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    wide = rgb.astype(np.uint16) * 257 + 3  # high byte = rgb, low byte noise
    table = {
        'rgb8': (rgb, rgb), 'bgr8': (rgb, rgb[..., ::-1]),
        'rgba8': (rgb, np.dstack([rgb, np.full((H, W), 7, np.uint8)])),
        'bgra8': (rgb, np.dstack([rgb[..., ::-1], np.full((H, W), 7, np.uint8)])),
        '8UC3': (rgb, rgb[..., ::-1]),
        '8UC4': (rgb, np.dstack([rgb[..., ::-1], np.full((H, W), 7, np.uint8)])),
        'rgb16': (rgb, wide), 'bgr16': (rgb, wide[..., ::-1]),
        '16UC3': (rgb, wide[..., ::-1]),
        'rgba16': (rgb, np.dstack([wide, np.full((H, W), 9, np.uint16)])),
        'bgra16': (rgb, np.dstack([wide[..., ::-1], np.full((H, W), 9, np.uint16)])),
        '16UC4': (rgb, np.dstack([wide[..., ::-1], np.full((H, W), 9, np.uint16)])),
    }
    for name in ('mono8', '8UC1'):
        table[name] = (np.dstack([gray] * 3), gray)
    for name in ('mono16', '16UC1'):
        table[name] = (np.dstack([gray] * 3), gray.astype(np.uint16) * 256 + 200)
    if encoding in table:
        return table[encoding]
    if encoding.startswith('bayer_'):
        pattern = encoding[6:10].upper()
        mosaic = rgb[..., 1].copy()  # any single-channel mosaic; compared against OpenCV
        code = getattr(cv2, f'COLOR_Bayer{pattern[0]}{pattern[1:]}2RGB')
        expected = cv2.cvtColor(mosaic, code)
        if encoding.endswith('16'):
            return expected, mosaic.astype(np.uint16) * 256 + 1
        return expected, mosaic
    packed = np.random.default_rng(1).integers(0, 256, (H, W, 2), dtype=np.uint8)
    code = (cv2.COLOR_YUV2RGB_UYVY if encoding in ('yuv422', 'uyvy')
            else cv2.COLOR_YUV2RGB_YUY2)
    return cv2.cvtColor(packed, code), packed


@pytest.mark.parametrize('encoding', SUPPORTED_ENCODINGS)
@pytest.mark.parametrize('pad', [0, 5 * 2])
def test_every_encoding_decodes_with_padded_rows(rgb, encoding, pad):
    expected, source = expected_and_source(rgb, encoding)
    out = image_to_rgb(make_msg(source, encoding, pad=pad))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize('encoding', ['mono16', 'rgb16', 'bgra16', 'bayer_rggb16'])
def test_big_endian_16_bit(rgb, encoding):
    expected, source = expected_and_source(rgb, encoding)
    msg = make_msg(source, encoding, pad=4, big_endian=True)
    np.testing.assert_array_equal(image_to_rgb(msg), expected)
    # The same bytes read as little-endian would differ: the flag is honoured.
    msg.is_bigendian = 0
    assert not np.array_equal(image_to_rgb(msg), expected)


def test_rgb_to_image_msg_round_trip(rgb):
    header = Header(frame_id='cam')
    msg = rgb_to_image_msg(rgb, header)
    assert (msg.encoding, msg.step, msg.header.frame_id) == ('rgb8', W * 3, 'cam')
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


@pytest.mark.parametrize('mutate, cause', [
    (lambda m: setattr(m, 'encoding', '32FC1'), 'encoding'),
    (lambda m: setattr(m, 'encoding', 'jpeg'), 'encoding'),
    (lambda m: setattr(m, 'height', 0), 'size'),
    (lambda m: setattr(m, 'width', 0), 'size'),
    (lambda m: setattr(m, 'step', W * 3 - 1), 'step'),
    (lambda m: setattr(m, 'data', bytes(m.data[:-1])), 'data'),
    (lambda m: setattr(m, 'height', H + 1), 'data'),
    (lambda m: setattr(m, 'data', b''), 'data'),
])
def test_bad_images_raise_with_cause(rgb, mutate, cause):
    msg = make_msg(rgb, 'rgb8')
    mutate(msg)
    with pytest.raises(ImageDecodeError) as info:
        image_to_rgb(msg)
    assert info.value.cause == cause


def test_odd_step_for_16_bit_and_odd_width_yuv(rgb):
    _, source = expected_and_source(rgb, 'mono16')
    msg = make_msg(source, 'mono16', pad=1)  # step not a multiple of 2
    with pytest.raises(ImageDecodeError) as info:
        image_to_rgb(msg)
    assert info.value.cause == 'step'
    msg = make_msg(np.zeros((2, 3, 2), np.uint8), 'yuv422')
    with pytest.raises(ImageDecodeError) as info:
        image_to_rgb(msg)
    assert info.value.cause == 'size'


def compressed(data: bytes, fmt: str) -> CompressedImage:
    msg = CompressedImage(format=fmt)
    msg.data = data
    return msg


def test_compressed_png_8_and_16_bit_and_gray(rgb):
    ok, png = cv2.imencode('.png', rgb[..., ::-1])
    np.testing.assert_array_equal(compressed_to_rgb(compressed(png.tobytes(), 'png')), rgb)
    wide = rgb.astype(np.uint16) * 256 + 17
    ok, png16 = cv2.imencode('.png', wide[..., ::-1])
    np.testing.assert_array_equal(compressed_to_rgb(compressed(png16.tobytes(), 'png')), rgb)
    gray = rgb[..., 0]
    ok, png_gray = cv2.imencode('.png', gray)
    np.testing.assert_array_equal(compressed_to_rgb(compressed(png_gray.tobytes(), 'png')),
                                  np.dstack([gray] * 3))
    # JPEG is lossy: a smooth image with distinct channels checks the channel order.
    smooth = np.zeros((32, 48, 3), np.uint8)
    smooth[..., 0] = np.linspace(0, 250, 48, dtype=np.uint8)[None, :]
    smooth[..., 1] = 120
    smooth[..., 2] = np.linspace(250, 0, 32, dtype=np.uint8)[:, None]
    ok, jpg = cv2.imencode('.jpg', smooth[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    out = compressed_to_rgb(compressed(jpg.tobytes(), 'jpeg'))
    assert out.shape == smooth.shape and np.abs(out.astype(int) - smooth).mean() < 4


@pytest.mark.parametrize(
    'payload', [b'', b'not an image at all', b'\x89PNG\r\n\x1a\n' + b'0' * 50])
def test_corrupt_compressed_raises(payload):
    with pytest.raises(ImageDecodeError) as info:
        compressed_to_rgb(compressed(payload, 'png'))
    assert info.value.cause == 'compressed'


def test_truncated_jpeg_is_refused_or_decoded_without_crash(rgb):
    ok, jpg = cv2.imencode('.jpg', rgb[..., ::-1])
    try:
        out = compressed_to_rgb(compressed(jpg.tobytes()[:40], 'jpeg'))
    except ImageDecodeError as exc:
        assert exc.cause == 'compressed'
    else:
        assert out.shape == (H, W, 3)


def test_camera_info_to_k():
    info = CameraInfo(width=W, height=H)
    assert camera_info_to_k(info) is None  # all zeros: uncalibrated
    info.k = [500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0]
    np.testing.assert_array_equal(camera_info_to_k(info),
                                  np.array(info.k).reshape(3, 3))
    info.k[0] = float('nan')
    assert camera_info_to_k(info) is None


# --- depth images (16UC1 millimetres, 32FC1 metres) ------------------------------------------

@pytest.mark.parametrize('pad', [0, 6])
@pytest.mark.parametrize('big_endian', [False, True])
def test_depth_16uc1_is_millimetres_with_zero_invalid(pad, big_endian):
    mm = np.arange(H * W, dtype=np.uint16).reshape(H, W) * 100 + 500
    mm[2, 3] = 0
    out = depth_image_to_metres(make_msg(mm, '16UC1', pad=pad, big_endian=big_endian))
    assert out.dtype == np.float32 and out.shape == (H, W)
    expected = mm.astype(np.float64) / 1000.0
    expected[2, 3] = np.nan
    np.testing.assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize('pad', [0, 4])
@pytest.mark.parametrize('big_endian', [False, True])
def test_depth_32fc1_is_metres(pad, big_endian):
    metres = np.linspace(0.3, 9.5, H * W, dtype=np.float32).reshape(H, W)
    metres[0, 0], metres[1, 1] = np.nan, np.inf
    out = depth_image_to_metres(make_msg(metres, '32FC1', pad=pad, big_endian=big_endian))
    np.testing.assert_array_equal(out, metres)


@pytest.mark.parametrize('encoding', ['rgb8', 'mono16', '32FC3', '16SC1', ''])
def test_depth_other_encodings_refused(encoding):
    msg = make_msg(np.zeros((H, W), np.uint16), '16UC1')
    msg.encoding = encoding
    with pytest.raises(ImageDecodeError) as info:
        check_depth_image(msg)
    assert info.value.cause == 'encoding' and '16UC1' in str(info.value)


def test_depth_bad_layouts_refused():
    good = make_msg(np.ones((H, W), np.uint16), '16UC1')
    empty = make_msg(np.ones((H, W), np.uint16), '16UC1')
    empty.width = 0
    odd_step = make_msg(np.ones((H, W), np.uint16), '16UC1')
    odd_step.step = 2 * W + 1
    short = make_msg(np.ones((H, W), np.uint16), '16UC1')
    short.data = bytes(good.data)[:-1]
    for msg, cause in ((empty, 'size'), (odd_step, 'step'), (short, 'data')):
        with pytest.raises(ImageDecodeError) as info:
            depth_image_to_metres(msg)
        assert info.value.cause == cause
