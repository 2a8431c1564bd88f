"""Pull checks against a real registry: one check against skopeo, and 1,000 at once.

A real docker-registry (distribution 2.8) with token auth over TLS and its
token server (the test fixtures' own, tests/registry) is started and seeded
through pullkeeper's registry client: 10 repositories with 100 tags each.

1. `pullkeeper check IMAGE --config F --ca-file CA -o json` against
   `skopeo inspect --creds U:P --cert-dir DIR docker://IMAGE`, the same tag and
   login, each a new process, alternating, --runs times: the wall-clock median
   of each and the ratio (target: pullkeeper at most twice skopeo's time). Both
   fetch the manifest and the image's config blob. Beside them, what of
   pullkeeper's time is Python's start and the imports of the check's modules
   (a new process importing them as the command does), and what is the check.
2. `pull_trial.check_many` of the 1,000 images (--jobs threads, one pool of
   clients): images per second, and registry requests per image counted by the
   client (HTTP requests to the registry and the token server), first with an
   empty token cache, then again with the tokens cached.

Run: .venv/bin/python benchmarks/registry_check.py [--runs 15] [--jobs 16]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.registry import servers  # noqa: E402

from pullkeeper.registry.auth import Login  # noqa: E402
from pullkeeper.registry.client import TLS, Registry  # noqa: E402
from pullkeeper.registry.pool import RegistryPool  # noqa: E402
from pullkeeper.services import pull_trial  # noqa: E402

REPOSITORIES = 10
TAGS = 100


def seed(registry: servers.TokenRegistry) -> list[str]:
    """team-a/bench-N:tag-M, all the same small image, mounted from team-a/app."""
    app = registry.image("team-a/app:v1")
    seeder = Login(registry.seeder.username, registry.seeder.password)
    images = []
    with Registry(registry.host, seeder, TLS(ca_file=registry.ca_file)) as client:
        fetched = client.get_manifest("team-a/app", app.digest)
        assert fetched.manifest.config is not None
        blobs = [fetched.manifest.config.digest, *(d.digest for d in fetched.manifest.layers)]
        for r in range(REPOSITORIES):
            repository = f"team-a/bench-{r}"
            for digest in blobs:
                if not client.mount_blob(repository, digest, "team-a/app"):
                    client.put_blob(repository, digest, client.get_blob("team-a/app", digest))
            for t in range(TAGS):
                client.put_manifest(repository, f"tag-{t}", fetched.media_type, fetched.body)
                images.append(f"{registry.host}/{repository}:tag-{t}")
    return images


def timed(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"FAIL: {' '.join(args[:3])} ...: {done.stderr.decode(errors='replace')}")
    return elapsed


def versus_skopeo(registry: servers.TokenRegistry, base: Path, runs: int) -> dict[str, float]:
    alice = registry.credentials
    image = registry.image("team-a/app:v1").reference
    config = base / "config.json"
    auth = base64.b64encode(f"{alice.username}:{alice.password}".encode()).decode()
    config.write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))
    assert registry.ca_file is not None and registry.cert_dir is not None
    env = dict(registry.env)
    pk = [
        str(Path(sys.executable).with_name("pullkeeper")),
        "check",
        image,
        "--config",
        str(config),
        "--ca-file",
        str(registry.ca_file),
        "-o",
        "json",
    ]
    skopeo = [
        "skopeo",
        "inspect",
        "--creds",
        alice.creds,
        "--cert-dir",
        str(registry.cert_dir),
        f"docker://{image}",
    ]
    imports = [
        sys.executable,
        "-c",
        # As pullkeeper.cli.main.main(): httpx's own command-line client stays out.
        "import sys; sys.modules.setdefault('httpx._main', None); "
        "import pullkeeper.cli.main, pullkeeper.cli.check, pullkeeper.services.pull_trial, "
        "pullkeeper.cli.registry_options, pullkeeper.cli.candidates, "
        "pullkeeper.services.config_files",
    ]
    candidate = pull_trial.Candidate("bench", registry.host, Login(alice.username, alice.password))
    tls = TLS(ca_file=registry.ca_file)

    def in_process() -> float:
        t0 = time.perf_counter()
        report = pull_trial.check(image, [candidate], lambda _host: tls)
        assert report.ok, report.as_dict()
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {k: [] for k in ("pullkeeper", "skopeo", "imports", "work")}
    timed(pk, env), timed(skopeo, env)  # warm the page cache for both
    for _ in range(runs):
        times["pullkeeper"].append(timed(pk, env))
        times["skopeo"].append(timed(skopeo, env))
        times["imports"].append(timed(imports, env))
        times["work"].append(in_process())
    return {k: statistics.median(v) for k, v in times.items()}


def many(registry: servers.TokenRegistry, images: list[str], jobs: int) -> list[dict[str, float]]:
    alice = registry.credentials
    candidate = pull_trial.Candidate("bench", registry.host, Login(alice.username, alice.password))
    tls = TLS(ca_file=registry.ca_file)
    results = []
    with RegistryPool() as pool:
        for label in ("empty token cache", "tokens cached"):
            sent, tokens = pool.requests, registry.token_server.request_count()
            t0 = time.perf_counter()
            reports = pull_trial.check_many(
                images, lambda _image: [candidate], lambda _host: tls, jobs=jobs, pool=pool
            )
            elapsed = time.perf_counter() - t0
            bad = [r for r in reports if not r.ok]
            if bad:
                sys.exit(f"FAIL: {len(bad)} checks failed, first: {bad[0].as_dict()['error']}")
            results.append(
                {
                    "label": label,  # type: ignore[dict-item]
                    "seconds": elapsed,
                    "per_second": len(images) / elapsed,
                    "requests_per_image": (pool.requests - sent) / len(images),
                    "token_requests": registry.token_server.request_count() - tokens,
                }
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--jobs", type=int, default=16)
    args = parser.parse_args()
    for tool in ("docker-registry", "skopeo"):
        if not shutil.which(tool):
            sys.exit(f"FAIL: {tool} is not installed (scripts/test installs it)")
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"command: {sys.executable} {' '.join(sys.argv)}"
    )
    base = Path(tempfile.mkdtemp(prefix="pk-registry-bench-"))
    try:
        layouts = servers.build_layouts(base / "layouts")
        with servers.token_registry(base / "registry", layouts) as registry:
            images = seed(registry)
            medians = versus_skopeo(registry, base, args.runs)
            print()
            print(f"One check as a new process, median of {args.runs} runs (token auth over TLS)")
            print(f"  pullkeeper check   {medians['pullkeeper'] * 1000:7.1f} ms")
            print(f"  skopeo inspect     {medians['skopeo'] * 1000:7.1f} ms")
            print(
                f"  of pullkeeper's: Python start and imports {medians['imports'] * 1000:.1f} ms; "
                f"the check itself, in a running process {medians['work'] * 1000:.1f} ms"
            )
            ratio = medians["pullkeeper"] / medians["skopeo"]
            print(
                f"  ratio pullkeeper/skopeo {ratio:.2f} (target <= 2.00: "
                f"{'met' if ratio <= 2 else 'MISSED'})"
            )
            rows = many(registry, images, args.jobs)
            print()
            print(f"{len(images)} images ({REPOSITORIES} repositories), {args.jobs} threads")
            print("pass              | seconds | images/s | requests/image | token requests")
            print("----------------- | ------- | -------- | -------------- | --------------")
            for r in rows:
                print(
                    f"{r['label']:<17} | {r['seconds']:7.2f} | {r['per_second']:8.0f} | "
                    f"{r['requests_per_image']:14.2f} | {r['token_requests']:14.0f}"
                )
            warm = rows[-1]["requests_per_image"]
            print(
                f"target <= 2 requests/image with a warm token cache: "
                f"{'met' if warm <= 2 else 'MISSED'}"
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
