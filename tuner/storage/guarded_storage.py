"""A storage that delegates every call to the database's storage, each retried through outages.

It wraps, never changes, the storage it is given: the study, its trials and
Optuna's own heartbeat thread all hold this object, so all of them go
through the retries (tuner.storage.outages). An RDB storage is first put
behind Optuna's cache, as `optuna.create_study` would do with it (it does
not with this wrapper). A heartbeat never raises StorageOutage (its thread
would die with a traceback): the trial's own thread reports the outage.
Optuna asks a heartbeat storage for stale trials by a private method's
name, `_get_stale_trial_ids`, which this class therefore defines.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from optuna.storages import BaseStorage

from tuner.storage.optuna_compat import BaseHeartbeat

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import StudyDirection
    from optuna.study._frozen import FrozenStudy
    from optuna.trial import FrozenTrial, TrialState

    from tuner.storage.outages import Outages

T = TypeVar("T")


class GuardedStorage(BaseStorage, BaseHeartbeat):
    """`inner`'s every call, retried by `outages` (see the module's docstring)."""

    def __init__(self, inner: BaseStorage, outages: Outages):
        self.inner, self.outages = inner, outages
        self._beating: Any = inner  # its heartbeat methods, where it has them (BaseHeartbeat)

    def _retried(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self.outages.retrying(method, *args, **kwargs)

    # -- studies --------------------------------------------------------------------------------

    def create_new_study(self, directions: Sequence[StudyDirection], study_name: str | None = None) -> int:
        return self._retried(self.inner.create_new_study, directions, study_name)

    def delete_study(self, study_id: int) -> None:
        self._retried(self.inner.delete_study, study_id)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self._retried(self.inner.set_study_user_attr, study_id, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self._retried(self.inner.set_study_system_attr, study_id, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        return self._retried(self.inner.get_study_id_from_name, study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        return self._retried(self.inner.get_study_name_from_id, study_id)

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        return self._retried(self.inner.get_study_directions, study_id)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self._retried(self.inner.get_study_user_attrs, study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return self._retried(self.inner.get_study_system_attrs, study_id)

    def get_all_studies(self) -> list[FrozenStudy]:
        return self._retried(self.inner.get_all_studies)

    # -- trials ---------------------------------------------------------------------------------

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        return self._retried(self.inner.create_new_trial, study_id, template_trial)

    def set_trial_param(
        self, trial_id: int, param_name: str, param_value_internal: float, distribution: BaseDistribution
    ) -> None:
        self._retried(self.inner.set_trial_param, trial_id, param_name, param_value_internal, distribution)

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        return self._retried(self.inner.get_trial_id_from_study_id_trial_number, study_id, trial_number)

    def get_trial_number_from_id(self, trial_id: int) -> int:
        return self._retried(self.inner.get_trial_number_from_id, trial_id)

    def get_trial_param(self, trial_id: int, param_name: str) -> float:
        return self._retried(self.inner.get_trial_param, trial_id, param_name)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        return self._retried(self.inner.set_trial_state_values, trial_id, state, values)

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        self._retried(self.inner.set_trial_intermediate_value, trial_id, step, intermediate_value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._retried(self.inner.set_trial_user_attr, trial_id, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._retried(self.inner.set_trial_system_attr, trial_id, key, value)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return self._retried(self.inner.get_trial, trial_id)

    def get_all_trials(
        self, study_id: int, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        return self._retried(self.inner.get_all_trials, study_id, deepcopy, states)

    def get_n_trials(self, study_id: int, state: tuple[TrialState, ...] | TrialState | None = None) -> int:
        return self._retried(self.inner.get_n_trials, study_id, state)

    def get_best_trial(self, study_id: int) -> FrozenTrial:
        return self._retried(self.inner.get_best_trial, study_id)

    def get_trial_params(self, trial_id: int) -> dict[str, Any]:
        return self._retried(self.inner.get_trial_params, trial_id)

    def get_trial_user_attrs(self, trial_id: int) -> dict[str, Any]:
        return self._retried(self.inner.get_trial_user_attrs, trial_id)

    def get_trial_system_attrs(self, trial_id: int) -> dict[str, Any]:
        return self._retried(self.inner.get_trial_system_attrs, trial_id)

    def check_trial_is_updatable(self, trial_id: int, trial_state: TrialState) -> None:
        self.inner.check_trial_is_updatable(trial_id, trial_state)  # no database: a check of a state

    def remove_session(self) -> None:
        self.inner.remove_session()

    # -- heartbeats -----------------------------------------------------------------------------

    def record_heartbeat(self, trial_id: int) -> None:
        from tuner.storage.outages import StorageOutage

        try:
            self._retried(self._beating.record_heartbeat, trial_id)
        except StorageOutage:
            return

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return self._retried(self._beating._get_stale_trial_ids, study_id)

    def get_heartbeat_interval(self) -> int | None:
        interval = getattr(self.inner, "get_heartbeat_interval", lambda: None)()
        return None if interval is None else int(interval)

    def get_heartbeat_stale_trial_callback(self) -> Callable[[Any, FrozenTrial], None] | None:
        return getattr(self.inner, "get_heartbeat_stale_trial_callback", lambda: None)()
