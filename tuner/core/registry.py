"""Named plug-ins of one kind (data sets, samplers, pruners): one registry per kind, filled where they are built.

A registry maps a name to a factory. Where the settings must know the names
before the factories' module is imported (samplers and pruners: tuner.core
knows no Optuna), the registry is given those declared names; it then refuses
a factory under any other name, and `complete()` names the declared ones that
lack a factory, so the settings and the factories cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from tuner.core.errors import TunerError

T = TypeVar("T")


class Registry(Generic[T]):
    """name -> factory for one kind of plug-in; an unknown name is one TunerError listing the choices."""

    def __init__(self, kind: str, declared: tuple[str, ...] | None = None, hint: str = ""):
        self.kind, self.declared, self.hint = kind, declared, hint
        self._factories: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """A decorator that files its factory under `name` (declared names only, each once)."""

        def add(factory: T) -> T:
            if self.declared is not None and name not in self.declared:
                raise ValueError(f"{self.kind} {name!r} is not declared; add it to {self.declared} in tuner.core.settings")
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return add

    def complete(self) -> Registry[T]:
        """The registry itself, once every declared name has a factory (else ValueError naming those without)."""
        missing = [name for name in self.declared or () if name not in self._factories]
        if missing:
            raise ValueError(f"{self.kind} {', '.join(missing)} declared but not registered")
        return self

    def names(self) -> tuple[str, ...]:
        """The registered names: in declared order where declared, else in order of registration."""
        return tuple(name for name in self.declared or self._factories if name in self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """The factory called `name`; TunerError naming the choices (and the registry's hint) for any other."""
        if name not in self._factories:
            hint = f" {self.hint}" if self.hint else ""
            raise TunerError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self.names())}{hint}")
        return self._factories[name]
