"""Contact sheet: a valid 8-bit RGB PNG of tiled sRGB thumbnails."""

from __future__ import annotations

import struct
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from genfx import exr
from genfx.camera import CameraSample
from genfx.colour import linear_to_srgb, srgb_to_linear
from genfx.contact_sheet import write_contact_sheet

W, H = 64, 36
LINEAR = 0.2  # stored as half in the EXR


def _expected_8bit(linear: float) -> int:
    return round(float(linear_to_srgb(np.float16(linear).astype(np.float32))) * 255)


CAM = CameraSample(1, (1.0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 10, 0, 0, 0, 1), 35.0, 36.0)


def read_png(path: Path) -> tuple[int, int, np.ndarray]:
    """Minimal PNG reader for what encode_png writes: checks CRCs, filter 0 rows, 8-bit RGB."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks.append((kind, body))
        pos += 12 + length
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour) == (8, 2)
    raw = np.frombuffer(zlib.decompress(chunks[1][1]), np.uint8).reshape(height, 1 + width * 3)
    assert (raw[:, 0] == 0).all()
    return width, height, raw[:, 1:].reshape(height, width, 3)


def _frames(tmp_path: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        rgba = np.zeros((H, W, 4), np.float32)
        rgba[..., i % 3] = LINEAR
        rgba[..., 3] = 1.0
        rgba[: H // 2, :, :] *= 0.5  # premultiplied 50% alpha on the top half: half the value over black
        path = tmp_path / f"f.{1001 + i:04d}.exr"
        exr.write_frame(path, rgba, exr.FrameMetadata(CAM, W, H, 1001 + i, Fraction(24)))
        paths.append(path)
    return paths


def test_contact_sheet_png(tmp_path: Path) -> None:
    paths = _frames(tmp_path, 10)
    out = write_contact_sheet(paths, tmp_path / "sheet.png", columns=4, thumb_width=32)
    width, height, rgb = read_png(Path(out))
    assert (width, height) == (4 * 32, 3 * 18)  # 10 frames in 4 columns -> 3 rows; 64x36 -> 32x18
    # Frame 1 (green) sits in row 0, column 1; its bottom half is fully opaque.
    assert tuple(rgb[15, 32 + 10]) == (0, _expected_8bit(LINEAR), 0)
    # Top half: alpha 0.5 premultiplied, composited over black, then sRGB-encoded.
    assert tuple(rgb[2, 10]) == (_expected_8bit(LINEAR * 0.5), 0, 0)
    assert (rgb[36:, 64:] == 0).all()  # empty cells after the 10th frame stay black


def test_fewer_frames_than_columns(tmp_path: Path) -> None:
    out = write_contact_sheet(_frames(tmp_path, 2), tmp_path / "s.png", columns=8, thumb_width=16)
    assert read_png(Path(out))[:2] == (2 * 16, 9)


def test_empty_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        write_contact_sheet([], "x.png")


def test_srgb_curve_round_trip() -> None:
    x = np.linspace(0.0, 1.0, 1001, dtype=np.float32)
    assert srgb_to_linear(x).dtype == np.float32
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=2e-6)
    assert float(srgb_to_linear(np.float32(0.5))) == pytest.approx(0.21404, abs=1e-5)
    assert float(linear_to_srgb(np.float32(-1.0))) == 0.0


def test_labels_are_drawn_in_a_strip_under_each_thumbnail(tmp_path: Path) -> None:
    from genfx.bitmap_font import GLYPH_H, text_mask
    from genfx.contact_sheet import LABEL_BACKGROUND, LABEL_INK

    labels = ["1001 key", "1002 in-between", "1003 in-between"]
    out = write_contact_sheet(
        _frames(tmp_path, 3), tmp_path / "s.png", columns=2, thumb_width=64, labels=labels
    )
    width, height, rgb = read_png(Path(out))
    strip = GLYPH_H + 2  # scale 1 under 128 px thumbnails, one pixel of padding above and below
    cell = 36 + strip  # 64x36 thumbnails
    assert (width, height) == (2 * 64, 2 * cell)
    for i, text in enumerate(labels):
        r, c = divmod(i, 2)
        y0, x0 = r * cell + 36, c * 64
        drawn = rgb[y0 + 1 : y0 + 1 + GLYPH_H, x0 + 1 : x0 + 63]
        ink = np.zeros(drawn.shape[:2], bool)
        mask = text_mask(text)[:, :62]  # clipped at the thumbnail's width
        ink[:, : mask.shape[1]] = mask
        assert (drawn[ink] == LABEL_INK).all() and (drawn[~ink] == LABEL_BACKGROUND).all(), text
    # The thumbnail above the first label is the frame (green channel 0, red set), not the strip.
    assert tuple(rgb[30, 10]) == (_expected_8bit(LINEAR), 0, 0)


def test_labels_must_match_the_frames_and_the_font(tmp_path: Path) -> None:
    frames = _frames(tmp_path, 2)
    with pytest.raises(ValueError, match=r"labels: need one per EXR \(2\), got 1"):
        write_contact_sheet(frames, tmp_path / "s.png", labels=["1001 key"])
    with pytest.raises(ValueError, match="no glyph for 'K'"):
        write_contact_sheet(frames, tmp_path / "s.png", labels=["1001 Key", "1002 key"])
