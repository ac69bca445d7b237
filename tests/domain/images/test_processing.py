"""Uploads through the real Pillow pipeline: what is accepted, what is refused and why, what survives."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from server.domain.images.models import MAX_BYTES
from server.domain.images.processing import Rejected, prepare
from tests.fixtures import pictures


def _decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_jpeg_becomes_webp_at_each_width_up_to_its_own() -> None:
    prepared = prepare(pictures.photo((1200, 800)))
    assert sorted(prepared.variants) == [320, 640, 1024, 1200]
    assert (prepared.width, prepared.height) == (1200, 800)
    for width, data in prepared.variants.items():
        image = _decoded(data)
        assert image.format == "WEBP" and image.size == (width, round(800 * width / 1200))


def test_a_small_picture_is_never_upscaled() -> None:
    prepared = prepare(pictures.photo((200, 100), "PNG"))
    assert list(prepared.variants) == [200] and _decoded(prepared.variants[200]).size == (200, 100)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "PNG"])
def test_exif_with_gps_is_stripped_from_every_width(fmt: str) -> None:
    upload = pictures.with_gps(fmt)
    assert Image.open(io.BytesIO(upload)).getexif().get_ifd(pictures.GPS), "the fixture carries GPS"
    for data in prepare(upload).variants.values():
        image = _decoded(data)
        assert not image.getexif(), "no EXIF at all, so no GPS"
        assert "exif" not in image.info and "xmp" not in image.info and "icc_profile" not in image.info
        assert b"Exif" not in data and b"PhoneMaker" not in data


def test_exif_orientation_is_applied_before_it_is_dropped() -> None:
    # orientation 6: the camera was turned; the stored pixels are landscape, the photo is portrait
    prepared = prepare(pictures.with_gps("JPEG", orientation=6))
    assert prepared.width < prepared.height
    upright = _decoded(prepared.variants[prepared.width]).convert("RGB")
    # the red band was on the left of the sensor's picture; turned upright it runs along the top
    assert upright.getpixel((prepared.width // 2, 5))[0] > 200
    assert upright.getpixel((prepared.width // 2, prepared.height - 5))[0] < 200


def test_heic_from_a_phone_is_accepted() -> None:
    prepared = prepare(pictures.heic())
    assert (prepared.width, prepared.height) == (800, 600)
    assert _decoded(prepared.variants[640]).format == "WEBP"


def test_the_key_follows_the_pixels() -> None:
    assert prepare(pictures.photo()).key == prepare(pictures.photo()).key
    assert prepare(pictures.photo()).key != prepare(pictures.photo((1200, 801))).key


@pytest.mark.parametrize(("make", "key"), [
    (lambda: b"%PDF-1.4 not a picture at all", "image_not_an_image"),
    (lambda: b"", "image_not_an_image"),
    (pictures.gif, "image_format"),
    (pictures.bomb, "image_bomb"),
    (pictures.over_40mp, "image_too_many_pixels"),
    (pictures.truncated_jpeg, "image_truncated"),
    (lambda: b"\xff\xd8" + b"\0" * MAX_BYTES, "image_too_large"),
])
def test_bad_input_is_rejected_naming_the_problem(make: object, key: str) -> None:
    assert callable(make)
    with pytest.raises(Rejected) as caught:
        prepare(make())
    assert caught.value.key == key


def test_the_bomb_is_small_on_disk() -> None:
    assert len(pictures.bomb()) < 100_000  # what makes it a bomb: tiny file, huge canvas
