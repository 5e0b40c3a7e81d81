"""Loaders for the benchmark file formats (one module per format) and the `data_root` layout.

Every loader validates its input and raises `hacalib.errors.DataError` naming the file and the
row or key of the first problem; records are small frozen dataclasses.

May import: its own package's modules.
"""

from .layout import DataRoot
from .msrvtt_qa import QAItem, load_msrvtt_qa
from .ssv2 import RetrievalMatrix, RetrievalRow, extract_template, load_retrieval_matrix, load_retrieval_scores
from .velociti import TESTS as VELOCITI_TESTS
from .velociti import VelocitiItem, load_velociti, load_velociti_test, velociti_file
from .videocon import (
    MISALIGNMENT_TYPES,
    EntailmentQuery,
    Pair,
    Triplet,
    VideoConRow,
    load_entailment_queries,
    load_videocon,
    to_pairs,
    to_triplets,
)

__all__ = [
    "DataRoot",
    "EntailmentQuery",
    "MISALIGNMENT_TYPES",
    "Pair",
    "QAItem",
    "RetrievalMatrix",
    "RetrievalRow",
    "Triplet",
    "VELOCITI_TESTS",
    "VelocitiItem",
    "VideoConRow",
    "extract_template",
    "load_entailment_queries",
    "load_msrvtt_qa",
    "load_retrieval_matrix",
    "load_retrieval_scores",
    "load_velociti",
    "load_velociti_test",
    "load_videocon",
    "to_pairs",
    "to_triplets",
    "velociti_file",
]
