"""The README's screenshot is taken by a real Chromium from a real local site."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any


def test_the_readme_screenshot_can_be_taken(tmp_path: Path, browser: Any) -> None:
    from localsite.screenshot import take

    picture = take(tmp_path / "screenshot.png", browser, width=400, height=300)
    header = picture.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (400, 300)
