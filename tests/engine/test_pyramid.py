"""Big-image engine: header-only oriented size, full decode == read_rgb, tile pyramid build/cache, thumbnails."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from engine.jobs import Cancelled, CancelToken
from engine.project.imageio import ImageReadError, read_rgb
from engine.project.pyramid import (
    Pyramid,
    build_pyramid,
    decode_full,
    level_shapes,
    open_cached,
    oriented_size,
    prune_cache,
    pyramid_key,
    thumbnail,
)


def _pattern(h: int, w: int, seed: int = 0) -> np.ndarray:
    """(h, w, 3) uint8 smooth-ish content with a red marker block at the stored top-left."""
    rng = np.random.default_rng(seed)
    a = cv2.resize(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
    a[:6, :10] = (255, 0, 0)
    return a


def _save_png_with_orientation(path: Path, rgb: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(rgb).save(path, exif=exif.tobytes())


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_exif_after_idat(path: Path, rgb: np.ndarray, orientation: int) -> None:
    """A PNG whose eXIf chunk comes after the pixel data (Pillow must decode everything to see it)."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    data = buf.tobytes()
    exif = Image.Exif()
    exif[0x0112] = orientation
    iend = data.rindex(b"IEND") - 4
    path.write_bytes(data[:iend] + _chunk(b"eXIf", exif.tobytes()[6:] if exif.tobytes().startswith(b"Exif")
                                          else exif.tobytes()) + data[iend:])


@pytest.fixture()
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any Pillow pixel decode fail, to prove a function reads headers only."""
    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError(f"decoded pixels of {self.filename}")
    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_decode_full_and_size_match_read_rgb_for_every_orientation(tmp_path: Path, orientation: int) -> None:
    p = tmp_path / f"o{orientation}.png"
    _save_png_with_orientation(p, _pattern(30, 50), orientation)
    ref = read_rgb(p)  # Pillow + exif_transpose: the reference the small-image path shows
    got = decode_full(p)
    assert got.flags.c_contiguous and got.dtype == np.uint8
    np.testing.assert_array_equal(got, ref)
    assert oriented_size(p) == (ref.shape[1], ref.shape[0])


def test_jpeg_orientation_matches_read_rgb(tmp_path: Path) -> None:
    p = tmp_path / "r.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_pattern(40, 64)).save(p, quality=95, exif=exif.tobytes())
    ref, got = read_rgb(p), decode_full(p)
    assert got.shape == ref.shape == (64, 40, 3)
    assert np.abs(got.astype(int) - ref.astype(int)).mean() < 2.0
    assert oriented_size(p) == (40, 64)
    assert got[2, 36].tolist()[0] > 200 and got[2, 36].tolist()[1] < 60  # marker now top-right


def test_oriented_size_is_header_only_even_with_exif_after_pixels(tmp_path: Path, no_decoding: None) -> None:
    plain = tmp_path / "plain.png"
    cv2.imwrite(str(plain), np.zeros((30, 50, 3), np.uint8))
    late = tmp_path / "late.png"
    _png_exif_after_idat(late, _pattern(30, 50), 6)
    assert oriented_size(plain) == (50, 30)
    assert oriented_size(late) == (30, 50)


def test_exif_after_pixels_is_applied_like_read_rgb(tmp_path: Path) -> None:
    late = tmp_path / "late.png"
    _png_exif_after_idat(late, _pattern(30, 50), 8)
    ref = read_rgb(late)
    assert ref.shape == (50, 30, 3)  # Pillow does see the late chunk when it decodes
    np.testing.assert_array_equal(decode_full(late), ref)
    assert oriented_size(late) == (30, 50)


def test_corrupt_files_raise_image_read_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    for fn in (oriented_size, decode_full, lambda p: build_pyramid(p, tmp_path / "cache")):
        with pytest.raises(ImageReadError, match="bad.png"):
            fn(bad)
    ok, buf = cv2.imencode(".png", _pattern(200, 300))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(buf.tobytes()[: len(buf) // 2])  # valid header, pixel data cut off
    assert oriented_size(truncated) == (300, 200)
    with pytest.raises(ImageReadError, match="truncated.png"):
        decode_full(truncated)


def test_level_shapes_and_level_choice() -> None:
    assert level_shapes(20000, 20000, 512) == [(20000, 20000), (10000, 10000), (5000, 5000), (2500, 2500),
                                               (1250, 1250), (625, 625), (313, 313)]
    assert level_shapes(300, 100, 512) == [(300, 100)]
    pyr = Pyramid(1000, 600, 3, 128, tuple(np.zeros((h, w, 3), np.uint8) for w, h in level_shapes(1000, 600, 128)))
    assert pyr.num_levels == 4
    assert [pyr.level_for(z) for z in (8.0, 1.0, 0.99, 0.5, 0.3, 0.25, 0.01)] == [0, 0, 0, 1, 1, 2, 3]
    assert pyr.grid(0) == (8, 5) and pyr.tile_bounds(0, 7, 4) == (896, 512, 1000, 600)
    assert pyr.scale(3) == pytest.approx((1000 / 125, 600 / 75))


def test_build_pyramid_levels_tiles_and_cache(tmp_path: Path) -> None:
    src = _pattern(600, 1000, seed=3)
    p = tmp_path / "img.png"
    cv2.imwrite(str(p), cv2.cvtColor(src, cv2.COLOR_RGB2BGR))
    cache = tmp_path / "cache"
    pyr = build_pyramid(p, cache, tile=128)
    assert (pyr.width, pyr.height, pyr.channels, pyr.num_levels) == (1000, 600, 3, 4)
    assert pyr.folder == cache / pyramid_key(p, 128)
    assert isinstance(pyr.levels[0], np.memmap)
    np.testing.assert_array_equal(pyr.levels[0], src)
    expect = src
    for k in range(1, pyr.num_levels):
        w, h = pyr.level_size(k)
        expect = cv2.resize(expect, (w, h), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(pyr.levels[k], expect)
    np.testing.assert_array_equal(pyr.tile_array(0, 7, 4), src[512:600, 896:1000])
    assert pyr.tile_array(0, 7, 4).flags.c_contiguous
    # a second open reuses the files instead of decoding again
    mtime = (pyr.folder / "level0.u8").stat().st_mtime_ns
    again = build_pyramid(p, cache, tile=128)
    assert again.folder == pyr.folder and (pyr.folder / "level0.u8").stat().st_mtime_ns == mtime
    assert open_cached(p, cache, 128) is not None
    # changing the file invalidates the cache entry
    cv2.imwrite(str(p), np.zeros((600, 1000, 3), np.uint8))
    os.utime(p, ns=(mtime + 10**9, mtime + 10**9))
    assert open_cached(p, cache, 128) is None
    assert int(build_pyramid(p, cache, tile=128).levels[0].max()) == 0


def test_grey_images_stay_one_channel(tmp_path: Path) -> None:
    p = tmp_path / "g.png"
    g = np.tile(np.arange(300, dtype=np.uint8)[None, :250], (200, 1))
    cv2.imwrite(str(p), g)
    pyr = build_pyramid(p, tmp_path / "c", tile=64)
    assert pyr.channels == 1 and pyr.levels[0].shape == (200, 250)
    np.testing.assert_array_equal(pyr.levels[0], g)


def test_cancel_leaves_no_cache_and_unwritable_cache_keeps_levels_in_memory(tmp_path: Path) -> None:
    p = tmp_path / "img.png"
    cv2.imwrite(str(p), _pattern(300, 400))
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        build_pyramid(p, tmp_path / "cache", tile=64, cancel=token)
    assert not (tmp_path / "cache").exists()
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    pyr = build_pyramid(p, blocker, tile=64)
    assert pyr.folder is None and pyr.num_levels == 4
    np.testing.assert_array_equal(pyr.levels[0], cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB))


def test_prune_cache_drops_least_recently_used_and_stale_temp_folders(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    paths = []
    for i in range(3):
        p = tmp_path / f"i{i}.png"
        cv2.imwrite(str(p), _pattern(200, 300, seed=i))
        build_pyramid(p, cache, tile=64)
        paths.append(p)
        os.utime(cache / pyramid_key(p, 64) / "meta.json", (1000 + i, 1000 + i))
    stale = cache / "abc.tmp-999999999-1"
    stale.mkdir()
    one = sum(f.stat().st_size for f in (cache / pyramid_key(paths[0], 64)).iterdir())
    left = prune_cache(cache, int(one * 1.5), keep={pyramid_key(paths[0], 64)})
    assert left <= one * 1.5
    assert open_cached(paths[0], cache, 64) is not None  # kept although oldest
    assert open_cached(paths[1], cache, 64) is None  # oldest of the rest
    assert not stale.exists()


def test_thumbnails(tmp_path: Path) -> None:
    p = tmp_path / "r.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_pattern(400, 640)).save(p, quality=95, exif=exif.tobytes())
    t = thumbnail(p, 48)
    assert t is not None and t.shape == (48, 30, 3)  # oriented: portrait
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), _pattern(600, 1000))
    assert thumbnail(big, 48, big_side=512) is None  # would need a full decode: refused
    build_pyramid(big, tmp_path / "cache")
    t = thumbnail(big, 48, tmp_path / "cache", big_side=512)
    assert t is not None and t.shape == (29, 48, 3)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    with pytest.raises(ImageReadError, match="bad.jpg"):
        thumbnail(bad, 48)
