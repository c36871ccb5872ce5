"""Vectorised NumPy renderer for mmzoo-shapes scenes.

Every object (and clutter stroke) of a batch of scenes is rasterised at once in
a small window around it, from a signed distance in pixels, which also gives
anti-aliased edges; the covered pixels of all windows are then composited into
the images with one fancy-indexed assignment.
"""

import functools
import struct
import zlib

import numpy as np

# RGB of `shapes.COLOURS`, saturated so they stay apart from the grey
# background and clutter.
COLOUR_RGB = np.array([
    (220, 40, 40),    # red
    (40, 170, 60),    # green
    (40, 90, 230),    # blue
    (240, 220, 40),   # yellow
    (150, 60, 200),   # purple
    (250, 140, 20),   # orange
], np.float32)
# Radius of a small and a large object (`shapes.SIZES`), in fractions of the
# image side: what is drawn, and what the generator places objects by. Small
# objects are about 5 px wide at 32 px.
RADIUS = (0.075, 0.12)
NOISE_BANK_SIZE = 64
NOISE_STD = 4.0
_SQRT_HALF = np.float32(np.sqrt(0.5))


@functools.lru_cache(maxsize=4)
def _noise_bank(image_size):
    # RandomState's stream is frozen by NumPy's compatibility policy, so the
    # bank (and every image) is the same on any NumPy version.
    rs = np.random.RandomState(20240 + image_size)
    bank = rs.standard_normal((NOISE_BANK_SIZE, image_size, image_size, 1)) * NOISE_STD
    bank = bank.astype(np.float32)
    bank.flags.writeable = False
    return bank


def _windows(cx, cy, side):
    """Pixel coordinates of a `side` x `side` window around each centre."""
    x0 = np.floor(cx).astype(np.int64) - side // 2
    y0 = np.floor(cy).astype(np.int64) - side // 2
    offsets = np.arange(side)
    xs = x0[:, None] + offsets  # (M, side)
    ys = y0[:, None] + offsets
    return xs, ys


def _signed_distance(shape_ids, dx, dy, r):
    """Signed distance (pixels, > 0 inside) of each object's shape.

    Args:
        shape_ids: (M,) ids into `shapes.SHAPES`.
        dx, dy: (M, 1, W) and (M, W, 1) offsets from the centres.
        r: (M, 1, 1) radii in pixels.
    """
    ax, ay = np.abs(dx), np.abs(dy)
    side = dx.shape[-1]
    out = np.empty((len(shape_ids), side, side), np.float32)
    for shape in range(5):
        sel = shape_ids == shape
        if not sel.any():
            continue
        sx, sy, sr = ax[sel], ay[sel], r[sel]
        if shape == 0:  # circle
            d = sr - np.sqrt(sx * sx + sy * sy)
        elif shape == 1:  # square
            d = 0.85 * sr - np.maximum(sx, sy)
        elif shape == 2:  # triangle, pointing up, bounding box centred
            big_r = 1.2 * sr
            ty = dy[sel] - 0.25 * big_r
            d = 0.5 * big_r - np.maximum(ty, 0.866 * sx - 0.5 * ty)
        elif shape == 3:  # diamond
            d = (1.2 * sr - (sx + sy)) * _SQRT_HALF
        else:  # cross
            w = 0.35 * sr
            d = np.maximum(np.minimum(sr - sx, w - sy), np.minimum(w - sx, sr - sy))
        out[sel] = d
    return out


def _segment_distance(dx, dy, ex, ey):
    """Distance from points (dx, dy), relative to a segment's start, to the
    segment ending at (ex, ey)."""
    length2 = np.maximum(ex * ex + ey * ey, 1e-6)
    t = np.clip((dx * ex + dy * ey) / length2, 0.0, 1.0)
    px, py = dx - t * ex, dy - t * ey
    return np.sqrt(px * px + py * py)


def _composite(image, size, scene_idx, xs, ys, alpha, colour):
    """Paints windows onto flat images, in place.

    Only pixels a window covers (alpha > 0) are touched; objects keep a gap, so
    no two objects cover the same pixel (crossing clutter strokes may: the
    later stroke wins there).

    Args:
        image: (N * S * S, C) float32 images, flattened.
        size: S.
        scene_idx: (M,) image of each window.
        xs, ys: (M, W) pixel coordinates of the windows.
        alpha: (M, W, W) coverage in [0, 1].
        colour: (M, C) paint of each window.
    """
    inside = ((xs >= 0) & (xs < size))[:, None, :] & ((ys >= 0) & (ys < size))[:, :, None]
    hit = inside & (alpha > 0)
    owner, row, col = np.nonzero(hit)
    flat = scene_idx[owner] * size * size + ys[owner, row] * size + xs[owner, col]
    a = alpha[hit][:, None]
    image[flat] = image[flat] * (1.0 - a) + colour[owner] * a


def render_scenes(scenes, image_size):
    """Renders a list of `shapes.Scene` as uint8 RGB images (N, S, S, 3)."""
    n, s = len(scenes), image_size
    if n == 0:
        return np.zeros((0, s, s, 3), np.uint8)
    # Background and clutter are grey: work on one channel until the objects.
    grid = (np.arange(s, dtype=np.float32) + 0.5) / s - 0.5
    params = np.array([sc.background for sc in scenes], np.float32)
    grey = (params[:, 0, None, None] + params[:, 1, None, None] * grid[None, None, :]
            + params[:, 2, None, None] * grid[None, :, None]).reshape(-1, 1)

    strokes = [(i, *c) for i, sc in enumerate(scenes) for c in sc.clutter]
    if strokes:
        st = np.array(strokes, np.float64)
        x0, y0, x1, y1 = (st[:, k] * s for k in range(1, 5))
        side = int(np.ceil(0.25 * s)) + 4
        # Centred on the stroke's midpoint, the window covers all of it.
        xs, ys = _windows((x0 + x1) / 2, (y0 + y1) / 2, side)
        dx = (xs[:, None, :] + 0.5 - x0[:, None, None]).astype(np.float32)
        dy = (ys[:, :, None] + 0.5 - y0[:, None, None]).astype(np.float32)
        ex = (x1 - x0)[:, None, None].astype(np.float32)
        ey = (y1 - y0)[:, None, None].astype(np.float32)
        half_width = max(0.5, s / 128)
        alpha = 0.8 * np.clip(half_width + 0.5 - _segment_distance(dx, dy, ex, ey), 0.0, 1.0)
        _composite(grey, s, st[:, 0].astype(np.int64), xs, ys, alpha,
                   st[:, 5:6].astype(np.float32))

    image = np.repeat(grey, 3, axis=1)
    objs = [(i, o.shape, o.colour, o.size, o.x, o.y, *sc.colour_jitter[j])
            for i, sc in enumerate(scenes) for j, o in enumerate(sc.objects)]
    ob = np.array(objs, np.float64)
    colours = (COLOUR_RGB[ob[:, 2].astype(np.int64)] + ob[:, 6:9]).astype(np.float32)
    radius = np.asarray(RADIUS, np.float32)[ob[:, 3].astype(np.int64)] * s
    cx, cy = ob[:, 4] * s, ob[:, 5] * s
    side = 2 * int(np.ceil(1.45 * RADIUS[1] * s)) + 4
    xs, ys = _windows(cx, cy, side)
    dx = (xs[:, None, :] + 0.5 - cx[:, None, None]).astype(np.float32)
    dy = (ys[:, :, None] + 0.5 - cy[:, None, None]).astype(np.float32)
    sd = _signed_distance(ob[:, 1].astype(np.int64), dx, dy, radius[:, None, None])
    alpha = np.clip(sd + 0.5, 0.0, 1.0)
    _composite(image, s, ob[:, 0].astype(np.int64), xs, ys, alpha, colours)

    image = image.reshape(n, s, s, 3)
    image += _noise_bank(s)[[sc.noise_index for sc in scenes]]
    np.rint(image, out=image)
    np.clip(image, 0, 255, out=image)
    return image.astype(np.uint8)


def encode_png(image, level=1):
    """Encodes an (H, W, 3) uint8 image as PNG bytes.

    Lossless like any PNG, and about 3x faster than `tf.image.encode_png` at
    the low zlib level used here (the noise does not compress much anyway).
    """
    image = np.ascontiguousarray(image, np.uint8)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"Expected an (H, W, 3) uint8 image. Received: shape={image.shape}")
    h, w, _ = image.shape
    rows = np.empty((h, 1 + w * 3), np.uint8)
    rows[:, 0] = 0  # filter type "None" for every row
    rows[:, 1:] = image.reshape(h, w * 3)

    def chunk(kind, data):
        body = kind + data
        return (struct.pack(">I", len(data)) + body
                + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + chunk(b"IEND", b""))
