"""Parity of hacalib's native VideoChat2 with the original code, on the real weights (one CUDA GPU, ~70 GB).

    python bench/videochat2_parity.py --video-chat2 Ask-Anything/video_chat2 \
        --stage1 umt_l16_qformer.pth --stage2 videochat2_mistral_7b_stage2.pth \
        --stage3 videochat2_mistral_7b_stage3.pth --llm Mistral-7B-Instruct-v0.2/ [--converted DIR] \
        [--video clip.mp4] [--frames 16] [--caption "..."]

Builds the original model as its Mistral demo does (stage 1 + the LLM + stage 2, LoRA wrapped once, stage 3
loaded non-strictly; needs the original code's requirements and a local `bert-base-uncased`), converts the same
files with `haca convert-videochat2` (float32) unless --converted is given, feeds both the same processed frames
and the same prompt, with autocast off (float32), and prints one JSON line: the largest absolute difference of
the 96 video features and of the answer-position logits, both P(yes), and whether hacalib's prompt ids equal
the original's segment-wise ones. Expect differences at float32 rounding level (~1e-4 on logits of size ~10).
Not run in this repository's CI (no weights, no GPU).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch


def original_model(args, device):
    """The original VideoChat2_it_mistral, loaded the way demo/demo_mistral.ipynb loads the stage-3 model."""
    from peft import LoraConfig, TaskType, get_peft_model

    root = Path(args.video_chat2).resolve()
    sys.path.insert(0, str(root))
    from models import VideoChat2_it_mistral  # the original package
    from utils.config import Config

    cfg = Config.from_file(str(root / "configs" / "config_mistral.json"))
    cfg.model.vit_blip_model_path = args.stage1
    cfg.model.mistral_model_path = args.llm
    cfg.model.videochat2_model_path = args.stage2
    cfg.model.use_lora = False
    cfg.model.vision_encoder.num_frames = args.frames  # its position table is built for this T at init
    model = VideoChat2_it_mistral(config=cfg.model)
    lora = LoraConfig(task_type=TaskType.CAUSAL_LM, inference_mode=False, r=16, lora_alpha=32, lora_dropout=0.0,
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                                      "lm_head"])
    model.mistral_model = get_peft_model(model.mistral_model, lora)
    state = torch.load(args.stage3, map_location="cpu", weights_only=True)
    print(model.load_state_dict(state.get("model", state), strict=False), file=sys.stderr)
    model.maybe_autocast = lambda dtype=None: contextlib.nullcontext()  # compare in float32
    return model.float().to(device).eval()


def original_logits(model, prompt, features, video_token):
    """Answer-position logits from the demo's input construction: segments embedded around the video."""
    before, _, after = prompt.partition(video_token)
    tok, emb = model.mistral_tokenizer, model.mistral_model.base_model.model.model.embed_tokens
    dev = features.device
    head = tok(before, return_tensors="pt", add_special_tokens=True).input_ids.to(dev)
    tail = tok(after, return_tensors="pt", add_special_tokens=False).input_ids.to(dev)
    embeds = torch.cat([emb(head), features, emb(tail)], dim=1)
    ids = head[0].tolist() + [-1] * features.shape[1] + tail[0].tolist()
    return model.mistral_model(inputs_embeds=embeds).logits[0, -1].float(), ids


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--video-chat2", required=True, help="the video_chat2/ folder of an Ask-Anything checkout")
    for name in ("stage1", "stage2", "stage3", "llm"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--converted", help="a folder from `haca convert-videochat2 --dtype float32` (else converted here)")
    p.add_argument("--video", help="a video file (default: random frames)")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--caption", default="A person is doing yoga on a mat.")
    args = p.parse_args()
    device = torch.device("cuda")

    from hacalib.models import load_model, prompt_ids
    from hacalib.models.videochat2 import VIDEOCHAT2
    from hacalib.models.videochat2.convert import convert

    folder = args.converted
    if folder is None:
        folder = str(Path(tempfile.mkdtemp(prefix="videochat2_")) / "converted")
        convert(stage1=args.stage1, stage2=args.stage2, stage3=args.stage3, llm=args.llm, out=folder, dtype="float32")
    ours, processor = load_model(folder, dtype="float32", device=device)
    if args.video:
        from hacalib.data.video import read_video

        frames = read_video(args.video, num_frames=args.frames)
    else:
        frames = np.random.default_rng(0).integers(0, 256, (args.frames, 360, 640, 3), dtype=np.uint8)
    pixels = processor.preprocess([frames]).to(device)  # the same pixels for both models
    theirs = original_model(args, device)
    tpl = VIDEOCHAT2.template
    prompt = tpl.entail_prompt(args.caption)
    yes, no = (processor.tokenizer.convert_tokens_to_ids(t) for t in ("▁Yes", "▁No"))
    with torch.no_grad():
        f_theirs, _ = theirs.encode_img(pixels, ours.config.qformer_instruction)
        f_ours = ours.get_video_features(pixels)
        l_theirs, ids_theirs = original_logits(theirs, prompt, f_theirs, tpl.video_token)
        ids = torch.tensor(prompt_ids(processor.tokenizer, [prompt], processor.num_video_tokens, tpl), device=device)
        l_ours = ours(input_ids=ids, pixel_values_videos=pixels, logits_to_keep=1).logits[0, -1].float()
    vid = processor.tokenizer.convert_tokens_to_ids(tpl.video_token)
    ours_ids = [-1 if i == vid else i for i in ids[0].tolist()]
    print(json.dumps({
        "frames": args.frames,
        "features_max_abs_diff": float((f_ours - f_theirs).abs().max()),
        "features_max_abs": float(f_theirs.abs().max()),
        "logits_max_abs_diff": float((l_ours - l_theirs).abs().max()),
        "pyes_original": float(torch.sigmoid(l_theirs[yes] - l_theirs[no])),
        "pyes_hacalib": float(torch.sigmoid(l_ours[yes] - l_ours[no])),
        "prompt_ids_equal": ours_ids == ids_theirs,
    }))


if __name__ == "__main__":
    main()
