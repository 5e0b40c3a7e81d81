"""Does pinning the CPU code path make toy pretraining bitwise identical across CPU capabilities?

    python experiments/cpu_capability/pinned_pretraining.py WORLD_DIR STEPS
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 python ... WORLD_DIR STEPS

Pretrains the toy base model for STEPS steps on a built toy world and prints one JSON line: torch's CPU capability,
the pinning environment, the weights' sha256 prefix and the loss record's hash. Run it under each setting (and on
each machine) and compare the lines. A diagnostic for the replication issue, not part of `haca reproduce`.
"""
import hashlib, json, os, sys, tempfile
from pathlib import Path
import torch
from hacalib.config import PretrainConfig
from hacalib.training.pretrain import pretrain_toy_model

world = sys.argv[1]
steps = int(sys.argv[2])
out = Path(tempfile.mkdtemp()) / "m"
cfg = PretrainConfig(steps=steps, log_every=10, checkpoint_every=100000)
pretrain_toy_model(world, out, cfg, progress=False)
losses = [json.loads(l)["loss"] for l in (out / "metrics.jsonl").read_text().splitlines()]
digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()[:16]
print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "env": {k: os.environ.get(k) for k in
      ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")}, "threads": torch.get_num_threads(),
      "weights": digest, "losses": [f"{x:.9g}" for x in losses[-3:]], "loss_hash": hashlib.sha256(repr(losses).encode()).hexdigest()[:12]}))
