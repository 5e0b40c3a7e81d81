"""Video-LLaVA, the first model family: transformers' `VideoLlavaForConditionalGeneration` behind `VideoLLMFamily`.

The only module that knows Video-LLaVA's classes and attributes (`model.model.video_tower`, `get_video_features`,
`config.video_token_id`, `model.model.language_model`, `lm_head`, the `mm_encoder_outputs` hand-over of
`generate`). The toy model (`hacalib.models.toy`) and `LanguageBind/Video-LLaVA-7B-hf` are the same classes at two
sizes, so both go through here.

May import: torch, transformers, `hacalib.prompts`, `.family`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import torch
from transformers import VideoLlavaConfig, VideoLlavaForConditionalGeneration, VideoLlavaProcessor

from .. import prompts
from .family import VideoLLMFamily, unwrap

# The real model, pinned to a commit; transformers also records the resolved commit
# (`model.config._commit_hash`) so provenance shows which weights were used.
VIDEOLLAVA_7B_HUB_ID = "LanguageBind/Video-LLaVA-7B-hf"
# The newest commit in the hub repository's public history ("Upload processor", 2024-05-09).
VIDEOLLAVA_7B_REVISION = "d814f26332051e31c43352e8c1c0ef230ed6fb5d"


class VideoLlavaFamily(VideoLLMFamily):
    name = "video_llava"
    model_type = VideoLlavaConfig.model_type
    template = prompts.VIDEO_LLAVA
    lora_targets = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

    def owns(self, obj: Any) -> bool:
        if isinstance(obj, (VideoLlavaProcessor, VideoLlavaConfig)):
            return True
        config = getattr(unwrap(obj), "config", None) if isinstance(obj, torch.nn.Module) else None
        return getattr(config, "model_type", None) == self.model_type

    def load(self, name_or_path: str, *, revision: str | None, dtype: torch.dtype):
        kw = {} if Path(name_or_path).is_dir() or revision is None else {"revision": revision}
        model = VideoLlavaForConditionalGeneration.from_pretrained(name_or_path, dtype=dtype, **kw)
        return model, VideoLlavaProcessor.from_pretrained(name_or_path, **kw)

    def save(self, model: torch.nn.Module, processor: Any, path: Path) -> None:
        model.save_pretrained(path)
        processor.save_pretrained(path)

    def num_video_tokens(self, processor: Any, num_frames: int) -> int:
        """frames * ((H / patch) * (W / patch) + CLS); 136 for the toy (8 x (16 + 1)), 2056 for Video-LLaVA-7B."""
        vp = processor.video_processor
        size = vp.crop_size if vp.do_center_crop else vp.size
        if "height" not in size:
            raise ValueError(f"cannot infer the frame size from the video processor's size {dict(size)}")
        per_frame = (size["height"] // processor.patch_size) * (size["width"] // processor.patch_size)
        return num_frames * (per_frame + processor.num_additional_image_tokens)

    def preprocess(self, processor: Any, videos: Sequence[Any]) -> torch.Tensor:
        return processor.video_processor(videos=list(videos), return_tensors="pt")["pixel_values_videos"]

    def video_features(self, model: torch.nn.Module, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        vlm = unwrap(model).model
        param = next(vlm.video_tower.parameters())
        pv = pixel_values_videos.to(param.device, param.dtype)
        out = vlm.get_video_features(pixel_values_videos=pv, return_dict=True)
        # transformers >= 5.2x returns an output object; earlier 5.x releases returned the features tensor
        feats = out if isinstance(out, torch.Tensor) else out.pooler_output
        return feats.reshape(pv.shape[0], -1, feats.shape[-1])

    def vision_modules(self, model: torch.nn.Module) -> list[torch.nn.Module]:
        inner = unwrap(model).model
        return [inner.video_tower, inner.multi_modal_projector]

    def embed_video(self, model: torch.nn.Module, input_ids: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """As `VideoLlavaModel.forward` does: the features scattered into the `<video>` positions, with a count check."""
        base = unwrap(model)
        embeds = base.get_input_embeddings()(input_ids)
        is_video = input_ids == base.config.video_token_id
        counts = is_video.sum(dim=1)
        if not bool((counts == features.shape[1]).all()):
            raise ValueError(f"rows hold {counts.tolist()} <video> tokens but each video has {features.shape[1]} features")
        return embeds.masked_scatter(is_video[..., None], features.to(embeds.device, embeds.dtype))

    def set_pretraining_trainable(self, model: torch.nn.Module) -> None:
        # Videos never pass the image tower, and video features are read before the video tower's final
        # layernorm (hidden_states[vision_feature_layer]); DDP refuses trained parameters that get no gradient.
        model.requires_grad_(True)
        model.model.image_tower.requires_grad_(False)
        model.model.video_tower.post_layernorm.requires_grad_(False)

    def language_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return unwrap(model).model.language_model

    def lm_head(self, model: torch.nn.Module) -> torch.nn.Module:
        return unwrap(model).lm_head

    def attn_implementation(self, model: torch.nn.Module) -> str:
        return self.language_model(model).config._attn_implementation

    def generate(self, model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 features: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        # back to get_video_features' own layout (one row per frame), as generate passes it on
        vision = unwrap(model).config.vision_config
        per_frame = (vision.image_size // vision.patch_size) ** 2 + 1  # patches + CLS (videos keep it)
        frames = features.reshape(-1, per_frame, features.shape[-1])
        return model.generate(input_ids=input_ids, attention_mask=attention_mask,
                              mm_encoder_outputs={"video": BaseModelOutputWithPooling(pooler_output=frames)}, **kwargs)

    def lora_target_regex(self, targets: Sequence[str]) -> str:
        """Full match inside `...language_model...` only: CLIP's attention also has `q_proj/k_proj/v_proj`, so bare
        names would put adapters on the vision tower."""
        if not targets:
            raise ValueError("LoRA needs at least one target module name")
        names = "|".join(re.escape(t) for t in targets)
        return rf"(?:.*\.)?language_model\..*\.(?:{names})"


VIDEO_LLAVA = VideoLlavaFamily()
