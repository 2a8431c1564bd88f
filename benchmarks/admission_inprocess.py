"""The webhook listener's application alone, called in this process: its CPU per review
without uvicorn, h11, TLS or a network, and where that time goes.

The store is seeded as admission_load.py seeds it, with 10 projects (100
namespaces); the application's lifespan starts the webhook; then --requests
mutate reviews (those of admission_load.py) are handed to it as ASGI calls,
one after another, after 2,000 unmeasured ones. It prints the process CPU per
review, and the time of the parts: parse_review, Webhook.mutate (the
decision, patch included) and encode_review, each timed on its own.
For a profile, run it under pyinstrument (pip install pyinstrument).

Run: .venv/bin/python benchmarks/admission_inprocess.py [--requests 20000]
     .venv/bin/python -m pyinstrument benchmarks/admission_inprocess.py
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from admission_load import review, seed
from pullkeeper.api.webhook import create_webhook_app
from pullkeeper.services import admission
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings

PATH = "/admission/mutate/bench"


async def run(server: Server, bodies: list[bytes], args: argparse.Namespace) -> None:
    app = create_webhook_app(server)
    life_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    life_out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await life_in.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    life = asyncio.create_task(app(scope, life_in.get, life_out.put))  # type: ignore[arg-type]
    assert (await life_out.get())["type"] == "lifespan.startup.complete"
    hook = server.admission
    assert hook is not None
    while not hook.index.ready.is_set():
        await asyncio.sleep(0.05)

    async def one(body: bytes) -> None:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        call = {"type": "http", "method": "POST", "path": PATH, "headers": []}
        await app(call, receive, send)  # type: ignore[arg-type]
        assert sent[0]["status"] == 200 and b'"patch"' in sent[1]["body"]

    for i in range(2000):
        await one(bodies[i % len(bodies)])
    t0 = time.process_time()
    for i in range(args.requests):
        await one(bodies[i % len(bodies)])
    per_review = (time.process_time() - t0) / args.requests * 1e6
    print(f"application CPU per review: {per_review:.1f} us")
    await life_in.put({"type": "lifespan.shutdown"})
    await life_out.get()
    await life


def parts(server: Server, body: bytes, n: int) -> None:
    hook = server.admission
    assert hook is not None
    request = admission.parse_review(body)
    answer = hook.mutate(request, "bench")
    for name, fn in (
        ("parse_review", lambda: admission.parse_review(body)),
        ("Webhook.mutate", lambda: hook.mutate(request, "bench")),
        ("encode_review", lambda: admission.encode_review(answer)),
    ):
        print(f"{name:<15} {timeit.timeit(fn, number=n) / n * 1e6:7.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        names = seed(data, projects=10)
        server = Server.open(Settings(data=data, sync=False))
        try:
            bodies = [review(n) for n in names]
            asyncio.run(run(server, bodies, args))
            hook = admission.start(server)  # the parts, on a webhook of their own
            hook.index.ready.wait(30)
            parts(server, bodies[3], args.requests)
            hook.stop()
        finally:
            server.close()


if __name__ == "__main__":
    main()
