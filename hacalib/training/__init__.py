"""Training: from VideoCon triplets to a trained model.

Read in this order: `examples` (the three objectives' examples and their token encoding, labels set here) ->
`masking` (content-word masking) -> `collate` + `datasets` (torch datasets, one padded row per example or one
packed sequence per video; the seeded batch order) -> `loss` -> `loop` (`train`, one accelerate loop) with
`checkpoints` and `metrics_log` -> `feature_cache` (the frozen vision side once per video) -> `runs` (a finished
run on disk) -> `pretrain` (the toy base model) and `finetune` (LoRA on one objective); `cli` is the fine-tuning
command line (`python -m hacalib.training.cli`).

May import: `hacalib.config`, `hacalib.prompts`, `hacalib.errors`, `hacalib.io`, `hacalib.data`, `hacalib.toyworld`,
`hacalib.models`. Never scoring, report or the top-level orchestration.
"""
