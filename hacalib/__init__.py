"""hacalib: the library behind the HACA companion notebooks, laid out by stage so the folders read as the flow.

    data/       loaders for the real file formats, the data_root layout, video decoding
    toyworld/   the procedural toy world, written in those formats
    models/     model families behind one interface (`models.family_of`), loading, LoRA, tokenization, packing
    training/   examples, masking, datasets + collate, loss, loop, checkpoints, feature cache, pretrain, finetune
    scoring/    requests, P(yes), log-likelihood, resumable result files, generation, judges, per-benchmark evaluation
    metrics/    per-item metrics, their registry and confidence intervals
    report/     tables, analysis, plots, artifacts on disk, provenance

At the top: `config` (dataclasses, validated), `presets`, `prompts` (versioned chat templates), `errors`, `io`
(atomic writes), `orphans` (launched processes end with their launcher), `experiment` (a preset's runs and
evaluations, cached), `launch` (its runs and evaluations in N processes under `accelerate launch`, each process of an
evaluation running `shard_cli`), `notebook`, `reproduce`, `cli`.

Imports point one way: the CLI and the notebooks call `experiment` and `report`; `experiment` calls `scoring` and
`training`; those call `models`, `toyworld`, `data` and `metrics`; everything may use the leaves `config`,
`prompts`, `errors` and `io`. No module imports one above it (tests/test_layout.py walks the imports).
"""

__version__ = "0.1.0"
