"""The structured toy world: agents (coloured shapes), events in sequence, and their trajectories.

A `Scene` is the ground truth of one video. Everything else (frames, captions, hallucinations, benchmark
items, the truth checker) is a function of it, so tests can check captions against the scene symbolically.
Geometry is in pixels of a square canvas; y grows downwards (image coordinates).

May import: numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SHAPES = ("circle", "square", "triangle", "cross")
COLORS = ("red", "green", "blue", "yellow", "white")
SIZES = ("small", "big")
MOVES = ("left", "right", "up", "down")
ACTIONS = ("move_left", "move_right", "move_up", "move_down", "grow", "shrink", "jump")
ADVERBS = ("quickly", "slowly")
RELATIONS = ("towards", "away from")
MAX_AGENTS = 3  # shapes in a scene at most (every part of the world draws 1-3)

# Geometry as fractions of the canvas side, so a 64 px canvas is the 32 px world scaled up.
SIZE_FRAC = {"small": 0.25, "big": 0.375}  # diameter: 8 / 12 px at 32 px
MOVE_FRAC = {"quickly": 0.375, "slowly": 0.1875}  # displacement over the event: 12 / 6 px
GROW_FRAC = {"quickly": 0.1875, "slowly": 0.09375}  # diameter change: 6 / 3 px
MIN_DIAM_FRAC, MAX_DIAM_FRAC = 0.1875, 0.5  # 6 .. 16 px: smaller shapes stop being recognisable
RELATION_FRAC = 0.125  # a relation is stated only if the distance changes by at least 4 px
GAP_FRAC = 0.0625  # shapes keep 2 px apart, so they never overlap or touch


@dataclass(frozen=True)
class Agent:
    """A shape with its attributes and initial state. `size` names the initial diameter."""

    shape: str
    color: str
    size: str
    x: float  # initial centre, pixels
    y: float

    @property
    def key(self) -> tuple[str, str, str]:
        """(size, color, shape): the identity a noun phrase names."""
        return (self.size, self.color, self.shape)


@dataclass(frozen=True)
class Event:
    """One agent doing one action in frames [start, end]; `relation`/`target` describe it geometrically."""

    agent: int  # index into Scene.agents
    action: str
    adverb: str
    start: int
    end: int
    relation: str | None = None  # "towards" / "away from" (move actions only)
    target: int | None = None  # index of the related agent


@dataclass(frozen=True)
class Scene:
    """Ground truth of one video: agents, events in temporal order, canvas and frame count."""

    agents: tuple[Agent, ...]
    events: tuple[Event, ...]
    canvas: int
    num_frames: int
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def agent_keys(self) -> set[tuple[str, str, str]]:
        return {a.key for a in self.agents}

    def fingerprint(self) -> str:
        """A string that identifies the scene (used to prove that two splits share no video)."""
        ag = ";".join(f"{a.key}@{a.x:.3f},{a.y:.3f}" for a in self.agents)
        ev = ";".join(f"{e.agent}:{e.action}:{e.adverb}:{e.start}-{e.end}" for e in self.events)
        return f"{self.canvas}|{ag}|{ev}"


def event_windows(n_events: int, sampled: list[int]) -> list[tuple[int, int]]:
    """Frame windows for `n_events` events, aligned to the frames the model samples.

    Every event spans the same number (>= 2) of intervals between consecutive sampled frames, so each
    event has a sampled frame before, inside and after it; leftover intervals are idle at the start.

    Args:
        n_events: events in the video (1-3 with 8 sampled frames).
        sampled: the sorted frame indices the model sees (`hacalib.data.video.sample_frame_indices`).
    """
    gaps = len(sampled) - 1
    per = gaps // n_events
    if per < 2:
        raise ValueError(f"{n_events} events need at least {2 * n_events + 1} sampled frames, got {len(sampled)}")
    first = gaps - per * n_events
    return [(sampled[first + i * per], sampled[first + (i + 1) * per]) for i in range(n_events)]


def diameters(agent: Agent, canvas: int) -> float:
    return SIZE_FRAC[agent.size] * canvas


def trajectory(scene: Scene) -> np.ndarray:
    """Per-frame state of every agent: array (T, n_agents, 3) of (x, y, diameter) in pixels."""
    T, c = scene.num_frames, scene.canvas
    out = np.zeros((T, len(scene.agents), 3), dtype=np.float64)
    for i, a in enumerate(scene.agents):
        out[:, i] = (a.x, a.y, SIZE_FRAC[a.size] * c)
    f = np.arange(T, dtype=np.float64)
    for e in scene.events:
        t = np.clip((f - e.start) / max(e.end - e.start, 1), 0.0, 1.0)
        if e.action.startswith("move_"):
            d = MOVE_FRAC[e.adverb] * c * t
            axis, sign = {"left": (0, -1), "right": (0, 1), "up": (1, -1), "down": (1, 1)}[e.action[5:]]
            out[:, e.agent, axis] += sign * d
        elif e.action in ("grow", "shrink"):
            out[:, e.agent, 2] += (1 if e.action == "grow" else -1) * GROW_FRAC[e.adverb] * c * t
        elif e.action == "jump":
            # up and back down inside the event window: visible only in the sampled frames inside it
            out[:, e.agent, 1] -= MOVE_FRAC[e.adverb] * c * np.sin(np.pi * t)
        else:
            raise ValueError(f"unknown action {e.action!r}")
    return out


def distance_change(scene: Scene, traj: np.ndarray, event: Event, other: int) -> float:
    """Change of centre distance between the event's agent and `other` over the event (negative = closer)."""
    a, b = traj[event.start], traj[event.end]
    d0 = np.hypot(*(a[event.agent, :2] - a[other, :2]))
    d1 = np.hypot(*(b[event.agent, :2] - b[other, :2]))
    return float(d1 - d0)


def relation_holds(scene: Scene, traj: np.ndarray, event: Event, relation: str, other: int) -> bool:
    """Whether `event` moves its agent `relation` ("towards"/"away from") agent `other`, by a clear margin."""
    if not event.action.startswith("move_") or other == event.agent:
        return False
    dd = distance_change(scene, traj, event, other)
    thr = RELATION_FRAC * scene.canvas
    return dd <= -thr if relation == "towards" else dd >= thr


def valid_geometry(traj: np.ndarray, canvas: int) -> np.ndarray | bool:
    """All shapes inside the canvas, within the recognisable size range, never touching each other.

    `traj` is (T, n, 3), or (K, T, n, 3) for K candidate layouts at once (then a bool array of K).
    """
    batched = traj.ndim == 4
    tr = traj if batched else traj[None]
    x, y, d = tr[..., 0], tr[..., 1], tr[..., 2]
    r = d / 2
    ok = (d.min(axis=(1, 2)) >= MIN_DIAM_FRAC * canvas - 1e-9) & (d.max(axis=(1, 2)) <= MAX_DIAM_FRAC * canvas + 1e-9)
    ok &= ((x - r).min(axis=(1, 2)) >= 0) & ((y - r).min(axis=(1, 2)) >= 0)
    ok &= ((x + r).max(axis=(1, 2)) <= canvas) & ((y + r).max(axis=(1, 2)) <= canvas)
    gap = GAP_FRAC * canvas
    n = tr.shape[2]
    for i in range(n):
        for j in range(i + 1, n):
            # bounding-box separation: shapes fill their box (squares), so circles of radius r are not enough
            rr = r[..., i] + r[..., j]
            sep = np.maximum(np.abs(x[..., i] - x[..., j]) - rr, np.abs(y[..., i] - y[..., j]) - rr)
            ok &= sep.min(axis=1) >= gap
    return ok if batched else bool(ok[0])


def sample_scene(
    rng: np.random.Generator,
    *,
    canvas: int,
    num_frames: int,
    sampled: list[int],
    n_agents: int,
    n_events: int,
    actions: tuple[str, ...] = ACTIONS,
    agent_pattern: tuple[int, ...] | None = None,
    relation_prob: float = 0.6,
    tries: int = 30,
    layouts: int = 64,
) -> Scene | None:
    """Sample a scene with the given numbers of agents and events; None if no valid layout was found.

    Args:
        rng: the random generator (the only source of randomness).
        canvas, num_frames: canvas side in pixels and rendered frames.
        sampled: frame indices the model sees; events are aligned to them (`event_windows`).
        n_agents: 1-3 shapes; agents differ in (colour, shape), so "the red circle" names one agent.
        n_events: 1-3 events in sequence; an agent never does the same action twice in a video.
        actions: the actions to draw from (e.g. one action for a retrieval video of one template).
        agent_pattern: optional agent index per event (e.g. (0, 1, 0)); random when None.
        relation_prob: chance that a move with a clearly related other agent states the relation.
        tries: event plans (agents, actions) to try before giving up.
        layouts: initial positions tried at once per plan (motion does not depend on them).
    """
    windows = event_windows(n_events, sampled)
    pairs = [(s, c) for s in SHAPES for c in COLORS]
    for _ in range(tries):
        pick = rng.choice(len(pairs), size=n_agents, replace=False)
        sizes = rng.choice(len(SIZES), size=n_agents)
        pattern = agent_pattern or tuple(int(rng.integers(n_agents)) for _ in range(n_events))
        done: set[tuple[int, str]] = set()
        evs = []
        for k, (s, e) in enumerate(windows):
            ag = pattern[k]
            choices = [a for a in actions if (ag, a) not in done]
            if not choices:
                break
            act = choices[int(rng.integers(len(choices)))]
            done.add((ag, act))
            evs.append(Event(ag, act, ADVERBS[int(rng.integers(2))], s, e))
        if len(evs) < n_events:
            continue
        kinds = [(pairs[pick[i]], SIZES[sizes[i]]) for i in range(n_agents)]
        # motion is additive: trajectory at the origin + initial position, so many layouts are checked at once
        plan = Scene(tuple(Agent(sh, co, z, 0.0, 0.0) for (sh, co), z in kinds), tuple(evs), canvas, num_frames)
        motion = trajectory(plan)
        radii = np.array([SIZE_FRAC[z] * canvas / 2 for _, z in kinds])
        xy = rng.uniform(radii[None, :, None], canvas - radii[None, :, None], size=(layouts, n_agents, 2))
        cand = motion[None].repeat(layouts, axis=0)
        cand[..., :2] += xy[:, None]
        ok = np.flatnonzero(valid_geometry(cand, canvas))
        if ok.size == 0:
            continue
        x0 = xy[ok[0]]
        agents = tuple(Agent(sh, co, z, float(x0[i, 0]), float(x0[i, 1])) for i, ((sh, co), z) in enumerate(kinds))
        scene = Scene(agents, tuple(evs), canvas, num_frames)
        return _with_relations(scene, trajectory(scene), rng, relation_prob)
    return None


def _with_relations(scene: Scene, traj: np.ndarray, rng: np.random.Generator, p: float) -> Scene:
    """Attach a relation to moves that clearly approach / leave another agent (with probability p)."""
    events = []
    for e in scene.events:
        cands = []
        for o in range(len(scene.agents)):
            for rel in RELATIONS:
                if relation_holds(scene, traj, e, rel, o):
                    cands.append((rel, o))
        if cands and rng.random() < p:
            rel, o = cands[int(rng.integers(len(cands)))]
            e = Event(e.agent, e.action, e.adverb, e.start, e.end, rel, o)
        events.append(e)
    return Scene(scene.agents, tuple(events), scene.canvas, scene.num_frames)


def scene_to_dict(scene: Scene) -> dict:
    """JSON-ready form of a scene (inverse: `scene_from_dict`)."""
    return {
        "canvas": scene.canvas,
        "num_frames": scene.num_frames,
        "agents": [{"shape": a.shape, "color": a.color, "size": a.size, "x": a.x, "y": a.y} for a in scene.agents],
        "events": [{"agent": e.agent, "action": e.action, "adverb": e.adverb, "start": e.start, "end": e.end,
                    "relation": e.relation, "target": e.target} for e in scene.events],
    }


def scene_from_dict(d: dict) -> Scene:
    """The scene stored by `scene_to_dict` (floats round-trip exactly through JSON)."""
    return Scene(
        tuple(Agent(a["shape"], a["color"], a["size"], float(a["x"]), float(a["y"])) for a in d["agents"]),
        tuple(Event(e["agent"], e["action"], e["adverb"], e["start"], e["end"], e.get("relation"), e.get("target"))
              for e in d["events"]),
        int(d["canvas"]),
        int(d["num_frames"]),
    )
