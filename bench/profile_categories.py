"""Where a worker's CPU goes, by stage of the request: reads py-spy's raw output
(`py-spy record --gil -f raw`) and puts each sample in the stage named by its innermost frame
that names one (issue 15, docs/performance.md).

    python bench/profile_categories.py PROFILE.txt
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# (stage, substrings of a frame "function (file:line)"), checked from the innermost frame out.
STAGES: list[tuple[str, list[str]]] = [
    ("token check (PyJWT)", ["TokenKeys.verify", "TokenKeys._verify"]),
    ("resident token issue (PyJWT)", ["TokenKeys.issue"]),
    ("structlog request line", ["structlog", "BoundLogger", "_make_stamper", "JSONRenderer", "BytesLogger"]),
    ("prometheus metrics", ["prometheus_client", "values.py", "metrics.py", "mmap_dict"]),
    ("vault: key lookup + AES seal", ["Vault.seal", "Vault._persons_for"]),
    ("load the case (select + replay)", ["Cases.get_case"]),
    ("save: psycopg (lock, notify, insert, commit)", ["insert_events", "EventStore.put", "Application._record"]),
    ("save: encode events (transcoder, mapper)", ["to_stored_event", "Mapper", "transcoder", "Transcoder"]),
    ("group commit bookkeeping", ["GroupCommit", "_Pending"]),
    (
        "domain: decide (Case, policy, calendar)",
        [
            "Case.",
            "decide",
            "deadlines",
            "calendar.py",
            "case_number",
            "CaseNumberIssued",
            "Cases.register",
            "Cases._execute",
            "Cases.act",
            "Cases._save",
            "Cases.classify",
        ],
    ),
    (
        "thread pool hop (anyio, queue, GIL hand-off)",
        [
            "run_in_threadpool",
            "to_thread",
            "run_sync_in_worker_thread",
            "Queue.",
            "Condition.",
            "WorkerThread",
            "_report_result",
            # the command path's own executor (api/command_path.py)
            "in_thread",
            "run_in_executor",
            "ThreadPoolExecutor",
            "_worker (concurrent",
            "wrap_future",
            "_chain_future",
            "_copy_future_state",
            "_call_set_state",
        ],
    ),
    (
        "body: JSON parse + pydantic validation",
        [
            "request_body_to_args",
            "validate_python",
            "StrictJSONRequest.json",
            "Request.body",
            "BaseModel",
            "fields (",
            "pydantic",
        ],
    ),
    (
        "response: answer + serialisation",
        [
            "_answer",
            "JSONBody",
            "serialize_response",
            "JSONResponse",
            "Response.__init__",
            "Response.render",
            "init_headers",
        ],
    ),
    (
        "access rules, rate limit, headers",
        [
            "authorize",
            "authenticate",
            "RateLimiter",
            "command_headers",
            "HTTPBearer",
            "parse_if_match",
            "principal_of",
            "get_cases",
            "get_token_keys",
        ],
    ),
    ("command path: match, headers, validate, answer (api/command_path.py)", ["CommandPath", "command_path.py"]),
    (
        "our ASGI middleware (guard, metrics, log)",
        [
            "InputGuard",
            "RequestMetrics",
            "RequestLog",
            "request_log",
            "BaseHTTPMiddleware",
            "_StreamingResponse",
            "call_next",
        ],
    ),
    ("FastAPI/Starlette routing + dependency solving", ["fastapi", "starlette", "anyio"]),
    ("uvicorn HTTP (httptools, socket send)", ["httptools_impl", "uvicorn", "h11"]),
    ("event loop (asyncio/uvloop)", ["runners.py", "asyncio", "uvloop", "events.py", "base_events", "tasks.py"]),
]


def stage_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, keys in STAGES:
            if any(k in frame for k in keys):
                return name
    return "other"


def main(path: str) -> None:
    shares: Counter[str] = Counter()
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        shares[stage_of(stack.split(";"))] += int(count)
    total = sum(shares.values()) or 1
    for name, n in shares.most_common():
        print(f"{100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main(sys.argv[1])
