"""Generation throughput against the loopback OpenAI server (a separate process).

Workload: the server answers every request after a fixed latency (2 s) with ~4k tokens of
text; our generate stage sends N prompts at concurrency C through the real AsyncOpenAI
client and stores them. Each client runs in its own process so CPU and RSS are its own.

    python benchmarks/generate.py            # 20,000 requests at concurrency 256 (~3 min)
    python benchmarks/generate.py --quick    # under a minute

Baselines measured in the same run: a plain sequential openai-client loop (sampled) and
datatrove's InferenceRunner (endpoint server type) on the same server, each bounded by
--baseline-timeout (60 s): one that hangs (datatrove's readiness probe once did, for over ten
minutes) is killed with its process group and reported with its reason. Then a run with
10% injected faults (429/5xx/dropped connections/cut bodies) checks lost and duplicate
replies. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FAULTS = {"429": 0.03, "500": 0.03, "503": 0.02, "drop": 0.01, "malformed": 0.01}


def _prompts(n: int, tag: str) -> list[dict[str, Any]]:
    topics = ("the boundary of a region", "a sorting routine", "tax on imported goods", "the speed of sound",
              "a recipe for bread", "the history of printing", "prime numbers", "a cache eviction policy")  # fmt: skip
    return [{"text": f"[{tag} {i}] Please explain {topics[i % len(topics)]} in detail, case {i}."} for i in range(n)]


def _rss_sampler(stop: threading.Event, out: list[float]) -> None:
    import psutil

    proc = psutil.Process()
    while not stop.wait(0.5):
        out.append(proc.memory_info().rss / 2**20)


def client_ours(base_url: str, n: int, conc: int, folder: str, tag: str, client: str) -> dict[str, Any]:
    """Our generate stage end to end (prompt loading, requests, store, parquet export)."""
    from builder.generate.stage import run_generate
    from builder.recipe import load_recipe
    from builder.workdir import WorkDir
    from tests.generate_helpers import openai_teacher, write_prompts, write_recipe

    root = Path(folder)
    write_prompts(root / "w", _prompts(n, tag))
    teacher = openai_teacher(base_url, client=client, limits={"concurrency": conc, "timeout_s": 120, "backoff_base_s": 0.5,
                                               "backoff_max_s": 4.0, "max_attempts": 10},
                             sampling={"max_tokens": 8192})  # fmt: skip
    recipe = load_recipe(write_recipe(root, {"teachers": [teacher]}))
    # Imports are a fixed start-up cost, not per request: load them before the clock starts, as
    # the datatrove baseline does (its timer starts after its imports too).
    import openai  # noqa: F401

    import builder.teachers.aiohttp_transport  # noqa: F401
    import builder.teachers.openai_backend  # noqa: F401

    samples: list[float] = []
    stop = threading.Event()
    threading.Thread(target=_rss_sampler, args=(stop, samples), daemon=True).start()
    c0, t0 = time.process_time(), time.perf_counter()
    res = run_generate(recipe, WorkDir(root / "w"))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    stop.set()
    import pyarrow.parquet as pq

    rows = pq.read_table(sorted((root / "w" / "generate" / "replies").glob("*.parquet")), columns=["generation_id", "status"]).to_pydict()  # fmt: skip
    half = samples[len(samples) // 2] if samples else 0.0
    return {
        "wall_s": wall, "cpu_s": cpu, "client": client, "ok": res.teachers[0].ok, "rows": len(rows["status"]),
        "ok_rows": sum(s == "ok" for s in rows["status"]), "unique_ids": len(set(rows["generation_id"])),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_mid_mb": half,
    }  # fmt: skip


def client_sequential(base_url: str, n: int) -> dict[str, Any]:
    """The plain way: one openai client, one request after another."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="EMPTY", max_retries=0)
    t0 = time.perf_counter()
    for p in _prompts(n, "seq"):
        r = client.chat.completions.create(model="deepseek-reasoner", messages=[{"role": "user", "content": p["text"]}],
                                           max_tokens=8192, temperature=0.6, top_p=0.95)  # fmt: skip
        assert r.choices[0].message.content
    return {"wall_s": time.perf_counter() - t0, "requests": n}


def client_datatrove(base_url: str, n: int, conc: int, folder: str) -> dict[str, Any]:
    """datatrove 0.10.1 InferenceRunner with server_type="endpoint" on the same server."""
    from datatrove.data import Document
    from datatrove.pipeline.inference.run_inference import InferenceConfig, InferenceRunner
    from datatrove.pipeline.writers import JsonlWriter

    async def rollout(document: Document, generate: Any) -> Any:
        return await generate({"messages": [{"role": "user", "content": document.text}], "max_tokens": 8192})

    cfg = InferenceConfig(server_type="endpoint", model_name_or_path="deepseek-reasoner",
                          endpoint_url=base_url.removesuffix("/v1"), max_concurrent_generations=conc,
                          metric_interval=10_000, request_timeout=120)  # fmt: skip
    runner = InferenceRunner(rollout, cfg, JsonlWriter(folder))
    docs = [Document(text=p["text"], id=str(i)) for i, p in enumerate(_prompts(n, "dt"))]
    t0 = time.perf_counter()
    runner.run(iter(docs), rank=0, world_size=1)
    return {"wall_s": time.perf_counter() - t0, "requests": n}


class BaselineTimeout(RuntimeError):
    pass


def _child(role: str, timeout_s: float = 1800, **kw: Any) -> dict[str, Any]:
    """Run one client in its own process group; past `timeout_s` the whole group is killed (a
    baseline stuck in a readiness probe must not hold the benchmark) and BaselineTimeout raised."""
    cmd = [sys.executable, __file__, "--role", role, "--kw", json.dumps(kw)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise BaselineTimeout(f"{role} did not finish within {timeout_s:.0f} s (stopped)") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{role} client failed: {(stderr or stdout).strip().splitlines()[-1:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller workload, under a minute")
    ap.add_argument("--requests", type=int)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--latency", type=float, default=2.0)
    ap.add_argument("--tokens", type=int, default=4000, help="tokens per reply (4 chars a token)")
    ap.add_argument("--baseline-timeout", type=float, default=60.0,
                    help="seconds a baseline may run before it is stopped and reported with its reason")  # fmt: skip
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--kw", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role:  # a client process
        fn = {"ours": client_ours, "sequential": client_sequential, "datatrove": client_datatrove}[args.role]
        print(json.dumps(fn(**json.loads(args.kw))))
        return {}

    from tests.servers.openai_server import run_server_process

    n = args.requests or (1024 if args.quick else 20_000)
    conc, lat = args.concurrency, args.latency
    n_seq = 3 if args.quick else 20
    n_fault = 500 if args.quick else 4000
    tmp = Path(tempfile.mkdtemp(prefix="bench-generate-"))
    try:
        with run_server_process(latency=lat, tokens_per_reply=args.tokens) as srv:
            runs: dict[str, dict[str, Any]] = {}
            # Headline: client aiohttp; the openai client alongside (full run only: --quick stays short).
            for client in ("aiohttp",) if args.quick else ("aiohttp", "openai"):
                srv.reset()
                r = _child("ours", base_url=srv.base_url, n=n, conc=conc, folder=str(tmp / client), tag=client, client=client)
                st = srv.stats()
                r["rate"] = n / r["wall_s"]
                runs[client] = r
                print(f"ours (client: {client}): {n:,} requests in {r['wall_s']:.1f}s = {r['rate']:.1f} req/s "
                      f"(ideal {conc / lat:.1f}); client CPU {r['cpu_s']:.1f}s; server in-flight max {st['in_flight_max']}; "
                      f"peak RSS {r['peak_rss_mb']:.0f} MB (mid-run {r['rss_mid_mb']:.0f} MB)")  # fmt: skip
                assert r["ok_rows"] == n and st["requests_total"] == n, (r, st["requests_total"])
            ours, ideal = runs["aiohttp"], conc / lat
            achieved = ours["rate"]

            seq_rate, seq_reason = 0.0, ""
            try:
                seq = _child("sequential", timeout_s=args.baseline_timeout, base_url=srv.base_url, n=n_seq)
                seq_rate = seq["requests"] / seq["wall_s"]
                print(f"sequential openai loop: {seq_rate:.2f} req/s ({n_seq} requests sampled)")
            except Exception as e:  # noqa: BLE001 - any failure is reported as the reason
                seq_reason = str(e)[:300]
                print(f"sequential baseline could not run: {seq_reason}")

            dt_speedup: float | None = None
            dt_rate = 0.0
            dt_reason = ""
            try:
                dt = _child("datatrove", timeout_s=args.baseline_timeout, base_url=srv.base_url, n=min(n, 2048),
                            conc=conc, folder=str(tmp / "dt"))  # fmt: skip
                dt_rate = dt["requests"] / dt["wall_s"]
                dt_speedup = achieved / dt_rate
                print(f"datatrove InferenceRunner (endpoint): {dt_rate:.1f} req/s on {dt['requests']} requests")
            except Exception as e:  # noqa: BLE001 - any failure is reported as the reason
                dt_reason = str(e)[:300]
                print(f"datatrove InferenceRunner could not run: {dt_reason}")

            srv.control(reset=True, config={"fault_rates": FAULTS, "latency": min(lat, 0.25 if args.quick else 0.5), "seed": 3})
            faulty = _child("ours", base_url=srv.base_url, n=n_fault, conc=conc, folder=str(tmp / "faults"), tag="fault",
                            client="openai")  # fmt: skip
            fst = srv.stats()
            faults = sum(fst["by_fault"].values())
            lost = n_fault - faulty["ok_rows"]
            # Every injected fault costs one retry; any request beyond that re-asked for a stored reply.
            duplicates = fst["requests_total"] - faults - n_fault + (faulty["rows"] - faulty["unique_ids"])
            print(f"faults: {n_fault} prompts, {faults} injected {fst['by_fault']}, lost {lost}, duplicates {duplicates}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = {
        "requests": n,
        "client": "aiohttp",
        "concurrency": conc,
        "latency_s": lat,
        "requests_per_s": round(achieved, 2),
        "throughput_vs_ideal": round(achieved / ideal, 3),
        "client_cpu_ms_per_request": round(ours["cpu_s"] / n * 1000, 3),
        "peak_rss_mb": round(ours["peak_rss_mb"], 1),
        "rss_mid_run_mb": round(ours["rss_mid_mb"], 1),
        "speedup_vs_sequential": round(achieved / seq_rate, 1) if seq_rate else None,
        "sequential_note": seq_reason or None,
        "speedup_vs_datatrove_runner": round(dt_speedup, 2) if dt_speedup else None,
        "datatrove_runner_note": dt_reason or None,
        "fault_requests": n_fault,
        "faults_injected": faults,
        "lost": lost,
        "duplicates": duplicates,
        "openai_client": None if "openai" not in runs else {
            "transport": _transport(),
            "throughput_vs_ideal": round(runs["openai"]["rate"] / ideal, 3),
            "client_cpu_ms_per_request": round(runs["openai"]["cpu_s"] / n * 1000, 3),
            "peak_rss_mb": round(runs["openai"]["peak_rss_mb"], 1),
            "speedup_vs_sequential": round(runs["openai"]["rate"] / seq_rate, 1) if seq_rate else None,
            "speedup_vs_datatrove_runner": round(runs["openai"]["rate"] / dt_rate, 2) if dt_speedup else None,
        },
    }
    print(json.dumps(out))
    return out


def _transport() -> str:
    import openai

    try:
        openai.DefaultAioHttpClient()
        return "openai.AsyncOpenAI + aiohttp (openai[aiohttp])"
    except (RuntimeError, AttributeError, ImportError):
        return "openai.AsyncOpenAI + httpx"


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
