"""A demo_reviews landing day built to fail every gate threshold of the demo contract.

Known answers, by construction (thresholds from include/contracts/demo_reviews.yaml):
- quarantine: 800 unparseable lines of 3,200 -> 25% > 20%;
- duplicates: every clean item copied 10 times, 1,800 rows of 3,200 -> 56% > 50%;
- agreement: 140 of 200 items carry three coin-flip votes -> alpha far below 0.5;
- label errors: those coin-flip majorities contradict the text about half the time -> > 8%;
- class balance: no negative item at all (the previous day had ~30%) -> drift > 15%, and
  0 negative items per split < 5;
- personal data: the 140 noisy items end with an e-mail address -> 70% of items > 5%.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from governance.demo.text import compose_review

CLEAN_ITEMS, NOISY_ITEMS, COPIES, GARBAGE_LINES = 60, 140, 10, 800
ANNOTATORS = [f"ann_{n:02d}" for n in range(1, 13)]
EXPECTED_FAILURES = {
    "max_quarantine_rate",
    "max_duplicate_rate",
    "min_alpha",
    "max_suspected_error_rate",
    "min_rows_per_class_per_split",
    "max_class_drift",
    "max_pii_rate",
}


def _vote_lines(item_id: str, text: str, product: str, labels: list[str], rng) -> list[str]:
    annotators = rng.sample(ANNOTATORS, len(labels))
    return [
        json.dumps(
            {"item_id": item_id, "product": product, "text": text, "annotator": a, "label": label}
        )
        for a, label in zip(annotators, labels, strict=True)
    ]


def write_failing_day(landing: Path, day: str, seed: int = 3) -> int:
    """Replace the day's landing folder with this export and a ready marker; returns the number
    of lines written."""
    rng = random.Random(seed)
    folder = landing / "demo_reviews" / day
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    lines: list[str] = []
    stamp = day.replace("-", "")
    for number in range(CLEAN_ITEMS + NOISY_ITEMS):
        label = "positive" if rng.random() < 0.9 else "neutral"
        review = compose_review(rng, label)
        if number < CLEAN_ITEMS:
            for copy in range(COPIES + 1):
                lines += _vote_lines(
                    f"bad-{stamp}-{number:03d}-{copy:02d}",
                    review.text,
                    review.product,
                    [label] * 3,
                    rng,
                )
        else:
            votes = [rng.choice(["positive", "neutral"]) for _ in range(3)]
            text = f"{review.text} Mail me at buyer{number}@example.org"
            lines += _vote_lines(f"bad-{stamp}-{number:03d}", text, review.product, votes, rng)
    lines += ["{not json" for _ in range(GARBAGE_LINES)]
    rng.shuffle(lines)
    (folder / "export-001.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "_SUCCESS").write_text("", encoding="utf-8")
    return len(lines)
