"""Multiple-choice rows for the decontamination benchmarks: seeded, from real rows in ../shared/corpus.

- ``leak_reordered``: an MMLU test item with its choices shuffled (never left in order) and
  relabelled in a common layout ("A. ", "(A) ", "A) ", "A: ", inline "(A) x (B) y"), bare or
  in a prompt template ("The following is a multiple choice question about …", "Answer:").
- ``clean_mcq``: real MCQs of sets that are not the recipe's benchmarks, choices included, in the
  same layouts: MMLU dev/val, MMLU-Pro (10 options), C-Eval dev/val, CMMLU. Rows whose question
  holds a whole benchmark item or shares a passage with one are left out, as in adversarial.py.

Used by benchmarks/curate.py and tests/test_decontam_mcq.py.
"""

from __future__ import annotations

import csv
import io
import json
import random
import zipfile
from collections import Counter
from pathlib import Path

import adversarial as adv

LAYOUTS = ("{k}. {c}", "({k}) {c}", "{k}) {c}", "{k}: {c}", "inline")
WRAPS = (
    "{body}",
    "{body}\nAnswer:",
    "The following is a multiple choice question about {subject}.\n\n{body}\nAnswer:",
    "Answer the following question. Think step by step.\n\n{body}",
    "{body}\n\nAnswer with the letter of the correct option.",
)
LABELS = "ABCDEFGHIJ"


def mcq_rows(zpath: Path, prefixes: tuple[str, ...], question_col: int, header: bool) -> list[tuple[str, str, list[str]]]:
    """(subject, question, choices) of each row of the MCQ CSVs in a zip whose names start with a prefix."""
    out = []
    with zipfile.ZipFile(zpath) as z:
        for name in sorted(z.namelist()):
            if name.endswith(".csv") and name.startswith(prefixes):
                subject = name.rsplit("/", 1)[-1].removesuffix(".csv")
                for suffix in ("_test", "_dev", "_val"):
                    subject = subject.removesuffix(suffix)
                rows = list(csv.reader(io.TextIOWrapper(z.open(name), encoding="utf-8")))
                q = question_col
                out += [(subject, r[q], r[q + 1 : q + 5]) for r in rows[1 if header else 0 :] if len(r) > q + 4]
    return out


def layout(rng: random.Random, subject: str, question: str, choices: list[str]) -> str:
    """An MCQ prompt: the question, the choices under labels in a random layout, a random template."""
    form = rng.choice(LAYOUTS)
    if form == "inline":
        body = question + " " + " ".join(f"({LABELS[i]}) {c}" for i, c in enumerate(choices))
    else:
        body = question + "\n" + "\n".join(form.format(k=LABELS[i], c=c) for i, c in enumerate(choices))
    return rng.choice(WRAPS).format(body=body, subject=subject.replace("_", " "))


def reordered_leaks(seed: int, n: int, corpus: Path = adv.CORPUS) -> list[adv.Row]:
    """`n` MMLU test items (ids as in data/benchmarks/mmlu_test.jsonl), choices shuffled and relabelled."""
    rng = random.Random(seed)
    items, seen = [], Counter[str]()
    for subject, question, choices in mcq_rows(corpus / "mmlu-ceval-cmmlu" / "mmlu.zip", ("data/test/",), 0, False):
        items.append((f"mmlu-{subject}-{seen[subject]}", subject, question, choices))
        seen[subject] += 1
    rows = []
    for item_id, subject, question, choices in rng.sample(items, n):
        order = list(range(len(choices)))
        while order == sorted(order):
            rng.shuffle(order)
        text = layout(rng, subject, question, [choices[j] for j in order])
        rows.append(adv.Row(text, "en", "leak_reordered", "mmlu", item_id))
    return rows


def clean_mcq(seed: int, items: list[str], corpus: Path = adv.CORPUS) -> list[adv.Row]:
    """Real MCQs of non-benchmark sets with their choices (see the module docstring)."""
    rng = random.Random(seed)
    z = corpus / "mmlu-ceval-cmmlu"
    found = [("en", "mmlu_dev_val", r) for r in mcq_rows(z / "mmlu.zip", ("data/dev/", "data/val/"), 0, False)]
    found += [("zh", "ceval_dev_val", r) for r in mcq_rows(z / "ceval.zip", ("dev/", "val/"), 1, True)]
    found += [("zh", "cmmlu", r) for r in mcq_rows(z / "cmmlu.zip", ("dev/", "test/"), 1, True)]
    with (corpus / "r1-mmlupro-pcmb-traces" / "pcmb_traces.jsonl").open(encoding="utf-8") as f:
        pro = [json.loads(line) for line in f if line.strip()]
    found += [("en", "mmlu_pro", (r["subject"], r["question"], r["options"])) for r in pro]
    questions = [q for _, _, (_, q, _) in found]
    bad = [a or b for a, b in zip(adv.contains_an_item(questions, items), adv.shares_a_passage(questions, items))]
    return [adv.Row(layout(rng, s, q, c), lang, "clean_mcq", src)
            for (lang, src, (s, q, c)), x in zip(found, bad) if not x]  # fmt: skip
