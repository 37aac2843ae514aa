"""Real tissue for measuring only: scikit-image's immunohistochemistry image, tiled.

`skimage.data.immunohistochemistry()` is a 512×512 RGB photograph of IHC-stained human colon
tissue (haematoxylin and DAB) that ships inside the scikit-image wheel (no download). It is cut
into 96×96 PCam-sized tiles at full resolution (stride 32: 196 tiles) and at half resolution
(256×256, stride 16: 121 tiles, nuclei closer to PCam's scale), each also mirrored: 634 tiles.
Mirroring gives new inputs to a C_N model; 90° rotations would not (the int8 model is bit-exact
under them), so none are added. No labels: the tiles measure int8-vs-float agreement only.

Used only by the benchmarks, never by any range rule or training, so nothing is tuned on them.
"""
from __future__ import annotations

import numpy as np

SOURCE = "scikit-image 0.26 data.immunohistochemistry() (512×512 IHC, human colon), 96×96 tiles"


def _tiles(img: np.ndarray, stride: int, size: int = 96) -> list[np.ndarray]:
    n = (img.shape[0] - size) // stride + 1
    return [img[i * stride:i * stride + size, j * stride:j * stride + size] for i in range(n) for j in range(n)]


def ihc_tiles() -> np.ndarray:
    """(634, 96, 96, 3) uint8 tiles, NHWC like a PCam file."""
    from PIL import Image
    from skimage import data

    img = data.immunohistochemistry()
    half = np.asarray(Image.fromarray(img).resize((256, 256), Image.BILINEAR))
    tiles = np.stack(_tiles(img, 32) + _tiles(half, 16))
    return np.ascontiguousarray(np.concatenate([tiles, tiles[:, :, ::-1]]))
