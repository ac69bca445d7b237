"""Decode an upload with Pillow, check it, and re-encode it as WebP at a few widths, without metadata.

Nothing of the upload's container survives: the pixels are turned upright by their EXIF orientation,
converted to sRGB when they carry another ICC profile, and written into new WebP files that carry no
EXIF (GPS included), XMP or ICC profile. Every problem is a `Rejected` naming it as a message key.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import pillow_heif
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from server.domain.images.models import MAX_BYTES, MAX_PIXELS, widths_for

pillow_heif.register_heif_opener()  # HEIC/HEIF, what iPhones and many Android phones shoot
# Pillow refuses to decode more than twice this many pixels (DecompressionBombError): our own limit,
# so a small file that declares a huge canvas is refused before a single pixel is inflated.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False  # a cut-off upload is refused, never shown half grey
FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
QUALITY = 80
_SRGB = ImageCms.createProfile("sRGB")


class Rejected(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True, slots=True)
class Prepared:
    key: str  # a hash of the pixels as encoded: new picture, new key, new URLs
    width: int
    height: int
    variants: dict[int, bytes]  # width → WebP


def _open(data: bytes) -> Image.Image:
    if len(data) > MAX_BYTES:
        raise Rejected("image_too_large")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # over 40 MP: our own check below
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            raise Rejected("image_bomb") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise Rejected("image_not_an_image") from None
    if image.format not in FORMATS:
        raise Rejected("image_format")
    if image.width * image.height > MAX_PIXELS:
        raise Rejected("image_too_many_pixels")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except Image.DecompressionBombError:
        raise Rejected("image_bomb") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise Rejected("image_truncated") from None
    return image


def _to_srgb(image: Image.Image) -> Image.Image:
    icc = image.info.get("icc_profile")
    mode = "RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB"
    converted = image.convert(mode)
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            result = ImageCms.profileToProfile(converted, source, _SRGB, outputMode=mode)
            if result is not None:
                converted = result
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # an unreadable profile: keep the pixels as they are
    return converted


def encode(image: Image.Image, only: tuple[int, ...] | None = None) -> dict[int, bytes]:
    """An upright sRGB image as WebP at each width it is served at (never upscaled), or at `only` those."""
    variants: dict[int, bytes] = {}
    for width in only or widths_for(image.width):
        height = max(1, round(image.height * width / image.width))
        sized = image if width == image.width else image.resize((width, height), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        sized.save(out, "WEBP", quality=QUALITY, method=4)  # no exif=, icc_profile=, xmp=: none is written
        variants[width] = out.getvalue()
    return variants


def prepare(data: bytes) -> Prepared:
    """The upload checked, turned upright, stripped and re-encoded; raises Rejected."""
    image = _open(data)
    upright = ImageOps.exif_transpose(image)
    clean = _to_srgb(upright)
    variants = encode(clean)
    largest = max(variants)
    height = max(1, round(clean.height * largest / clean.width))
    key = hashlib.sha256(variants[largest]).hexdigest()[:24]
    return Prepared(key, largest, height, variants)
