"""Bytes a run writes per dialogue, spans plain (as before: traces.jsonl) and compressed (traces.jsonl.zst).

The same config runs twice against the loopback server (its canned replies: plan, six turns, a
critique, revision and verification of each judged turn): once into a directory holding an empty
traces.jsonl (a run resumed in an older directory keeps writing it plain), once into an empty one
(compressed, as every new run). Prints the span file's and the whole directory's bytes per dialogue,
the ratio, and the wall time of each run and of reading the spans back.

The canned replies repeat word for word from dialogue to dialogue, which flatters any compressor;
``--varied`` gives every persona turn, critique and revision its own seeded random words (from a
vocabulary of 5,000 made-up words, Zipf-distributed like text), so only what a real run repeats
repeats: the prompts, the dialogue so far, the JSON keys.

    flock /tmp/sparring-engine.lock python -m benchmarks.trace_bytes --dialogues 1000 [--varied]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks._harness import loopback_server, write_config  # noqa: E402
from benchmarks.loopback import FakeOpenAIServer  # noqa: E402
from benchmarks.loopback.canned import REVISED, agent_reply  # noqa: E402
from sparring.traces.read import iter_spans  # noqa: E402
from sparring.traces.spanfile import PLAIN, span_files  # noqa: E402


def one_run(folder: Path, base_url: str, dialogues: int, *, plain: bool) -> dict[str, Any]:
    config = write_config(folder, base_url, dialogues=dialogues, concurrency=16, max_in_flight=64)
    run_dir = folder / "run"
    run_dir.mkdir()
    if plain:
        (run_dir / PLAIN).touch()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sparring.graphs.cli", "run", str(config), "--out", str(run_dir),
                           "-q", "--set", "report.embeddings=false"], cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"the run failed ({proc.returncode}): {proc.stderr}")
    [spans] = span_files(run_dir)
    t1 = time.perf_counter()
    count = sum(1 for _ in iter_spans(run_dir))
    read_s = time.perf_counter() - t1
    total = sum(p.stat().st_size for p in run_dir.iterdir() if p.is_file())
    return {"file": spans.name, "span_bytes": spans.stat().st_size, "dir_bytes": total, "spans": count,
            "run_s": wall, "read_s": read_s}


class VariedReplies:
    """The canned replies, with seeded random words in every free text (a different draw per call)."""

    def __init__(self, seed: int = 26) -> None:
        self.rng = random.Random(seed)
        letters = "etaoinshrdlucmfwypvbgkjqxz"
        self.words = ["".join(self.rng.choices(letters, k=self.rng.randint(2, 9))) for _ in range(5000)]
        self.weights = [1 / (rank + 1) for rank in range(len(self.words))]

    def text(self, n: int) -> str:
        return " ".join(self.rng.choices(self.words, self.weights, k=n)).capitalize() + "."

    def __call__(self, body: dict[str, Any]) -> str:
        canned = agent_reply(body)
        fmt = body.get("response_format") or {}
        if fmt.get("type") != "json_schema":
            return self.text(self.rng.randint(25, 60))
        data = json.loads(canned)
        title = (fmt.get("json_schema") or {}).get("schema", {}).get("title")
        if title == "CritiqueOutput":
            data["reasoning"] = self.text(30)
        elif title == "RevisionOutput":
            data["revision"] = f"{REVISED} {self.text(40)}"
        elif title in ("PlanOutput", "AttackPlan"):
            data.update({k: self.text(40) for k in ("reasoning", "brief_a", "brief_b") if k in data})
        return json.dumps(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialogues", type=int, default=1000)
    parser.add_argument("--varied", action="store_true", help="Random words in every reply (see above).")
    args = parser.parse_args()
    n = args.dialogues
    results = {}
    for plain in (True, False):
        server = FakeOpenAIServer(responder=VariedReplies(), record_requests=False) if args.varied else None
        with server or nullcontext(), (nullcontext(server.base_url) if server else loopback_server(0.0)) as url, \
                tempfile.TemporaryDirectory(prefix="sparring-trace-bytes-") as tmp:
            results[plain] = one_run(Path(tmp), url, n, plain=plain)
    before, after = results[True], results[False]
    replies = "varied replies" if args.varied else "canned replies"
    print(f"{n} dialogues, {before['spans']} spans (loopback server, {replies}, 6 turns)")
    for label, r in (("before (plain)", before), ("after (zstd)", after)):
        print(f"  {label:15} {r['file']:17} {r['span_bytes'] / n / 1024:8.1f} KB/dialogue; run directory "
              f"{r['dir_bytes'] / n / 1024:6.1f} KB/dialogue; run {r['run_s']:5.1f} s; spans read back in "
              f"{r['read_s']:.2f} s")
    print(f"  span file: {after['span_bytes'] / before['span_bytes']:.3f} of before "
          f"({before['span_bytes'] / after['span_bytes']:.1f}x smaller); run directory: "
          f"{after['dir_bytes'] / before['dir_bytes']:.3f} of before")


if __name__ == "__main__":
    main()
