"""The search-space protocol: what every module in `search_spaces/` implements.

A search space is a pure function from a trial to a `TrialSpec`: it draws
parameters through the trial's `suggest_*` methods and describes the model
and its training. It imports neither Keras nor Optuna, so a seed baseline is
a fixed parameter set, and export can rebuild a model without a study.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tuner.core.spec import TrialSpec
from tuner.core.traits import DataTraits


class ParameterSource(Protocol):
    """What a space may ask of a trial: Optuna's `Trial`, `FixedTrial` and `FrozenTrial` all fit, and NamedParameters."""

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


class NamedParameters:
    """A ParameterSource that answers from a named parameter set (a seed baseline, a portfolio start, a stored trial).

    A categorical value the data does not admit (a start's left-right flip
    where only upside-down flips keep labels) becomes the first choice, which
    a space lists as its plain option ("none"). `params` holds what the space
    drew, so the same configuration can be enqueued. A parameter the space
    draws and the set lacks raises ValueError, as Optuna's FixedTrial does.
    """

    def __init__(self, given: Mapping[str, Any]):
        self.given = dict(given)
        self.params: dict[str, Any] = {}

    def _value(self, name: str) -> Any:
        if name not in self.given:
            raise ValueError(f"the parameter {name!r} is not in the set")
        return self.given[name]

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        self.params[name] = int(self._value(name))
        return int(self.params[name])

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False) -> float:
        self.params[name] = float(self._value(name))
        return float(self.params[name])

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        value = self._value(name)
        self.params[name] = value if value in choices else choices[0]
        return self.params[name]


@runtime_checkable
class SearchSpace(Protocol):
    """A named space of CNNs with hand-made baselines.

    `baselines` maps a name to a parameter set that `suggest` accepts (through
    a fixed trial), so hand-made models can be enqueued as warm starts;
    `trait_defaults` are the values of the trait-opened knobs (augmentation,
    class weights) that a baseline runs with when the data opens them.
    `portfolio` maps a name to a parameter set too: the space's own
    known-good starts (not a seed's), which a budget search judges first,
    like any draw, so that a short budget has strong candidates early.
    """

    @property
    def name(self) -> str: ...

    @property
    def baselines(self) -> Mapping[str, Mapping[str, Any]]: ...

    @property
    def trait_defaults(self) -> Mapping[str, Any]: ...

    @property
    def portfolio(self) -> Mapping[str, Mapping[str, Any]]: ...

    def suggest(
        self,
        trial: ParameterSource,
        input_shape: tuple[int, int, int],
        num_classes: int,
        max_epochs: int,
        traits: DataTraits = DataTraits(),
    ) -> TrialSpec:
        """The trial's spec: draw every parameter from `trial`, describe the model and its training."""
        ...


Draw = Callable[[ParameterSource, tuple[int, int, int], int, int, DataTraits], TrialSpec]


@dataclass(frozen=True)
class Space:
    """The usual implementation of SearchSpace: a space module names its draw function, baselines and trait defaults."""

    name: str
    baselines: Mapping[str, Mapping[str, Any]]
    trait_defaults: Mapping[str, Any]
    draw: Draw  # (trial, input_shape, num_classes, max_epochs, traits) -> TrialSpec
    portfolio: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def suggest(
        self,
        trial: ParameterSource,
        input_shape: tuple[int, int, int],
        num_classes: int,
        max_epochs: int,
        traits: DataTraits = DataTraits(),
    ) -> TrialSpec:
        """The trial's spec, as the space's draw function describes it."""
        return self.draw(trial, input_shape, num_classes, max_epochs, traits)
