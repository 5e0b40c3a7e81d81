"""Judging open-ended answers: the offline QA judge and an optional LLM judge.

`judge_offline` (first answer span, normalised exact match and containment, `hacalib.metrics.qa`) is the default;
`llm_judge` sends Video-ChatGPT's evaluation prompt to an OpenAI-compatible chat endpoint and returns its
accuracy and mean 0-5 score. It needs a key the caller passes in; nothing here reads it from the
environment, logs it, or puts it in an error message.

May import: numpy, `hacalib.metrics`.
"""

from __future__ import annotations

import ast
import json
import time
import urllib.error
import urllib.request
from typing import Sequence

import numpy as np

from ..metrics import contains_answer, exact_match, first_answer_match


def judge_offline(predictions: Sequence[str], answers: Sequence[str]) -> dict:
    """Offline QA judges: the mean of the first answer span's match (the headline), normalised exact match and
    containment, with per-item arrays."""
    first = first_answer_match(predictions, answers)
    em, contains = exact_match(predictions, answers), contains_answer(predictions, answers)
    return {"first_answer": float(first.mean()), "exact_match": float(em.mean()), "contains": float(contains.mean()),
            "n": int(em.size), "per_item_first_answer": first, "per_item_exact_match": em,
            "per_item_contains": contains}


# Video-ChatGPT's evaluation prompt, verbatim (mbzuai-oryx/Video-ChatGPT,
# quantitative_evaluation/evaluate_activitynet_qa.py; the same text judges MSRVTT-QA). The adjacent string
# literals there are joined without separators, so "task:------##INSTRUCTIONS: " is as in the original.
JUDGE_SYSTEM = (
    "You are an intelligent chatbot designed for evaluating the correctness of generative outputs for question-answer pairs. "
    "Your task is to compare the predicted answer with the correct answer and determine if they match meaningfully. Here's how you can accomplish the task:"
    "------"
    "##INSTRUCTIONS: "
    "- Focus on the meaningful match between the predicted answer and the correct answer.\n"
    "- Consider synonyms or paraphrases as valid matches.\n"
    "- Evaluate the correctness of the prediction compared to the answer."
)
JUDGE_USER = (
    "Please evaluate the following video-based question-answer pair:\n\n"
    "Question: {question}\n"
    "Correct Answer: {answer}\n"
    "Predicted Answer: {pred}\n\n"
    "Provide your evaluation only as a yes/no and score where the score is an integer value between 0 and 5, with 5 indicating the highest meaningful match. "
    "Please generate the response in the form of a Python dictionary string with keys 'pred' and 'score', where value of 'pred' is  a string of 'yes' or 'no' and value of 'score' is in INTEGER, not STRING."
    "DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only provide the Python dictionary string. "
    "For example, your response should look like this: {{'pred': 'yes', 'score': 4.8}}."
)
JUDGE_MODEL = "gpt-3.5-turbo"  # the model Video-ChatGPT's script names


class JudgeError(RuntimeError):
    """The endpoint failed or answered something that is not a {'pred', 'score'} dict."""


def judge_messages(question: str, answer: str, pred: str) -> list[dict]:
    """The chat messages Video-ChatGPT sends for one (question, answer, prediction)."""
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": JUDGE_USER.format(question=question, answer=answer, pred=pred)},
    ]


def parse_judgement(content: str) -> tuple[str, int]:
    """('yes'|'no'|other, int score) from the judge's reply, read as a Python literal as Video-ChatGPT does."""
    try:
        d = ast.literal_eval(content.strip())
        return str(d["pred"]), int(d["score"])
    except (ValueError, SyntaxError, KeyError, TypeError) as exc:
        raise JudgeError(f"reply is not a {{'pred', 'score'}} dict: {content[:200]!r}") from exc


def _post(url: str, payload: dict, api_key: str, timeout: float) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read().decode())
    except urllib.error.HTTPError as exc:  # the message holds status and URL, never the request headers
        raise JudgeError(f"HTTP {exc.code} from {url}") from None
    except (urllib.error.URLError, TimeoutError, OSError, json.JSONDecodeError) as exc:
        raise JudgeError(f"{type(exc).__name__} calling {url}") from None


def llm_judge(
    questions: Sequence[str],
    answers: Sequence[str],
    predictions: Sequence[str],
    *,
    base_url: str,
    api_key: str,
    model: str = JUDGE_MODEL,
    timeout: float = 60.0,
    max_retries: int = 3,
    retry_wait: float = 2.0,
) -> dict:
    """Video-ChatGPT's LLM judge through an OpenAI-compatible `POST {base_url}/chat/completions`.

    Args:
        questions, answers, predictions: aligned lists.
        base_url: e.g. "https://api.openai.com/v1" or a local server's ".../v1".
        api_key: sent as a Bearer token; never stored, logged or put in messages.
        model: the judge model name.
        timeout: seconds per request.
        max_retries: further attempts per item after a failure (the original script retries forever).
        retry_wait: seconds before the first retry, doubled each time.

    Returns dict: accuracy = yes / (yes + no) and score = mean integer score over the judged items (as
    Video-ChatGPT computes them), counts n, n_yes, n_no, n_failed, and `items` (per item (pred, score) or None).
    """
    if not (len(questions) == len(answers) == len(predictions)):
        raise ValueError(f"{len(questions)} questions, {len(answers)} answers, {len(predictions)} predictions")
    url = base_url.rstrip("/") + "/chat/completions"
    items: list[tuple[str, int] | None] = []
    for q, a, p in zip(questions, answers, predictions):
        payload = {"model": model, "messages": judge_messages(q, a, p)}
        result = None
        for attempt in range(max_retries + 1):
            try:
                reply = _post(url, payload, api_key, timeout)
                result = parse_judgement(reply["choices"][0]["message"]["content"])
                break
            except (JudgeError, KeyError, IndexError, TypeError):
                if attempt < max_retries:
                    time.sleep(retry_wait * 2**attempt)
        items.append(result)
    judged = [r for r in items if r is not None]
    n_yes = sum("yes" in pred.lower() for pred, _ in judged)
    n_no = sum("yes" not in pred.lower() and "no" in pred.lower() for pred, _ in judged)
    return {
        "accuracy": n_yes / (n_yes + n_no) if n_yes + n_no else float("nan"),
        "score": float(np.mean([s for _, s in judged])) if judged else float("nan"),
        "n": len(items), "n_yes": n_yes, "n_no": n_no, "n_failed": len(items) - len(judged), "items": items,
    }
