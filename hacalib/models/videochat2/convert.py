"""`haca convert-videochat2`: the original VideoChat2 checkpoints -> a folder `load_model` reloads offline.

The original (`models/videochat_mistra/videochat2_it_mistral.py`) builds its model in this order, every load
non-strict: stage 1 (`umt_l16_qformer.pth`: UMT encoder + Q-Former + 32 queries), the base LLM, LoRA wrapped once,
then stage 2 and stage 3 (`videochat2_mistral_7b_stage{2,3}.pth`: only the parameters each stage trained). We
apply the files in the same order, later files overriding earlier ones key by key, and then:

- record where every parameter came from (file and original key; `conversion_report.json` in the output folder);
- fail on any key that maps to nothing (naming file and key), on a parameter no file provides, on a shape
  mismatch, and on all-zero q/v biases of the vision encoder (a silently dropped bias would look like that);
- merge the LoRA adapters into the language model's weights (W + alpha/r * B @ A in float32): the output is a
  plain model, and HACA's own LoRA goes on top of it (docs/videochat2.md, "LoRA of stage 3").

Files are read with `torch.load(weights_only=True)`: tensors and plain containers only, never code.

May import: torch, transformers, accelerate, `hacalib.errors`, `hacalib.io`, `hacalib.prompts`, this package.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ... import prompts
from ...errors import DataError, UsageError
from ...io import atomic_dir, refuse_foreign_folder, sha256_file, write_json
from .configuration import DEFAULT_INSTRUCTION, DEFAULT_INSTRUCTION_IDS, VideoChat2Config, VideoChat2VisionConfig
from .family import VIDEOCHAT2
from .keymap import map_key
from .processing import VideoChat2Processor, check_prompt_tokenization, prepare_tokenizer

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """An original `.pth` file as {key: tensor}: `weights_only=True`, the `model` entry when the file wraps it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "checkpoint file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # an UnpicklingError names the global the file would need
        raise DataError(path, f"cannot be read with torch.load(weights_only=True) ({exc}); it holds more than tensors: "
                              "re-save its state dict alone, e.g. torch.save(ckpt['model'], new_path)") from exc
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):  # as the original reads stage 2 and 3
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a state dict, found a {type(obj).__name__}")
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise DataError(path, f"value is a {type(value).__name__}, not a tensor", key=str(key))
    return obj


@dataclass
class Assembly:
    """Our parameters as the files are applied, with the provenance of each."""

    num_vision_layers: int
    ignore: Sequence[str] = ()
    state: dict[str, torch.Tensor] = field(default_factory=dict)
    sources: dict[str, list[dict]] = field(default_factory=dict)
    queries: dict[str, tuple[torch.Tensor, dict]] = field(default_factory=dict)
    lora: dict[str, dict[str, tuple[torch.Tensor, dict]]] = field(default_factory=dict)
    ignored: list[dict] = field(default_factory=list)

    def put(self, ours: str, tensor: torch.Tensor, origin: dict) -> None:
        self.state[ours] = tensor
        self.sources.setdefault(ours, []).append(origin)

    def apply(self, label: str, path: Path, entries: dict[str, torch.Tensor]) -> None:
        """One stage file's keys, overriding what earlier files set (the original's non-strict loads)."""
        for key, tensor in entries.items():
            origin = {"file": label, "path": str(path), "key": key}
            if any(re.fullmatch(p, key) for p in self.ignore):
                self.ignored.append({**origin, "reason": "--ignore"})
                continue
            m = map_key(key, self.num_vision_layers)
            if m is None:
                raise DataError(path, "maps to no VideoChat2 parameter (a typo, or a model other than "
                                      "VideoChat2-Mistral stage 1/2/3; --ignore REGEX skips keys on purpose)", key=key)
            if m.kind == "ignored":
                self.ignored.append({**origin, "reason": m.reason})
            elif m.kind in ("query", "extra_query"):
                self.queries[m.kind] = (tensor, origin)
            elif m.kind == "lora":
                self.lora.setdefault(m.target, {})[m.lora] = (tensor, origin)
            else:
                self.put(m.target, tensor, origin)

    def finish_queries(self) -> int:
        """Concatenate the 32 queries of stage 1 and the extra ones of stage 2/3 into `connector.query_tokens`."""
        for kind, name in (("query", "query_tokens"), ("extra_query", "extra_query_tokens")):
            if kind not in self.queries:
                raise DataError("<stage files>", "no stage file holds the Q-Former queries", key=name)
        (q, oq), (e, oe) = self.queries["query"], self.queries["extra_query"]
        self.put("connector.query_tokens", torch.cat([q, e], dim=1), oq)
        self.sources["connector.query_tokens"].append(oe)
        return q.shape[1] + e.shape[1]

    def merge_lora(self, alpha: float) -> list[dict]:
        """W + (alpha / r) * B @ A for every adapted weight, in float32, cast back to W's dtype."""
        merged = []
        for target, ab in sorted(self.lora.items()):
            if set(ab) != {"A", "B"}:
                origin = next(iter(ab.values()))[1]
                raise DataError(origin["path"], f"LoRA {next(iter(ab))} without its partner", key=origin["key"])
            (a, oa), (b, ob) = ab["A"], ab["B"]
            if target not in self.state:
                raise DataError(oa["path"], f"LoRA adapts {target}, which the LLM does not have", key=oa["key"])
            w = self.state[target]
            r = a.shape[0]
            if a.shape[1] != w.shape[1] or b.shape != (w.shape[0], r):
                raise DataError(oa["path"], f"LoRA shapes A {tuple(a.shape)}, B {tuple(b.shape)} do not fit "
                                            f"{target} {tuple(w.shape)}", key=oa["key"])
            self.state[target] = (w.float() + (alpha / r) * (b.float() @ a.float())).to(w.dtype)
            self.sources[target].extend([oa, ob])
            merged.append({"target": target, "r": r, "alpha": alpha, "A": oa, "B": ob})
        return merged


def build_config(state: dict[str, torch.Tensor], text_config: Any, *, num_vision_layers: int, vision_heads: int,
                 image_size: int, qformer_heads: int, num_query_tokens: int, instruction: str,
                 instruction_ids: Sequence[int], video_token_id: int) -> VideoChat2Config:
    """The config, widths read from the tensors; heads, depth and frame size from the arguments."""
    from transformers import InstructBlipQFormerConfig

    def need(key: str) -> torch.Tensor:
        if key not in state:
            raise DataError("<stage files>", "no stage file provides it", key=key)
        return state[key]

    patch = need("vision_model.patch_embedding.weight")
    vision = VideoChat2VisionConfig(image_size=image_size, patch_size=patch.shape[-1], hidden_size=patch.shape[0],
                                    intermediate_size=need("vision_model.layers.0.mlp.fc1.weight").shape[0],
                                    num_attention_heads=vision_heads, num_hidden_layers=num_vision_layers)
    q = "connector.qformer."
    layers = 1 + max(int(m.group(1)) for k in state if (m := re.match(re.escape(q) + r"encoder\.layer\.(\d+)\.", k)))
    crossattention = re.compile(re.escape(q) + r"encoder\.layer\.(\d+)\.crossattention")
    cross = sorted({int(m.group(1)) for k in state if (m := crossattention.match(k))})
    freq = cross[1] - cross[0] if len(cross) > 1 else layers
    if cross != list(range(0, layers, freq)):
        raise DataError("<stage files>", f"cross-attention in Q-Former layers {cross}: not every {freq}th of {layers}")
    words = need(q + "embeddings.word_embeddings.weight")
    qformer = InstructBlipQFormerConfig(
        vocab_size=words.shape[0], hidden_size=words.shape[1], num_hidden_layers=layers,
        num_attention_heads=qformer_heads, intermediate_size=need(q + "encoder.layer.0.intermediate.dense.weight").shape[0],
        max_position_embeddings=need(q + "embeddings.position_embeddings.weight").shape[0],
        encoder_hidden_size=need(q + "encoder.layer.0.crossattention.attention.key.weight").shape[1],
        cross_attention_frequency=freq, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    return VideoChat2Config(vision_config=vision, qformer_config=qformer, text_config=text_config,
                            num_query_tokens=num_query_tokens, qformer_instruction=instruction,
                            qformer_instruction_ids=list(instruction_ids), video_token_id=video_token_id)


def instruction_ids(instruction: str, qformer_tokenizer: str | None) -> list[int]:
    """The instruction's ids in bert-base-uncased (+ [DEC]), as the original's Q-Former tokenizer gives them."""
    if qformer_tokenizer:
        from transformers import BertTokenizer

        return BertTokenizer.from_pretrained(qformer_tokenizer, local_files_only=True)(instruction).input_ids
    if instruction != DEFAULT_INSTRUCTION:
        raise UsageError("a custom --instruction needs --qformer-tokenizer (a local bert-base-uncased folder)")
    return list(DEFAULT_INSTRUCTION_IDS)


def check_vision_biases(state: dict[str, torch.Tensor], sources: dict[str, list[dict]], num_layers: int) -> dict:
    """Every block's q and v bias must be non-zero (UMT's are trained; zeros mean they were dropped on the way)."""
    norms = {}
    for i in range(num_layers):
        for name in ("q_bias", "v_bias"):
            key = f"vision_model.layers.{i}.attn.{name}"
            norm = float(state[key].float().norm())
            if norm == 0.0:
                origin = sources[key][-1]
                raise DataError(origin["path"], f"the vision encoder's {name} of block {i} is all zeros", key=origin["key"])
            norms[key] = norm
    return norms


def convert(*, stage1: str | Path, stage2: str | Path, llm: str | Path, out: str | Path,
            stage3: str | Path | None = None, num_vision_layers: int = 23, vision_heads: int = 16, image_size: int = 224,
            qformer_heads: int = 12, lora_alpha: float = 32.0, instruction: str = DEFAULT_INSTRUCTION,
            qformer_tokenizer: str | None = None, dtype: str = "bfloat16", ignore: Sequence[str] = ()) -> Path:
    """Convert the original checkpoints into `out` (model, processor, `conversion_report.json`); see the module doc.

    Args:
        stage1, stage2, stage3: the original `.pth` files; stage 2 brings the extra queries and the projection,
            stage 3 (optional) the instruction-tuned weights and LoRA (without it: the stage-2 model).
        llm: a local Hugging Face folder of the base LLM (Mistral-7B-Instruct-v0.2) with its tokenizer.
        out: the output folder (written atomically).
        num_vision_layers, vision_heads, image_size, qformer_heads: what the tensors cannot tell (23, 16, 224, 12).
        lora_alpha: the stage-3 LoRA alpha (32; the files hold A and B but not alpha).
        instruction, qformer_tokenizer: the Q-Former's fixed instruction (default: the demo's video instruction).
        dtype: the saved weights' dtype.
        ignore: regexes of original keys to skip on purpose (recorded in the report).
    """
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .modeling import VideoChat2ForConditionalGeneration

    if dtype not in DTYPES:
        raise UsageError(f"--dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    refuse_foreign_folder(out)  # before hours of work: a folder of the user's is never replaced
    llm = Path(llm)
    if not (llm / "config.json").is_file():
        raise DataError(llm, "not a Hugging Face model folder (no config.json)")
    files = [("stage1", Path(stage1))] + [(n, Path(p)) for n, p in (("stage2", stage2), ("stage3", stage3)) if p]
    asm = Assembly(num_vision_layers, ignore)
    asm.apply(*files[0], load_checkpoint(files[0][1]))
    try:
        base = AutoModelForCausalLM.from_pretrained(str(llm), dtype=DTYPES[dtype], local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # transformers' many ways to say "not a model"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(llm, f"cannot be loaded as a causal language model ({first})") from exc
    text_config = base.config
    for key, tensor in base.state_dict().items():
        asm.put("language_model." + key, tensor, {"file": "llm", "path": str(llm), "key": key})
    del base
    for label, path in files[1:]:
        asm.apply(label, path, load_checkpoint(path))
    n_queries = asm.finish_queries()
    merged = asm.merge_lora(lora_alpha)

    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(str(llm), legacy=True, local_files_only=True))
    config = build_config(asm.state, text_config, num_vision_layers=num_vision_layers, vision_heads=vision_heads,
                          image_size=image_size, qformer_heads=qformer_heads, num_query_tokens=n_queries,
                          instruction=instruction, instruction_ids=instruction_ids(instruction, qformer_tokenizer),
                          video_token_id=tokenizer.convert_tokens_to_ids(prompts.VIDEO_TOKEN))
    with init_empty_weights():
        model = VideoChat2ForConditionalGeneration(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(asm.state))
    if missing:
        raise DataError("<stage files + llm>", f"{len(missing)} parameters come from no file, e.g. {missing[:5]}",
                        key=missing[0])
    for key in sorted(set(asm.state) - set(expected)):
        origin = asm.sources[key][-1]
        raise DataError(origin["path"], f"maps to {key}, which the model does not have", key=origin["key"])
    for key, tensor in asm.state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            origin = asm.sources[key][-1]
            raise DataError(origin["path"], f"shape {tuple(tensor.shape)} but {key} needs {tuple(expected[key].shape)}",
                            key=origin["key"])
    bias_norms = check_vision_biases(asm.state, asm.sources, num_vision_layers)
    model.load_state_dict({k: v.to(DTYPES[dtype]) for k, v in asm.state.items()}, strict=True, assign=True)
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        setattr(model.generation_config, key, getattr(tokenizer, key))
    processor = VideoChat2Processor(tokenizer, image_size=image_size, num_video_tokens=n_queries,
                                    tokenizer_kwargs={"legacy": True})
    check_prompt_tokenization(tokenizer, prompts.VIDEOCHAT2, n_queries)

    report = {
        "files": [{"label": label, "path": str(path), "sha256": sha256_file(path)} for label, path in files]
        + [{"label": "llm", "path": str(llm), "name_or_path": text_config._name_or_path}],
        "order": ["stage1", "llm"] + [label for label, _ in files[1:]] + ["lora merged into the llm weights"],
        "parameters": {k: {"final": v[-1], "history": v} for k, v in sorted(asm.sources.items())},
        "ignored": asm.ignored,
        "lora_merged": merged,
        "vision_qv_bias_norms": bias_norms,
        "qformer_instruction": {"text": instruction, "ids": config.qformer_instruction_ids},
        "dtype": dtype,
    }
    with atomic_dir(out, only_ours=True) as tmp:
        VIDEOCHAT2.save(model, processor, tmp)
        write_json(tmp / "conversion_report.json", report)
    return Path(out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="haca convert-videochat2",
                                description="Convert the original VideoChat2 (Mistral) checkpoints into a folder that "
                                            "hacalib.models.load_model reloads offline.")
    p.add_argument("--stage1", required=True, help="umt_l16_qformer.pth (UMT encoder + Q-Former)")
    p.add_argument("--stage2", required=True, help="videochat2_mistral_7b_stage2.pth (extra queries, projection)")
    p.add_argument("--stage3", help="videochat2_mistral_7b_stage3.pth (omit it for the stage-2 model)")
    p.add_argument("--llm", required=True, help="local folder of Mistral-7B-Instruct-v0.2 (weights + tokenizer)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--dtype", default="bfloat16", choices=sorted(DTYPES), help="dtype of the saved weights")
    p.add_argument("--lora-alpha", type=float, default=32.0, help="stage-3 LoRA alpha (32 in its config)")
    p.add_argument("--vision-layers", type=int, default=23, help="vision blocks VideoChat2 runs (23 of UMT-L's 24)")
    p.add_argument("--vision-heads", type=int, default=16, help="vision attention heads (UMT-L: 16)")
    p.add_argument("--qformer-heads", type=int, default=12, help="Q-Former attention heads (BERT-base: 12)")
    p.add_argument("--image-size", type=int, default=224, help="frame side the encoder sees")
    p.add_argument("--instruction", default=DEFAULT_INSTRUCTION, help="the Q-Former's fixed instruction")
    p.add_argument("--qformer-tokenizer", help="local bert-base-uncased folder (needed for a custom --instruction)")
    p.add_argument("--ignore", action="append", default=[], metavar="REGEX",
                   help="skip original keys matching REGEX on purpose (recorded in the report); repeatable")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = convert(stage1=args.stage1, stage2=args.stage2, stage3=args.stage3, llm=args.llm, out=args.out,
                  num_vision_layers=args.vision_layers, vision_heads=args.vision_heads, image_size=args.image_size,
                  qformer_heads=args.qformer_heads, lora_alpha=args.lora_alpha, instruction=args.instruction,
                  qformer_tokenizer=args.qformer_tokenizer, dtype=args.dtype, ignore=args.ignore)
    print(f"wrote {out} (report: {Path(out) / 'conversion_report.json'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
