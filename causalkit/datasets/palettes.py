"""The colour palettes of colored and double-colored MNIST (RGB in [0, 1]).

Colored MNIST ("Learning Not to Learn") publishes no palette as code, so we chose ten
colours that are far apart in RGB and visible on black: the seven non-black corners of
the RGB cube plus olive, purple and teal. Every pair is at least 0.707 apart (at the
paper's most biased jitter, std sqrt(0.020) = 0.141, a nearest-mean classifier still
recovers the colour class about 98% of the time).

Double-colored MNIST uses CGN's background palette; the digit colour of class ``i`` is
entry ``(i + 4) mod 10`` of the same list (class 0: yellow digit on dark green).
"""

from __future__ import annotations

import numpy as np

__all__ = ["COLORED_NAMES", "COLORED_PALETTE", "DOUBLE_BG_NAMES", "DOUBLE_BG_PALETTE",
           "DOUBLE_FG_PALETTE", "hex_to_rgb"]


def hex_to_rgb(code: str) -> tuple[float, float, float]:
    """``"#rrggbb"`` -> RGB floats in [0, 1]."""
    code = code.lstrip("#")
    return tuple(int(code[i:i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]


#: Colour names of the colored-MNIST classes 0..9.
COLORED_NAMES = ("red", "green", "blue", "yellow", "magenta", "cyan", "white", "olive",
                 "purple", "teal")
#: Class mean colours of colored MNIST, shape (10, 3).
COLORED_PALETTE = np.array([
    [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 1.0],
    [0.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5],
], dtype=np.float32)

#: CGN's background colours (names as in its code), classes 0..9.
DOUBLE_BG_NAMES = ("darkgreen", "darkblue", "#b03060", "orangered", "yellow", "burlywood",
                   "lime", "aqua", "fuchsia", "#6495ed")
_DOUBLE_BG_HEX = ("#006400", "#00008b", "#b03060", "#ff4500", "#ffff00", "#deb887",
                  "#00ff00", "#00ffff", "#ff00ff", "#6495ed")
#: Background colours of double-colored MNIST, shape (10, 3).
DOUBLE_BG_PALETTE = np.array([hex_to_rgb(h) for h in _DOUBLE_BG_HEX], dtype=np.float32)
#: Digit colours of double-colored MNIST: class i gets background entry (i + 4) mod 10.
DOUBLE_FG_PALETTE = DOUBLE_BG_PALETTE[(np.arange(10) + 4) % 10]
