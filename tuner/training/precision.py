"""The study's `precision` as Keras' dtype policy: float32, or bfloat16 compute with float32 weights.

"auto" means mixed_bfloat16 where bfloat16 is fast (tuner.training.device)
and float32 elsewhere: on a CPU bfloat16 is emulated and only slower. Under
mixed_bfloat16 the weights stay float32 and the layers compute in bfloat16;
the output layer is built in float32 (tuner.training.models) so that the
softmax and the loss keep float32's range. bfloat16 has float32's exponent,
so no loss scaling is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tuner.core.errors import TunerError
from tuner.core.settings import PRECISIONS
from tuner.training import device

FLOAT32, MIXED_BFLOAT16 = "float32", "mixed_bfloat16"


def resolve_precision(setting: str) -> str:
    """The dtype policy for `setting`: "auto" becomes mixed_bfloat16 on a GPU that is fast at it, else float32."""
    if setting not in PRECISIONS:
        raise TunerError(f"unknown precision {setting!r}; choose one of {', '.join(PRECISIONS)}")
    if setting != "auto":
        return setting
    return MIXED_BFLOAT16 if device.bfloat16_is_fast() else FLOAT32


@contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Keras' global dtype policy set to `name` while models are built (layers keep it), restored after."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
