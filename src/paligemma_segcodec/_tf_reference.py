"""The reference's encoder path rebuilt in TensorFlow, for benchmark calibration (extra ``[tf]``).

big_vision encodes masks in TensorFlow: crop ``round(box * size)`` (float32, half to even),
``tf.image.resize(bilinear, antialias=True)`` to 64×64, the encoder's convs as ``tf.nn.conv2d``
'SAME' (oneDNN on x86 CPUs), then the squared-L2 nearest codebook entry. This module rebuilds that
path from a `Checkpoint` so `paligemma_segcodec.bench` can measure, on the machine at hand, the two
baselines the throughput targets are stated against: TensorFlow's encoder at batch N and the
reference's one-mask-per-call path. It is not part of the public API and is not used to encode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from paligemma_segcodec._optional import require
from paligemma_segcodec.checkpoint import Checkpoint

__all__ = ["TfReference"]


class TfReference:
    """TensorFlow encoder of one checkpoint: `encode_batch` (64×64 inputs) and `encode_one` (mask + box)."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        tf = require("tensorflow", "tf")
        self.version: str = tf.__version__

        def conv(c: Any) -> tuple[Any, Any]:  # PyTorch (out, in, kh, kw) -> TF (kh, kw, in, out)
            return tf.constant(c.weight.transpose(2, 3, 1, 0)), tf.constant(c.bias)

        layers = [[conv(c) for c in layer] for layer in checkpoint.encoder]
        codebook = tf.constant(checkpoint.codebook)
        dim = int(checkpoint.codebook.shape[1])

        def encoder(x: Any) -> Any:  # float32 [B, 64, 64, 1] in [0, 1] -> int32 [B, 16]
            x = 2.0 * x - 1.0
            for i, layer in enumerate(layers):
                if len(layer) == 1:  # stride-2 conv + ReLU; the last one is the 1x1 output conv
                    (w, b), last = layer[0], i == len(layers) - 1
                    x = tf.nn.conv2d(x, w, 1 if last else 2, "SAME") + b
                    x = x if last else tf.nn.relu(x)
                else:  # residual block: conv, ReLU, conv, ReLU, conv, + input
                    h = x
                    for j, (w, b) in enumerate(layer):
                        h = tf.nn.conv2d(h, w, 1, "SAME") + b
                        h = tf.nn.relu(h) if j < len(layer) - 1 else h
                    x = x + h
            z = tf.reshape(x, (-1, dim))
            dist = (
                tf.reduce_sum(z * z, axis=1, keepdims=True)
                - 2.0 * tf.matmul(z, codebook, transpose_b=True)
                + tf.reduce_sum(codebook * codebook, axis=1)
            )
            return tf.reshape(tf.argmin(dist, axis=1, output_type=tf.int32), (tf.shape(x)[0], -1))

        def encode_one(mask: Any, box: Any) -> tuple[Any, Any]:
            h, w = tf.shape(mask)[0], tf.shape(mask)[1]
            px = tf.cast(tf.round(box * tf.cast(tf.stack([h, w, h, w]), tf.float32)), tf.int32)
            crop = tf.cast(mask[px[0] : px[2], px[1] : px[3]], tf.float32)
            x = tf.image.resize(crop[None, :, :, None], (64, 64), method="bilinear", antialias=True)
            loc = tf.cast(tf.clip_by_value(tf.round(box * 1023.0), 0.0, 1023.0), tf.int32)
            return loc, encoder(x)[0]

        self._encode_batch = tf.function(encoder, input_signature=[tf.TensorSpec([None, 64, 64, 1], tf.float32)])
        self._encode_one = tf.function(
            encode_one, input_signature=[tf.TensorSpec([None, None], tf.bool), tf.TensorSpec([4], tf.float32)]
        )

    def encode_batch(self, masks64: npt.NDArray[np.float32]) -> npt.NDArray[np.int32]:
        """float32 ``[B, 64, 64]`` in [0, 1] → int32 ``[B, 16]`` codebook indices."""
        return np.asarray(self._encode_batch(np.asarray(masks64, np.float32)[..., None]))

    def encode_one(self, mask: npt.NDArray[np.bool_], box: Sequence[float]) -> tuple[list[int], list[int]]:
        """One bool ``(H, W)`` mask and its normalized box → (4 loc indices, 16 seg indices)."""
        loc, seg = self._encode_one(mask, np.asarray(box, np.float32))
        return [int(v) for v in loc.numpy()], [int(v) for v in seg.numpy()]
