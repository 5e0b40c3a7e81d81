"""The toy world's benchmarks, as records in the real formats (no file I/O here; `build` writes them).

Each `make_*` draws its own scenes from a `SceneSource`, which guarantees that no scene appears twice
in the whole world (so training and test videos never overlap), and returns the rows of its files
plus the scenes of its videos keyed by their path under the data root.

May import: numpy, its own package's modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import hallucinate as H
from .grammar import (
    CAPTION_INSTRUCTION,
    ENTAIL_INSTRUCTION,
    NO,
    SSV2_TEMPLATES,
    TEMPLATE_INSTRUCTION,
    YES,
    Description,
    describe,
    realize,
)
from .questions import existence_question, sample_questions
from .scene import ACTIONS, RELATION_FRAC, Scene, distance_change, relation_holds, sample_scene, trajectory
from .truth import entails, rebinds

# VideoCon's SSv2 eval files wrap each template in the mPLUG-Owl entailment prompt (copied byte for byte
# from VideoCon's eval_ssv2_temporal.csv), so a loader must extract the template before applying its own.
VIDEOCON_SSV2_PROMPT = (
    "The following is a conversation between a curious human and AI assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions.\nHuman: <|video|>\nHuman: Does this video entail the "
    'description: "{}"?\nAI: '
)


@dataclass
class SceneSource:
    """Draws scenes for the whole world; remembers fingerprints so no video is ever drawn twice.

    Args:
        canvas, num_frames: canvas side and rendered frames.
        sampled: frame indices the model sees (events are aligned to them).
    """

    canvas: int
    num_frames: int
    sampled: list[int]
    seen: set[str] = field(default_factory=set)

    def draw(self, rng: np.random.Generator, n_agents: int | None = None, n_events: int | None = None, **kw) -> Scene:
        """A new scene; random numbers of agents (1-3) and events (1-3) unless given."""
        while True:
            na = n_agents if n_agents is not None else int(rng.choice([1, 2, 3], p=[0.2, 0.45, 0.35]))
            ne = n_events if n_events is not None else int(rng.choice([1, 2, 3], p=[0.25, 0.4, 0.35]))
            pattern = kw.get("agent_pattern")
            if pattern is not None and max(pattern) >= na:
                continue
            scene = sample_scene(rng, canvas=self.canvas, num_frames=self.num_frames, sampled=self.sampled,
                                 n_agents=na, n_events=ne, **kw)
            if scene is not None and scene.fingerprint() not in self.seen:
                self.seen.add(scene.fingerprint())
                return scene


Videos = dict[str, Scene]


# ----------------------------------------------------------------------------- VideoCon


def make_videocon(src: SceneSource, rng: np.random.Generator, n_train: int, n_test: int) -> tuple[list[dict], Videos]:
    """Rows of `videocon_llm_entailment.csv`: one (caption, hallucinated caption) per video.

    Misalignment types cycle through the seven VideoCon types so that they are balanced; a scene that
    does not allow the type at hand (no relation, one event) is redrawn.
    """
    rows, videos = [], {}
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            kind = H.MISALIGNMENT_TYPES[i % len(H.MISALIGNMENT_TYPES)]
            while True:
                scene = src.draw(rng)
                desc = describe(scene)
                neg = H.HALLUCINATIONS[kind](scene, desc, rng)
                if neg is not None:
                    break
            path = f"{split}/{i:05d}.mp4"
            videos[f"videocon/videos/{path}"] = scene
            rows.append({"videopath": path, "source": "toyworld", "caption": realize(desc),
                         "neg_caption": realize(neg), "youtube_key": "", "split": split, "misalignment": kind})
    return rows, videos


# ----------------------------------------------------------------------------- VELOCITI

# who does events 1..n: patterns that give coreference, binding and sequence items
_VELOCITI_PATTERNS = ((0, 0, 1), (0, 1, 0), (0, 1, 1), (0, 0, 1), (0, 1, 0), (0, 1, 2), (0, 0), (0, 1))


def make_velociti(src: SceneSource, rng: np.random.Generator, n_videos: int) -> tuple[dict[str, dict], Videos]:
    """One dict per VELOCITI test, `{video_id: {event: {"pos", "neg"}}}` (control: pos_cap, neg_cap, neg_vid)."""
    scenes = []
    for i in range(n_videos):
        pattern = _VELOCITI_PATTERNS[i % len(_VELOCITI_PATTERNS)]
        na = max(pattern) + 1 + int(rng.integers(0, 2)) if max(pattern) < 2 else 3
        scenes.append(src.draw(rng, n_agents=min(na, 3), n_events=len(pattern), agent_pattern=pattern))
    ids = [f"toy_velociti_{i:05d}" for i in range(n_videos)]
    tests: dict[str, dict] = {t: {} for t in H.VELOCITI_TESTS}

    def put(test: str, vid: str, ev: str, pair) -> None:
        if pair is not None:
            tests[test].setdefault(vid, {})[ev] = {"pos": realize(pair[0]), "neg": realize(pair[1])}

    single = {"agent_iden": H.agent_iden, "agent_bind": H.agent_bind, "action_bind": H.action_bind,
              "action_mod": H.action_mod, "action_adv": H.action_adv}
    for v, (vid, scene) in enumerate(zip(ids, scenes)):
        n = len(scene.events)
        for k in range(n):
            for test, fn in single.items():
                put(test, vid, f"Ev{k + 1}", fn(scene, k, rng))
            other = (v + 1 + int(rng.integers(n_videos - 1))) % n_videos if n_videos > 1 else v
            pair = H.control(scene, k, scenes[other], rng) if other != v else None
            if pair is not None:
                tests["control"].setdefault(vid, {})[f"Ev{k + 1}"] = {
                    "pos_cap": realize(pair[0]), "neg_cap": realize(pair[1]), "neg_vid": ids[other]}
        for i in range(n):
            for j in range(i + 1, n):
                put("coref", vid, f"Ev{i + 1}_Ev{j + 1}", H.coref(scene, i, j, rng))
                put("sequence", vid, f"Ev{i + 1}_Ev{j + 1}", H.sequence(scene, i, j, rng))
    return tests, {f"velociti/videos/{vid}.mp4": s for vid, s in zip(ids, scenes)}


# ----------------------------------------------------------------------------- SSv2


def template_matches(scene: Scene, template: str) -> bool:
    """Whether some event of `scene` is an instance of the toy SSv2 `template`."""
    pred = SSV2_TEMPLATES[template]
    traj = trajectory(scene)
    for e in scene.events:
        if pred in ACTIONS and e.action == pred:
            return True
        if pred not in ACTIONS and any(relation_holds(scene, traj, e, pred, o) for o in range(len(scene.agents))):
            return True
    return False


def _clear_relations(scene: Scene) -> bool:
    """No move that is only a little towards / away from another shape (retrieval labels stay crisp)."""
    traj = trajectory(scene)
    thr = RELATION_FRAC * scene.canvas
    for e in scene.events:
        if e.action.startswith("move_"):
            for o in range(len(scene.agents)):
                if o != e.agent and thr / 2 < abs(distance_change(scene, traj, e, o)) < thr:
                    return False
    return True


def make_ssv2(src: SceneSource, rng: np.random.Generator, per_template: int) -> tuple[list[dict], Videos]:
    """Rows of `eval_ssv2_toy.csv`: every (template, video) pair with match 0/1; one-event videos.

    The pool holds `per_template` videos drawn for each template (so every query has positives);
    a video drawn for one template may match others too (a move to the right towards a shape).
    """
    videos: Videos = {}
    templates = list(SSV2_TEMPLATES)
    moves = tuple(a for a in ACTIONS if a.startswith("move_"))
    for i in range(per_template * len(templates)):
        template = templates[i % len(templates)]
        pred = SSV2_TEMPLATES[template]
        while True:
            if pred in ACTIONS:
                scene = src.draw(rng, n_agents=1 + int(rng.integers(2)), n_events=1, actions=(pred,))
            else:
                scene = src.draw(rng, n_agents=2, n_events=1, actions=moves)
            if _clear_relations(scene) and template_matches(scene, template):
                break
        videos[f"ssv2/videos/{i:05d}.mp4"] = scene
    rows = []
    for template in SSV2_TEMPLATES:
        for path, scene in videos.items():
            rows.append({"videopath": path.removeprefix("ssv2/videos/"),
                         "caption": VIDEOCON_SSV2_PROMPT.format(template),
                         "match": int(template_matches(scene, template))})
    return rows, videos


# ----------------------------------------------------------------------------- MSRVTT-QA


def make_msrvtt_qa(src: SceneSource, rng: np.random.Generator, n_videos: int, per_video: int = 4):
    """`test_q.json` and `test_a.json` records (Video-ChatGPT layout) with one-word answers."""
    q, a, videos = [], [], {}
    for i in range(n_videos):
        scene = src.draw(rng)
        name = f"video{i}"
        videos[f"msrvtt_qa/videos/{name}.mp4"] = scene
        for k, (question, answer, kind) in enumerate(sample_questions(scene, rng, per_video)):
            qid = f"v_{name}_{k}"
            q.append({"video_name": name, "question": question, "question_id": qid})
            a.append({"answer": answer, "type": kind, "question_id": qid})
    return q, a, videos


# ----------------------------------------------------------------------------- pretraining


def _subset(scene: Scene, rng: np.random.Generator) -> Description:
    """The whole true description, or the description of a random non-empty subset of its events."""
    n = len(scene.events)
    if rng.random() < 0.5:
        return describe(scene)
    k = int(rng.integers(1, n + 1))
    idx = sorted(int(x) for x in rng.choice(n, size=k, replace=False))
    return describe(scene, idx, with_count=bool(rng.random() < 0.5))


def make_pretrain(src: SceneSource, rng: np.random.Generator, n_videos: int, qa_per_video: int = 4):
    """Records of `pretrain.jsonl`: captioning, QA, grounded yes/no questions (balanced) and templates.

    The "No" entailment examples use the caption of another pretraining video (false of this one, and
    never re-binding one of its shapes to another's action), not VideoCon-style hallucinations:
    fine-grained contrast is what fine-tuning is meant to teach.
    """
    scenes = [src.draw(rng) for _ in range(n_videos)]
    records, videos = [], {}
    for i, scene in enumerate(scenes):
        rel = f"{i:05d}.mp4"
        videos[f"pretrain/videos/{rel}"] = scene

        def rec(task: str, prompt: str, answer: str) -> None:
            records.append({"video": rel, "task": task, "prompt": prompt, "answer": answer})

        rec("caption", CAPTION_INSTRUCTION, realize(describe(scene)))
        for question, answer, _ in sample_questions(scene, rng, qa_per_video):
            rec("qa", question, answer)
        rec("entail", ENTAIL_INSTRUCTION.format(caption=realize(_subset(scene, rng))), YES)
        while True:
            other = scenes[int(rng.integers(n_videos))]
            wrong = _subset(other, rng)
            # a borrowed caption must not pair a shape of this video with another shape's action
            if n_videos < 2 or not (entails(scene, wrong) or rebinds(scene, wrong)):
                break
        if n_videos > 1:
            rec("entail", ENTAIL_INSTRUCTION.format(caption=realize(wrong)), NO)
        for yes in (True, False):  # one present and one absent shape per video: balanced, and a contrast
            rec("exist", existence_question(scene, rng, answer_yes=yes), YES if yes else NO)
        if len(scene.events) == 1:
            matching = [t for t, p in SSV2_TEMPLATES.items() if p == scene.events[0].action]
            rec("template", TEMPLATE_INSTRUCTION, matching[0])
    return records, videos
