"""The toy world: procedurally rendered shape videos with captions, in the real benchmark formats.

`build_world(out_dir, size="smoke", seed=0)` writes a whole data root (VideoCon, VELOCITI, SSv2,
MSRVTT-QA, pretraining data); the modules underneath are usable on their own:
`scene` (ground truth), `render` (frames), `grammar` (captions, vocabulary, word classes),
`truth` (symbolic checker), `hallucinate` (VideoCon types, VELOCITI negatives), `questions`, `benchmarks`.

May import: its own package's modules.
"""

from .build import SIZES, build_world, load_scenes
from .grammar import parse, realize, tokenize, vocabulary, word_class

__all__ = ["SIZES", "build_world", "load_scenes", "parse", "realize", "tokenize", "vocabulary", "word_class"]
