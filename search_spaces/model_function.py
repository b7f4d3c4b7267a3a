"""A search space from a model function of the user's own: define-by-run, as Optuna users write it.

`build(trial)` (or `build(trial, input_shape, num_classes)`) draws its
parameters through the trial's `suggest_*` methods and returns a Keras
model. The space stores the model's Keras JSON in the trial's spec, so
the harness, the budget's rungs and export rebuild it anywhere with fresh
weights (tuner.training.models). The training recipe follows the model:
the optimiser and learning rate it was compiled with (Adam at 1e-3 when it
was not compiled), the batch size the function drew as `batch_size` (32
when it drew none); the loss is always sparse categorical cross-entropy,
so the last layer gives class probabilities. The space calls methods of
the model it is handed; it imports neither Keras nor Optuna.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tuner.core.errors import TunerError
from tuner.core.space import ParameterSource
from tuner.core.spec import OPTIMIZERS, ModelSpec, TrainSpec, TrialSpec
from tuner.core.traits import DataTraits

DEFAULT_BATCH_SIZE = 32
FIX = "see docs/python.md, 'Your own model'"


def _takes_data_shape(build: Callable[..., Any]) -> bool:
    """Whether `build` takes (trial, input_shape, num_classes) rather than (trial) alone."""
    try:
        parameters = inspect.signature(build).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 3 or any(p.kind == p.VAR_POSITIONAL for p in parameters)


def multiply_adds(model: Any) -> int:
    """Multiply-adds per image of the layers with a kernel (convolutions, dense): kernel size times output positions."""
    total = 0
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        try:
            positions = math.prod(int(d) for d in layer.output.shape[1:-1])
        except (AttributeError, ValueError, TypeError):  # a layer without a known output shape: count it once
            positions = 1
        total += positions * math.prod(int(d) for d in kernel.shape)
    return total


def _train_spec(model: Any, trial: ParameterSource, max_epochs: int, traits: DataTraits) -> TrainSpec:
    """The recipe the model asks for: its compiled optimiser and learning rate, the drawn batch size."""
    params: Mapping[str, Any] = getattr(trial, "params", {})
    optimizer = getattr(model, "optimizer", None)
    name, learning_rate, momentum = ("adam", 1e-3, 0.0) if optimizer is None else _compiled_with(optimizer)
    return TrainSpec(
        optimizer=name,
        learning_rate=learning_rate,
        momentum=momentum,
        lr_schedule="cosine" if traits.recipe_fixed else "none",  # a budget's rungs and final training share one
        batch_size=int(params.get("batch_size", DEFAULT_BATCH_SIZE)),
        epochs=max_epochs,
    )


def _compiled_with(optimizer: Any) -> tuple[str, float, float]:
    """The name, learning rate and momentum of the optimiser the model was compiled with."""
    name = type(optimizer).__name__.lower()
    if name not in OPTIMIZERS:
        raise TunerError(
            f"your model is compiled with {type(optimizer).__name__}; compile it with one of {', '.join(OPTIMIZERS)} ({FIX})"
        )
    configured = optimizer.get_config()
    if not isinstance(configured.get("learning_rate"), (int, float)):
        raise TunerError(
            f"your model's learning rate is a schedule; compile it with a number, the tuner schedules it ({FIX})"
        )
    learning_rate = float(f"{configured['learning_rate']:.7g}")  # as given: the optimiser keeps it in float32
    return name, learning_rate, float(configured.get("momentum", 0.0) or 0.0)


def _check_fits(model: Any, input_shape: tuple[int, int, int], num_classes: int) -> None:
    """One TunerError unless the model takes these images and gives a probability for each class."""
    if not hasattr(model, "to_json") or not hasattr(model, "layers"):
        raise TunerError(f"your model function returned a {type(model).__name__}, not a Keras model ({FIX})")
    if not model.built:
        model.build((None, *input_shape))
    takes = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else tuple(input_shape)
    fits = len(takes) == len(input_shape) and all(want in (None, have) for want, have in zip(takes, input_shape))
    if not fits:
        raise TunerError(
            f"your model takes images of shape {takes}, the data's are {input_shape}; "
            f"start it with keras.Input(shape={input_shape})"
        )
    probabilities = np.asarray(model(np.zeros((1, *input_shape), "float32")), dtype="float64")
    if probabilities.shape != (1, num_classes):
        raise TunerError(
            f"your model gives {probabilities.shape[1:]} outputs per image, the data has {num_classes} "
            f"classes; end it with Dense({num_classes}, activation='softmax')"
        )
    if abs(probabilities.sum() - 1.0) > 1e-3 or probabilities.min() < 0:
        raise TunerError(
            "your model's outputs are not class probabilities; end it with activation='softmax' "
            "(the loss is sparse categorical cross-entropy)"
        )


@dataclass(frozen=True)
class ModelFunctionSpace:
    """A SearchSpace whose draws are the models `build` returns; no baselines, no portfolio."""

    build: Callable[..., Any]
    name: str = ""
    baselines: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    trait_defaults: Mapping[str, Any] = field(default_factory=dict)
    portfolio: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    typical_draws: int = 20  # a budget's typical speed (tuner.search.typical_speed) builds this many of its models

    def __post_init__(self) -> None:
        if not callable(self.build):
            raise TunerError(
                f"model must be a function of a trial that returns a Keras model, got {type(self.build).__name__}"
            )
        if not self.name:
            object.__setattr__(self, "name", f"model:{getattr(self.build, '__name__', 'function')}")

    def suggest(
        self,
        trial: ParameterSource,
        input_shape: tuple[int, int, int],
        num_classes: int,
        max_epochs: int,
        traits: DataTraits = DataTraits(),
    ) -> TrialSpec:
        """The model `build` returns for this trial, as a spec: its Keras JSON and its recipe."""
        model = self.build(trial, input_shape, num_classes) if _takes_data_shape(self.build) else self.build(trial)
        _check_fits(model, input_shape, num_classes)
        spec = ModelSpec(
            input_shape=input_shape,
            num_classes=num_classes,
            blocks=(),
            keras_config=model.to_json(),
            keras_multiply_adds=multiply_adds(model),
        )
        return TrialSpec(model=spec, train=_train_spec(model, trial, max_epochs, traits))
