"""A 5x7 pixel font for the few labels the SDK draws itself (contact sheets): numpy only, no Pillow."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

GLYPH_W, GLYPH_H = 5, 7

# 7 rows of 5 pixels per character ('#' = ink).
_GLYPHS: dict[str, tuple[str, ...]] = {
    "0": (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
    " ": (".....",) * 7,
    "-": (".....", ".....", ".....", ".###.", ".....", ".....", "....."),
    "b": ("#....", "#....", "#.##.", "##..#", "#...#", "#...#", "####."),
    "e": (".....", ".....", ".###.", "#...#", "#####", "#....", ".###."),
    "i": ("..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###."),
    "k": ("#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#."),
    "n": (".....", ".....", "#.##.", "##..#", "#...#", "#...#", "#...#"),
    "t": (".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##."),
    "w": (".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#."),
    "y": (".....", ".....", "#...#", "#...#", ".####", "....#", ".###."),
}
SUPPORTED = "".join(sorted(_GLYPHS))


def _glyph(char: str) -> npt.NDArray[np.bool_]:
    return np.array([[c == "#" for c in row] for row in _GLYPHS[char]], dtype=bool)


def text_mask(text: str, scale: int = 1) -> npt.NDArray[np.bool_]:
    """(7*scale, (6*len-1)*scale) ink mask of ``text``; ValueError naming a character without a glyph."""
    missing = sorted({c for c in text if c not in _GLYPHS})
    if missing:
        raise ValueError(f"label {text!r}: no glyph for {''.join(missing)!r} (supported: {SUPPORTED!r})")
    if not text:
        return np.zeros((GLYPH_H * scale, 0), dtype=bool)
    gap = np.zeros((GLYPH_H, 1), dtype=bool)
    parts: list[npt.NDArray[np.bool_]] = []
    for i, c in enumerate(text):
        if i:
            parts.append(gap)
        parts.append(_glyph(c))
    mask = np.concatenate(parts, axis=1)
    return np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)
