"""QA generation grouped by video, corrections, offline judge, and the LLM judge against a local fake server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest
import torch

from hacalib import prompts
from hacalib.data import QAItem
from hacalib.data.video import write_mp4
from hacalib.errors import DataError
from hacalib.models import build_toy_model
from hacalib.scoring.generation import answer_questions, generate_corrections, generate_texts
from hacalib.scoring.judges import JUDGE_SYSTEM, JudgeError, judge_messages, judge_offline, llm_judge, parse_judgement
from hacalib.scoring.requests import ScoreRequest

WORDS = "a the red blue green circle square triangle moves left right up down grows shrinks quickly slowly then it what color".split()
QUESTIONS = ["what moves?", "what color is the circle that moves left quickly?", "what grows?", "what color is it?"]


@pytest.fixture(scope="module")
def toy():
    model, proc = build_toy_model(WORDS, seed=0)
    # A freshly initialised model repeats one token whatever the input; larger output weights make its
    # greedy text depend on the prompt and the video, so batching mistakes would show.
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for name, w in model.named_parameters():
            if w.dim() == 2 and ("language_model" in name or "projector" in name or "lm_head" in name):
                w.normal_(0, 0.3)
    return model, proc


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8) for _ in range(2)]


def _reference(model, proc, video, prompt, max_new_tokens):
    """One prompt through the processor and a plain generate call (pixels in, no grouping, no padding)."""
    inputs = proc(text=[prompt], videos=[video], return_tensors="pt")
    with torch.no_grad():
        seq = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return proc.tokenizer.decode(seq[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def test_grouped_batched_generation_equals_one_at_a_time(toy, frames):
    model, proc = toy
    reqs = [ScoreRequest(frames[i % 2], q, video_id=f"v{i % 2}") for i, q in enumerate(QUESTIONS)]
    texts = [prompts.qa_prompt(q) for q in QUESTIONS]
    batched = generate_texts(model, proc, reqs, texts, max_new_tokens=5, batch_size=4)
    ref = [_reference(model, proc, frames[i % 2], t, 5) for i, t in enumerate(texts)]
    assert batched == ref
    assert len(set(ref)) > 1  # the outputs differ, so a mix-up would be visible
    assert all(len(t.split()) >= 1 for t in ref)


def test_answer_questions_reads_video_files(toy, frames, tmp_path):
    model, proc = toy
    paths = []
    for i, f in enumerate(frames):
        paths.append(tmp_path / f"video{i}.mp4")
        write_mp4(paths[-1], f, fps=8)
    items = [QAItem(f"video{i % 2}", q, i, "circle", "what", i, str(paths[i % 2])) for i, q in enumerate(QUESTIONS)]
    got = answer_questions(model, proc, items, max_new_tokens=3, batch_size=2)
    ref = [_reference(model, proc, frames[i % 2], prompts.qa_prompt(q), 3) for i, q in enumerate(QUESTIONS)]
    assert got == ref
    with pytest.raises(DataError, match="test_q.json, row 0, key 'video_name'"):
        answer_questions(model, proc, [QAItem("v", "what?", 1, "a", "what", 0)])


def test_generate_corrections_answers_the_entailment_prompt(toy, frames):
    model, proc = toy
    reqs = [ScoreRequest(frames[0], "a red circle moves left", video_id="v0")]
    got = generate_corrections(model, proc, reqs, max_new_tokens=4)
    assert got == [_reference(model, proc, frames[0], prompts.entail_prompt("a red circle moves left"), 4)]


def test_judge_offline():
    r = judge_offline(["A man.", "the dog runs", "cat"], ["man", "dog", "bird"])
    assert r["exact_match"] == pytest.approx(1 / 3) and r["contains"] == pytest.approx(2 / 3) and r["n"] == 3


def test_judge_prompt_and_parsing():
    msgs = judge_messages("what is it?", "cat", "a cat")
    assert msgs[0]["content"] == JUDGE_SYSTEM and "task:------##INSTRUCTIONS: " in JUDGE_SYSTEM
    assert "Question: what is it?\nCorrect Answer: cat\nPredicted Answer: a cat\n\n" in msgs[1]["content"]
    assert msgs[1]["content"].endswith("{'pred': 'yes', 'score': 4.8}.")
    assert parse_judgement(" {'pred': 'yes', 'score': 4} ") == ("yes", 4)
    assert parse_judgement("{'pred': 'no', 'score': 2.9}") == ("no", 2)  # int(), as Video-ChatGPT
    with pytest.raises(JudgeError):
        parse_judgement("The answer is correct.")


class _FakeJudge(BaseHTTPRequestHandler):
    """Answers yes/5 when the prediction contains the answer, no/1 otherwise; fails the first call with 500."""

    calls: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append((self.path, self.headers.get("Authorization"), body))
        if len(type(self).calls) == 1:
            self.send_response(500)
            self.end_headers()
            return
        user = body["messages"][1]["content"]
        answer = user.split("Correct Answer: ")[1].split("\n")[0]
        pred = user.split("Predicted Answer: ")[1].split("\n")[0]
        if pred == "garbage":
            content = "I cannot judge this."
        else:
            content = "{'pred': 'yes', 'score': 5}" if answer in pred else "{'pred': 'no', 'score': 1}"
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_server():
    _FakeJudge.calls = []
    server = HTTPServer(("127.0.0.1", 0), _FakeJudge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_llm_judge_against_local_server(fake_server, capsys):
    key = "sk-test-secret-123"
    r = llm_judge(
        ["what is it?", "who runs?", "what color?", "where?"], ["cat", "dog", "red", "park"],
        ["a cat", "a man", "red", "garbage"],
        base_url=fake_server, api_key=key, timeout=5, max_retries=1, retry_wait=0,
    )
    # call 1 fails with 500 and is retried; "garbage" gets an unparsable reply twice and is left out
    assert r["items"] == [("yes", 5), ("no", 1), ("yes", 5), None]
    assert (r["n"], r["n_yes"], r["n_no"], r["n_failed"]) == (4, 2, 1, 1)
    assert r["accuracy"] == pytest.approx(2 / 3) and r["score"] == pytest.approx(11 / 3)
    path, auth, body = _FakeJudge.calls[0]
    assert path == "/v1/chat/completions" and auth == f"Bearer {key}" and body["model"] == "gpt-3.5-turbo"
    assert len(_FakeJudge.calls) == 6
    out = capsys.readouterr()
    assert key not in out.out + out.err + json.dumps(r)


def test_llm_judge_unreachable_endpoint_is_bounded():
    # nothing listens on port 9 of 127.0.0.1: every attempt fails fast and the item is counted as failed
    r = llm_judge(["q"], ["a"], ["a"], base_url="http://127.0.0.1:9/v1", api_key="k", timeout=2, max_retries=1, retry_wait=0)
    assert r["n_failed"] == 1 and np.isnan(r["accuracy"])
