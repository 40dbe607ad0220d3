"""Convolutional layers as dense layers on patches: the geometry, im2col, col2im and pooling.

A conv layer is the dense layer of `nets.network` applied to every patch of its input image:
each output position reads one patch vector p (k·k·C entries), and

    x̃ = R (p − μ_p),   h = W x̃ + b,   y = f(h),   then pooling over the output image

with W (C_out, k·k·C) the unrolled kernel, R (k·k·C, k·k·C) the patch decorrelation and μ_p the
per-channel running mean μ (C,) repeated at each kernel offset. So every product, rule and device
of the dense engine runs unchanged on the rows of a patch matrix (B·P, k·k·C), P output positions
per sample: a crossbar reads its unrolled kernel once per output position, a digital chip
computes a shared-weight convolution with the same fixed point.

Layout: images are (B, H, W, C), channels last, so a patch matrix and a layer's output rows
(B·P, C_out) are views of each other's images. A patch vector is ordered (ky, kx, c). Datasets
store an image as C·H·W values in (c, y, x) order (the torch and CIFAR order); `to_image` turns
such rows into this layout. Padding adds zeros to the raw input, before centring, so a padded
entry of a centred patch is −μ_c: then a decorrelated conv folds into one zero-padded conv with
a per-channel bias (`nets.fold`). (The reference code centres first and pads the centred input
with zeros; the two differ only at the border.)

Pooling (after the nonlinearity, as torch's MaxPool2d/AvgPool2d with stride = size): "max"
passes each window's largest value and routes the gradient to it (the first of equal values);
"avg" passes the window mean and spreads the gradient evenly.

Shapes: `patches` (B, H, W, C) → (B·P, k·k·C); `patches_back` the transpose; `pool`
(B, H', W', C_out) → (B, H'', W'', C_out), and back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodecorr import kernels

POOLS = ("max", "avg")


@dataclass(frozen=True)
class ConvGeometry:
    """One conv layer's shapes: input image (height, width, channels), a square kernel, stride,
    zero padding, output channels, and an optional pooling of `pool_size` after it."""

    in_height: int
    in_width: int
    in_channels: int
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    pool: str | None = None
    pool_size: int = 2

    @property
    def out_height(self) -> int:
        return (self.in_height + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.in_width + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def positions(self) -> int:
        """Output positions per sample (P): the patch rows each sample contributes."""
        return self.out_height * self.out_width

    @property
    def patch_size(self) -> int:
        return self.kernel * self.kernel * self.in_channels

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """(H', W', C_out) before pooling."""
        return self.out_height, self.out_width, self.out_channels

    @property
    def pooled_shape(self) -> tuple[int, int, int]:
        """(H'', W'', C_out): what the next layer receives."""
        if self.pool is None:
            return self.output_shape
        s = self.pool_size
        return self.out_height // s, self.out_width // s, self.out_channels

    def describe(self) -> dict:
        return {"in": [self.in_height, self.in_width, self.in_channels], "out_channels": self.out_channels,
                "kernel": self.kernel, "stride": self.stride, "padding": self.padding,
                "pool": self.pool, "pool_size": self.pool_size if self.pool else None,
                "positions": self.positions, "out": list(self.pooled_shape)}

    # ---------------------------------------------------------------- patches
    def patches(self, image: np.ndarray) -> np.ndarray:
        """im2col: (B, H, W, C) → (B·P, k·k·C), rows ordered (sample, y, x), entries (ky, kx, c)."""
        return kernels.im2col(image, self.kernel, self.stride, self.padding, self.out_height, self.out_width)

    def patches_back(self, rows: np.ndarray, batch: int) -> np.ndarray:
        """col2im, the transpose of `patches`: each patch row's entries summed back onto the
        image positions they were read from. (B·P, k·k·C) → (B, H, W, C)."""
        return kernels.col2im(rows, batch, (self.in_height, self.in_width, self.in_channels), self.kernel,
                              self.stride, self.padding, self.out_height, self.out_width)

    def patch_mean(self, mean: np.ndarray) -> np.ndarray:
        """μ_p: the per-channel mean (C,) at every kernel offset, (k·k·C,)."""
        return np.tile(mean, self.kernel * self.kernel)

    # ---------------------------------------------------------------- pooling
    def pool_forward(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(B, H', W', C) → (pooled, what the backward pass needs: for max, the offset in its
        window of each maximum, the first of equal values)."""
        if self.pool is None:
            return y, None
        if self.pool == "avg":
            return kernels.avg_pool(y, self.pool_size), None
        return kernels.max_pool(y, self.pool_size)

    def pool_backward(self, g: np.ndarray, index: np.ndarray | None) -> np.ndarray:
        """The gradient on the pooled image (B, H'', W'', C) → on the conv output (B, H', W', C)."""
        if self.pool is None:
            return g
        return kernels.pool_back(g, index, self.output_shape, self.pool_size)


def to_image(x: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Dataset rows (B, C·H·W) in (c, y, x) order → images (B, H, W, C), contiguous."""
    C, H, W = shape
    return np.ascontiguousarray(x.reshape(len(x), C, H, W).transpose(0, 2, 3, 1))


def image_order(shape: tuple[int, int, int]) -> np.ndarray:
    """For each (y, x, c) feature of a flattened channels-last image, its index in the dataset's
    (c, y, x) order: `x_hwc = x_chw[:, image_order(shape)]`."""
    C, H, W = shape
    return np.arange(C * H * W).reshape(C, H, W).transpose(1, 2, 0).ravel()
