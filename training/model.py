"""The emotion CNN: a small 2-D convolutional network over the log-mel window, softmax output, for a Pi.

Four conv blocks (conv without bias -> BatchNorm -> ReLU, 2x2 max-pooling after the first three); the first
conv is 5x5 with stride 2, so the full-resolution spectrogram is touched once (training on 2 CPU cores costs
about a third of a stride-1 first block), and a depthwise-separable block adds capacity at the coarsest
resolution. Then global average pooling, dropout and a dense layer with the softmax inside the model, so the
exported int8 .tflite outputs probabilities. About 180k parameters: about 200 KB as full-integer int8 TFLite.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelOptions:
    filters: tuple[int, ...] = (24, 48, 96, 128)
    first_kernel: int = 5
    first_stride: int = 2
    bn_momentum: float = 0.9  # the default 0.99 lags behind with ~30 steps per epoch: noisy validation
    dropout: float = 0.2
    l2: float = 5e-5
    extra_separable: int = 1  # depthwise-separable 3x3 conv blocks after the last one (cheap capacity at 18x8)


def set_seeds(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and TensorFlow (Keras); optionally force deterministic TF ops (slower on CPU)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if not deterministic:
        return
    try:
        tf.config.experimental.enable_op_determinism()
    except (AttributeError, RuntimeError):
        pass


def build_model(input_shape: tuple[int, int], n_classes: int, opts: ModelOptions | None = None,
                seed: int = 0, softmax: bool = True):
    """Keras model: (frames, mels, 1) float features in [0, 1] -> (n_classes,) probabilities (logits if not
    ``softmax``)."""
    import keras
    from keras import layers

    opts = opts or ModelOptions()
    reg = keras.regularizers.l2(opts.l2) if opts.l2 else None
    inp = keras.Input(shape=(*input_shape, 1), name="features")
    x = inp
    for i, f in enumerate(opts.filters):
        first = i == 0
        x = layers.Conv2D(f, opts.first_kernel if first else 3, strides=opts.first_stride if first else 1,
                          padding="same", use_bias=False, kernel_initializer=keras.initializers.HeNormal(seed=seed + i),
                          kernel_regularizer=reg,
                          name=f"conv{i + 1}")(x)
        x = layers.BatchNormalization(momentum=opts.bn_momentum, name=f"bn{i + 1}")(x)
        x = layers.ReLU(name=f"relu{i + 1}")(x)
        if i < len(opts.filters) - 1:
            x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    for j in range(opts.extra_separable):
        x = layers.SeparableConv2D(opts.filters[-1], 3, padding="same", use_bias=False, pointwise_regularizer=reg,
                                   depthwise_initializer=keras.initializers.HeNormal(seed=seed + 100 + j),
                                   pointwise_initializer=keras.initializers.HeNormal(seed=seed + 200 + j),
                                   name=f"sep{j + 1}")(x)
        x = layers.BatchNormalization(momentum=opts.bn_momentum, name=f"sep_bn{j + 1}")(x)
        x = layers.ReLU(name=f"sep_relu{j + 1}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(opts.dropout, seed=seed, name="dropout")(x)
    x = layers.Dense(n_classes, kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                     kernel_regularizer=reg, name="logits")(x)
    if not softmax:
        return keras.Model(inp, x, name="emotion_cnn_logits")
    out = layers.Softmax(name="probabilities")(x)
    return keras.Model(inp, out, name="emotion_cnn")
