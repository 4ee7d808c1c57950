"""Check the images of a training snapshot before a run starts.

One unreadable or deleted image must not end a run at the step that meets it: ``find_bad_images``
opens every image's header and verifies its data stream (Pillow ``verify``: chunk CRCs for PNG,
markers for JPEG) without decoding the pixels, and returns the records it could not read with
the reason, so the job can report and skip them (``skip_bad_images``) or refuse.
"""

from __future__ import annotations

import warnings

from PIL import Image

from engine.data.dataset import SampleRecord
from engine.jobs import CancelToken


def image_problem(rec: SampleRecord) -> str | None:
    """Why ``rec``'s file cannot be used, or None when it can."""
    if not rec.path.is_file():
        return "file not found"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(rec.path) as im:
                im.verify()
    except Image.DecompressionBombError:
        return "image too large (decompression bomb guard)"
    except Exception as e:  # Pillow raises many types for damaged files
        return f"unreadable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'damaged data'})"
    return None


def find_bad_images(records: list[SampleRecord], cancel: CancelToken | None = None
                    ) -> list[tuple[SampleRecord, str]]:
    """``[(record, reason)]`` for every record whose image cannot be read."""
    bad = []
    for rec in records:
        if cancel is not None:
            cancel.check()
        reason = image_problem(rec)
        if reason is not None:
            bad.append((rec, reason))
    return bad
