"""The training loop on a tiny stand-in language model: loss reductions, resume, checkpoints, divergence."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from hacalib.config import TrainConfig
from hacalib.errors import DataError
from hacalib.training.checkpoints import latest_checkpoint
from hacalib.training.datasets import SeededBatchSampler
from hacalib.training.loop import TrainingDiverged, train
from hacalib.training.loss import masked_lm_loss
from hacalib.training.metrics_log import read_metrics


def tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=4, num_key_value_heads=4, attention_dropout=0.1)
    return LlamaForCausalLM(cfg)


def token_data(n: int = 24, length: int = 10) -> list[dict]:
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n):
        ids = torch.randint(3, 40, (length,), generator=g)
        labels = ids.clone()
        labels[: length // 2] = -100
        out.append({"input_ids": ids, "labels": labels, "attention_mask": torch.ones(length, dtype=torch.long)})
    return out


def stack(features: list[dict]) -> dict:
    return {k: torch.stack([f[k] for f in features]) for k in features[0]}


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class CrashAfter(torch.utils.data.Dataset):
    """Raises after `n` items, as a killed job would stop mid-run."""

    def __init__(self, data, n):
        self.data, self.n, self.calls = data, n, 0

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        self.calls += 1
        if self.calls > self.n:
            raise KeyboardInterrupt("simulated interruption")
        return self.data[i]


def config(tmp_path: Path, name: str, **kw) -> TrainConfig:
    base = dict(max_steps=12, batch_size=4, grad_accum=2, lr=5e-3, warmup_steps=2, checkpoint_every=4,
                log_every=1, output_dir=str(tmp_path / name), seed=3)
    base.update(kw)
    return TrainConfig(**base)


def test_masked_loss_reductions_on_literal_values():
    # Uniform logits over 4 classes: every target token costs log 4; make row 0 cost more on one token.
    logits = torch.zeros(2, 4, 4)
    logits[0, 0, 2] = -5.0  # row 0 predicts position 1 (label 1) from position 0; label 1 unaffected
    logits[0, 1, 3] = -5.0  # row 0 predicts label 3 at position 2 badly
    labels = torch.tensor([[-100, 1, 3, 0], [-100, -100, -100, 2]])
    ce = torch.nn.functional.cross_entropy
    c01 = ce(logits[0, 0:1], torch.tensor([1]))
    c02 = ce(logits[0, 1:2], torch.tensor([3]))
    c03 = ce(logits[0, 2:3], torch.tensor([0]))
    c13 = ce(logits[1, 2:3], torch.tensor([2]))
    token = (c01 + c02 + c03 + c13) / 4
    sequence = ((c01 + c02 + c03) / 3 + c13) / 2
    assert torch.allclose(masked_lm_loss(logits, labels, "token"), token)
    assert torch.allclose(masked_lm_loss(logits, labels, "sequence"), sequence)
    assert not torch.allclose(token, sequence)
    with pytest.raises(ValueError, match="no target tokens"):
        masked_lm_loss(logits, torch.full((2, 4), -100))
    with pytest.raises(ValueError, match="loss_reduction"):
        masked_lm_loss(logits, labels, "mean")


def test_sampler_is_seeded_disjoint_across_ranks_and_resumable():
    a = SeededBatchSampler(10, 3, seed=7)
    b = SeededBatchSampler(10, 3, seed=7)
    assert [a.batch(k) for k in range(8)] == [b.batch(k) for k in range(8)]
    assert [a.batch(k) for k in range(4)] != [SeededBatchSampler(10, 3, seed=8).batch(k) for k in range(4)]
    # every epoch is a permutation: the first 10 stream items cover the dataset once
    stream = [i for k in range(10) for i in a.batch(k)]
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:20]) == list(range(10))
    # two processes split each global batch of the one-process stream of size 6
    r0 = SeededBatchSampler(10, 3, seed=7, rank=0, world_size=2)
    r1 = SeededBatchSampler(10, 3, seed=7, rank=1, world_size=2)
    assert [i for k in range(5) for i in r0.batch(k) + r1.batch(k)] == stream[:30]
    # starting at k continues the same stream
    it = iter(SeededBatchSampler(10, 3, seed=7, start=5))
    assert [next(it) for _ in range(3)] == [a.batch(k) for k in range(5, 8)]


def test_train_logs_checkpoints_and_saves_final(tmp_path):
    model = tiny_llama()
    cfg = config(tmp_path, "run", keep_checkpoints=2)
    result = train(model, token_data(), cfg, collate_fn=stack, progress=False)
    assert result.start_step == 0 and result.steps == 12 and len(result.losses) == 12
    assert result.losses[-1] < result.losses[0]
    records = read_metrics(result.metrics_path)
    assert [r["step"] for r in records] == list(range(1, 13))
    assert [r["loss"] for r in records] == result.losses
    assert set(records[0]) == {"step", "loss", "lr", "grad_norm", "samples_per_s", "elapsed_s"}
    assert records[0]["lr"] < records[1]["lr"]  # warmup
    ckpts = sorted(p.name for p in (Path(cfg.output_dir) / "checkpoints").iterdir())
    assert ckpts == ["step_00000008", "step_00000012"]  # keep=2, nothing partial left
    assert (result.final_dir / "model.safetensors").is_file()
    # the checkpoint holds the trainable weights only once (lm_head is tied to the embeddings)
    from safetensors import safe_open

    with safe_open(str(Path(cfg.output_dir) / "checkpoints/step_00000012/model.safetensors"), "pt") as f:
        assert set(f.keys()) == {n for n, _ in model.named_parameters()}


def test_resume_after_interruption_is_bit_identical(tmp_path):
    data = token_data()
    ref_model = tiny_llama()
    ref = train(ref_model, data, config(tmp_path, "ref"), collate_fn=stack, progress=False)

    model = tiny_llama()
    cfg = config(tmp_path, "cut")
    # 8 items per step: the crash comes during step 7, after the checkpoint at step 4
    with pytest.raises(KeyboardInterrupt):
        train(model, CrashAfter(data, 8 * 6 + 3), cfg, collate_fn=stack, progress=False)
    assert latest_checkpoint(Path(cfg.output_dir) / "checkpoints").name == "step_00000004"
    # a half-written checkpoint from a later crash must be ignored
    (Path(cfg.output_dir) / "checkpoints/.step_00000008.partial").mkdir()

    resumed_model = tiny_llama(seed=99)  # different init: everything must come from the checkpoint
    res = train(resumed_model, data, cfg, collate_fn=stack, progress=False)
    assert res.start_step == 4
    assert res.losses == ref.losses[4:]
    a, b = weights(ref_model), weights(resumed_model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [r["step"] for r in read_metrics(res.metrics_path)]
    assert steps == list(range(1, 13))  # records after the checkpoint were rewritten, not duplicated
    assert not (Path(cfg.output_dir) / "checkpoints/.step_00000008.partial").exists()  # replaced by the real one


def test_resume_refuses_a_changed_config_and_a_mismatched_model(tmp_path):
    data = token_data()
    cfg = config(tmp_path, "run", max_steps=4)
    train(tiny_llama(), data, cfg, collate_fn=stack, progress=False)
    with pytest.raises(DataError, match="lr"):
        train(tiny_llama(), data, replace(cfg, lr=1e-4), collate_fn=stack, progress=False)
    frozen = tiny_llama()
    frozen.model.embed_tokens.weight.requires_grad_(False)
    with pytest.raises(DataError, match="model.safetensors"):
        train(frozen, data, cfg, collate_fn=stack, progress=False)
    # log/checkpoint cadence may change on resume; resume=False starts over
    res = train(tiny_llama(), data, replace(cfg, log_every=2), collate_fn=stack, progress=False)
    assert res.start_step == 4 and res.losses == []
    assert train(tiny_llama(), data, cfg, collate_fn=stack, progress=False, resume=False).start_step == 0


class NanAfter(torch.nn.Module):
    """A model whose logits become NaN from its `n`-th forward on."""

    def __init__(self, n):
        super().__init__()
        self.emb = torch.nn.Embedding(40, 40)
        self.n, self.calls = n, 0

    def forward(self, input_ids, attention_mask=None):
        self.calls += 1
        logits = self.emb(input_ids)
        return SimpleNamespace(logits=logits * float("nan") if self.calls >= self.n else logits)


def test_nan_loss_stops_with_the_step(tmp_path):
    cfg = config(tmp_path, "nan", grad_accum=1, checkpoint_every=100)
    with pytest.raises(TrainingDiverged, match="at step 3"):
        train(NanAfter(3), token_data(), cfg, collate_fn=stack, progress=False)


def test_sequence_reduction_trains_and_differs(tmp_path):
    data = token_data()
    # uneven target lengths make the two reductions differ
    for i, d in enumerate(data):
        d["labels"][: 2 + i % 6] = -100
    tok = train(tiny_llama(), data, config(tmp_path, "tok", max_steps=3), collate_fn=stack, progress=False)
    seq = train(tiny_llama(), data, config(tmp_path, "seq", max_steps=3, loss_reduction="sequence"), collate_fn=stack, progress=False)
    assert tok.losses[0] != seq.losses[0]
    assert json.loads((Path(seq.output_dir) / "train_config.json").read_text())["loss_reduction"] == "sequence"


def test_checkpoints_hold_no_pickles_of_ours_and_the_rest_loads_weights_only(tmp_path):
    from accelerate.utils.other import TORCH_SAFE_GLOBALS

    from hacalib.training.checkpoints import read_training_state

    cfg = config(tmp_path, "run", max_steps=4)
    train(tiny_llama(), token_data(), cfg, collate_fn=stack, progress=False)
    ckpt = Path(cfg.output_dir) / "checkpoints/step_00000004"
    names = sorted(p.name for p in ckpt.iterdir())
    # accelerate's own: weights (safetensors), optimizer and this process's RNG states; ours: JSON
    assert names == ["model.safetensors", "optimizer.bin", "random_states_0.pkl", "training_state.json"]
    state = read_training_state(ckpt)
    assert state["step"] == 4 and state["config"]["lr"] == cfg.lr and state["scheduler"]["last_epoch"] == 4
    # accelerate reads these back with weights_only=True (numpy RNG arrays through its allow-list)
    with torch.serialization.safe_globals(TORCH_SAFE_GLOBALS):
        rng = torch.load(ckpt / "random_states_0.pkl", weights_only=True)
    assert isinstance(rng["torch_manual_seed"], torch.Tensor)
    assert "state" in torch.load(ckpt / "optimizer.bin", weights_only=True)

    # a broken or pickled training state is refused, naming the file and key
    (ckpt / "training_state.json").write_text(json.dumps({**state, "step": "4"}))
    with pytest.raises(DataError, match=r"training_state\.json.*step"):
        train(tiny_llama(), token_data(), cfg, collate_fn=stack, progress=False)
    (ckpt / "training_state.json").unlink()
    (ckpt / "custom_checkpoint_0.pkl").write_bytes(b"pickle")
    with pytest.raises(DataError, match="older hacalib"):
        train(tiny_llama(), token_data(), cfg, collate_fn=stack, progress=False)


def test_resume_refuses_rng_states_accelerate_could_not_restore(tmp_path):
    cfg = config(tmp_path, "run", max_steps=4)
    train(tiny_llama(), token_data(), cfg, collate_fn=stack, progress=False)
    rng = Path(cfg.output_dir) / "checkpoints/step_00000004/random_states_0.pkl"
    rng.write_bytes(b"truncated")  # accelerate only logs "Could not load random states"
    with pytest.raises(DataError, match=r"random_states_0\.pkl.*RNG states unreadable"):
        train(tiny_llama(), token_data(), cfg, collate_fn=stack, progress=False)
