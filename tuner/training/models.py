"""ModelSpec -> compiled keras.Model. Only Keras here: no Optuna, no data."""

from __future__ import annotations

import json
import math
from typing import Any

from tuner.core.errors import TunerError
from tuner.core.spec import OPTIMIZERS, ModelSpec, TrainSpec
from tuner.training.augmentation import augmentation_layers
from tuner.training.precision import FLOAT32, dtype_policy

# Batch normalisation's moving statistics follow the batches with this momentum. Keras' 0.99 averages
# over about 100 steps: a cheap rung trains 100-200 steps in all, so its model validated with
# statistics of weights long gone (a start scored 0.65 on a hold-out where its recomputed statistics
# gave 0.95). 0.9 averages over about 10 steps, as PyTorch's default does, and scored within three
# hold-out images of the recomputed statistics on the suite's training splits (benchmarks/journal.md,
# "Mirrors, and batch-norm momentum").
BATCH_NORM_MOMENTUM = 0.9


def build_model(spec: ModelSpec, precision: str = FLOAT32) -> Any:
    """Build (not compile) the classifier that `spec` describes, its layers under dtype policy `precision`.

    The output layer is float32 whatever the policy: softmax probabilities
    and the loss keep float32's precision (tuner.training.precision).
    """
    problems = spec.problems()
    if problems:
        raise TunerError(f"cannot build this architecture: {problems[0]}")
    if spec.keras_config is not None:
        return _rebuild(spec.keras_config)
    with dtype_policy(precision):
        return _build(spec)


def _rebuild(keras_config: str) -> Any:
    """A user's model from its Keras JSON with fresh weights, in Keras' safe mode; its layers keep their own dtypes."""
    import keras

    try:
        return keras.saving.deserialize_keras_object(json.loads(keras_config), safe_mode=True)
    except Exception as error:  # a custom layer Keras does not know, a Lambda refused in safe mode
        said = " ".join(str(error).split())
        raise TunerError(
            f"cannot rebuild your model from its Keras config ({type(error).__name__}: {said}); use Keras' own "
            "layers, or register custom ones with keras.saving.register_keras_serializable"
        ) from None


def _build(spec: ModelSpec) -> Any:
    import keras
    from keras import layers, regularizers

    conv_l2 = regularizers.L2(spec.conv_l2) if spec.conv_l2 > 0 else None
    dense_l2 = regularizers.L2(spec.dense_l2) if spec.dense_l2 > 0 else None
    inputs = keras.Input(shape=spec.input_shape, name="image")
    x = inputs
    for layer in augmentation_layers(spec.augmentation):  # active in training only
        x = layer(x)
    for index, block in enumerate(spec.blocks):
        for conv in range(block.convs):
            x = layers.Conv2D(
                block.filters,
                block.kernel_size,
                padding=spec.padding,
                kernel_initializer=spec.kernel_initializer,
                kernel_regularizer=conv_l2,
                use_bias=not spec.batch_norm,
                name=f"block{index}_conv{conv}",
            )(x)
            if spec.batch_norm:  # seed 002: between the linear layer and its activation
                x = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"block{index}_bn{conv}")(x)
            x = layers.Activation(spec.activation, name=f"block{index}_act{conv}")(x)
        if block.pooling:
            pool = layers.MaxPooling2D if block.pooling == "max" else layers.AveragePooling2D
            x = pool(spec.pool_size, strides=spec.pool_strides, padding=spec.padding, name=f"block{index}_pool")(x)
        if block.dropout > 0:
            x = layers.Dropout(block.dropout, name=f"block{index}_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    for index, units in enumerate(spec.dense_units):
        x = layers.Dense(
            units,
            kernel_initializer=spec.kernel_initializer,
            kernel_regularizer=dense_l2,
            use_bias=not spec.batch_norm,
            name=f"dense{index}",
        )(x)
        if spec.batch_norm:
            x = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"dense{index}_bn")(x)
        x = layers.Activation(spec.activation, name=f"dense{index}_act")(x)
    if spec.head_dropout > 0:
        x = layers.Dropout(spec.head_dropout, name="head_dropout")(x)
    outputs = layers.Dense(spec.num_classes, activation="softmax", dtype=FLOAT32, name="classes")(x)
    return keras.Model(inputs, outputs, name="cnn")


def make_optimizer(train: TrainSpec, steps_per_epoch: int) -> Any:
    """The optimiser with its per-epoch learning-rate schedule baked in.

    "plateau" is not a schedule but a callback (see `schedule_callbacks`).
    """
    import keras

    learning_rate = train.learning_rate
    if train.lr_schedule == "exponential":
        learning_rate = keras.optimizers.schedules.ExponentialDecay(
            train.learning_rate, decay_steps=max(1, steps_per_epoch), decay_rate=train.lr_decay_rate
        )
    elif train.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            train.learning_rate, decay_steps=max(1, steps_per_epoch * train.epochs)
        )
    name = train.optimizer
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=train.momentum)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate)
    if name == "adadelta":
        return keras.optimizers.Adadelta(learning_rate)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    if name == "nadam":
        return keras.optimizers.Nadam(learning_rate)
    raise TunerError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def schedule_callbacks(train: TrainSpec, monitor: str = "val_loss") -> list[Any]:
    """Callbacks that implement the schedule where an optimiser schedule cannot.

    A plateau watches `monitor`: the validation loss in the folds, the
    training loss where there is no validation split (final training).
    """
    import keras

    if train.lr_schedule == "plateau":
        return [
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, factor=train.plateau_factor, patience=train.plateau_patience, verbose=0
            )
        ]
    return []


# Images per compiled call, at least: a call runs several small batches, so Python's per-call round trip
# is paid once for them all. With one small batch per call that round trip leaves a CPU's cores partly idle
# and a small CNN trains markedly slower; larger models, whose steps are mostly arithmetic, neither gain nor
# lose measurably (benchmarks/execution.py; the figures in BENCHMARKS.md). Batches of 256 and more run one
# per call, so a large model's call stays short: callbacks (the fitted cosine's deadline) run between calls.
IMAGES_PER_EXECUTION = 256


def steps_per_execution(batch_size: int) -> int:
    """Batches per compiled call for `batch_size`: enough for IMAGES_PER_EXECUTION images (1 on PyTorch)."""
    import keras

    if keras.backend.backend() == "torch":  # Keras runs one step per call there
        return 1
    return max(1, IMAGES_PER_EXECUTION // batch_size)


def compile_model(model: Any, train: TrainSpec, n_train: int) -> None:
    """Compile with sparse integer labels and accuracy, as the seeds do, several small batches per call."""
    steps_per_epoch = math.ceil(n_train / train.batch_size)
    model.compile(
        optimizer=make_optimizer(train, steps_per_epoch),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution(train.batch_size),
    )


def trainable_parameters(model: Any) -> int:
    """Weights the optimiser updates (frozen pretrained layers excluded)."""
    return int(sum(math.prod(w.shape) for w in model.trainable_weights))
