"""The search strategies by what a run asks for, and by what searched a stored study: the seam's one switch.

A time budget (`--budget`) gets tuner.budget's strategy, anything else the
trial count (tuner.count); each is imported only when chosen, so a
trial-count run never loads the budget's modules.
"""

from __future__ import annotations

import optuna

from tuner.core.settings import StudyConfig
from tuner.core.space import SearchSpace
from tuner.data.dataset import DataSet
from tuner.search.strategy import SearchStrategy, searched_by
from tuner.search.study import prepare


def choose_strategy(
    config: StudyConfig,
    *,
    started: float,
    verbose: int = 0,
    workers: int = 1,
    shared: bool = False,
    dataset: DataSet | None = None,
    space: SearchSpace | None = None,
) -> SearchStrategy:
    """The strategy `config` asks for, with the data and space it judges on (loaded and checked here).

    `started`: the command's start (a budget counts from it); `workers`: the
    processes that will search; `shared`: this process shares the study's
    trial count with other workers; `dataset`, `space`: given instead of
    loaded by the config's names (the Python API).
    """
    if config.budget is not None:
        from tuner.budget.strategy import BudgetStrategy, check_config

        check_config(config)
        prepared = prepare(config, verbose, recipe_fixed=True, dataset=dataset, space=space)
        return BudgetStrategy(prepared, started=started, workers=workers)
    from tuner.count.strategy import CountStrategy

    prepared = prepare(config, verbose, dataset=dataset, space=space)
    return CountStrategy(prepared, shared=shared, export_dataset=dataset)


def summary_section(study: optuna.Study) -> list[str]:
    """The section of the summary that the strategy which searched `study` writes (none for a trial count)."""
    if searched_by(study) == "time budget":
        from tuner.budget.summary import budget_section

        return budget_section(study)
    return []
