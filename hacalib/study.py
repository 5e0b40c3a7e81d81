"""A study: the same preset and settings on several model families, one `Experiment` each.

    study = Study.of(preset="toy", cache_dir="cache")         # the preset's families: Video-LLaVA and VideoChat2
    items = study.collect("velociti")                          # {(family, row, base, seed): per-item frame}

The paper reports each table for two Video-LLMs; a notebook builds one study from its parameters and hands its
`collect` results to `hacalib.report.tables`, whose functions work per family when run keys start with one
(the family's rows are never pooled with, or compared against, another family's). Everything else (training,
caching, evaluation) is the family's own `Experiment`, reached as `study[family]` or by iterating `items()`.

May import: `hacalib.experiment`, `hacalib.presets`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import pandas as pd

from .experiment import Experiment
from .presets import PRESET_FAMILIES


def resolve_families(preset: str, families: Sequence[str] | None) -> tuple[str, ...]:
    """The families a study runs: `families` (checked against the preset's) or, None, all the preset's."""
    if preset not in PRESET_FAMILIES:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESET_FAMILIES)}")
    known = PRESET_FAMILIES[preset]
    if families is None:
        return known
    families = tuple(families)
    unknown = [f for f in families if f not in known]
    if not families or unknown or len(set(families)) != len(families):
        raise ValueError(f"families must be distinct names among the preset {preset!r}'s ({', '.join(known)}), "
                         f"got {list(families)}")
    return families


@dataclass
class Study:
    experiments: dict[str, Experiment]  # family -> its experiment, in table order

    @classmethod
    def of(cls, *, preset: str = "toy", families: Sequence[str] | None = None, **settings: Any) -> "Study":
        """One `Experiment(preset=preset, family=f, **settings)` per family (None: the preset's)."""
        return cls({f: Experiment(preset=preset, family=f, **settings) for f in resolve_families(preset, families)})

    def __getitem__(self, family: str) -> Experiment:
        return self.experiments[family]

    def items(self) -> Iterator[tuple[str, Experiment]]:
        return iter(self.experiments.items())

    @property
    def families(self) -> list[str]:
        return list(self.experiments)

    @property
    def first(self) -> Experiment:
        """The first family's experiment: data root, seeds and limits, which every family shares."""
        return next(iter(self.experiments.values()))

    @property
    def base_seeds(self) -> tuple:
        return self.first.base_seeds

    @property
    def seeds(self) -> tuple:
        return self.first.seeds

    @property
    def root(self):
        return self.first.root

    def collect(self, benchmark: str, runs: list[tuple[str, int, int]] | None = None,
                log: Callable[[str], None] | None = None) -> dict[tuple[str, str, int, int], pd.DataFrame]:
        """Per-item frames of every run of every family, keyed (family, row, base, seed); `runs` as
        `Experiment.collect` takes them (the same runs for each family)."""
        return {(family, *key): frame for family, exp in self.items()
                for key, frame in exp.collect(benchmark, runs, log).items()}

    def base_runs(self) -> list[tuple[str, int, int]]:
        """The pretrained row's runs: one per base model."""
        return self.first.runs(("pretrained",))

    def perception(self, log: Callable[[str], None] | None = None) -> pd.DataFrame:
        """The perception report of every family's base models (`hacalib.report.perception.perception_report`): the
        caption log-likelihood readout of each VideoCon type, VELOCITI test and retrieval matrix, own video against
        another, and whether it passes the gate that decides which claims are read."""
        from .report.perception import READERS, perception_report

        return perception_report({name: self.collect(benchmark, self.base_runs(), log)
                                  for name, (benchmark, _) in READERS.items()})

    def describe(self) -> dict:
        return {family: exp.describe() for family, exp in self.items()}
