"""Scoring: running a (trained) model on benchmark items.

Read in this order: `requests` (a (video, caption) request, videos loaded once, grouping by video) -> `pyes`
(P(yes), packed or naive) -> `loglik` (caption log-likelihood) -> `results_file` (resumable P(yes) to a CSV) ->
`generation` (greedy answers grouped by video) -> `answers_file` (resumable answers to a JSON-lines file) ->
`judges` (offline and LLM QA judges) -> `derived` (judgements recomputed from the raw text on every read) -> `shards` (one evaluation shared by several processes, equal to one
process's) -> `evaluate` (one function per benchmark: per-item DataFrames).

May import: `hacalib.prompts`, `hacalib.errors`, `hacalib.io`, `hacalib.data`, `hacalib.models`, `hacalib.metrics`.
Never training or report.
"""
