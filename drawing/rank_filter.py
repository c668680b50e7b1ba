"""The largest or smallest value around each pixel (Pillow's MaxFilter and MinFilter), fast."""

import numpy as np


def square_filter(ink, size, biggest):
    """uint8 [h, w] -> the largest (`biggest`) or smallest value in the size x size square
    around each pixel, squares cut off at the edges: Pillow's MaxFilter and MinFilter to the
    bit, done as one pass along each axis, some forty times faster on a number's width."""
    half = size // 2
    pick = np.maximum if biggest else np.minimum
    filtered = ink
    for axis in (0, 1):
        along = np.moveaxis(filtered, axis, 0)
        length = len(along)
        padded = np.concatenate([along[:1]] * half + [along] + [along[-1:]] * half)
        picked = padded[:length].copy()
        for shift in range(1, size):
            pick(picked, padded[shift:shift + length], out=picked)
        filtered = np.moveaxis(picked, 0, axis)
    return np.ascontiguousarray(filtered)

