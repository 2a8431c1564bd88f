"""A soak of several replicas (tests/server_ops/replicas.py) on the real Kubernetes API server:
load spread over the replicas while the one that syncs is killed (SIGKILL) or stopped
(SIGTERM) and started again, in turn; then what must hold. Shared by
tests/server_ops/test_replicas_soak.py (bounded, asserted) and benchmarks/replicas_soak.py
(longer, a table).

The load: writers create credentials and change their passwords, keeping a ledger of what was
acknowledged (and read a change back through a replica at random); readers list and get
credentials; reviewers post AdmissionReviews to every running replica's webhook; a probe
creates a credential through one replica and asks every other replica's webhook until its
index has it. Meanwhile the lease's holders are read from the store.

What is checked afterwards: every credential's last acknowledged password is what the store
renders and what its delivered Secrets hold; the Secret writes in the API server's audit log,
told apart by User-Agent, come from one replica at a time, each a holder of the lease, and
none from a process after it stopped (tests/server_ops/secret_writes.py).
"""

from __future__ import annotations

import base64
import json
import random
import signal
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.admission.conftest import applied, pod, review
from tests.kube.real import RealCluster

from . import client, ok
from .replicas import Caller, Fleet, Holding, LeaseWatch, Request, Tally, Timing
from .secret_writes import Write, audit_problems, runs, secret_writes

CLUSTER = "soak"
PROJECT = "soak"
NAMESPACES = ("soak-a", "soak-b", "soak-c")


@dataclass(frozen=True)
class Plan:
    duration: float = 120.0  # seconds of load with kills
    kill_interval: float = 3.0  # seconds the replicas run whole between a restart and a kill
    writers: int = 2
    readers: int = 1
    reviewers: int = 2
    pause: float = 0.1  # seconds between one load thread's requests
    credentials_per_writer: int = 8
    # Kills and stops each, even if a slow machine needs longer than duration (twice at most).
    least_each: int = 2


@dataclass
class Entry:
    """A credential of the ledger and its last acknowledged password."""

    name: str
    server: str
    namespaces: tuple[str, ...]  # where its Secret belongs
    scope: dict[str, str]
    id: str = ""
    password: str = ""
    edits: int = 0  # acknowledged


@dataclass
class Ledger:
    entries: dict[str, Entry] = field(default_factory=dict)
    acked: int = 0  # acknowledged writes: creates and edits
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, entry: Entry) -> None:
        with self._lock:
            self.entries[entry.name] = entry
            self.acked += 1

    def edited(self, entry: Entry, password: str) -> None:
        with self._lock:
            entry.password, entry.edits = password, entry.edits + 1
            self.acked += 1

    def known(self) -> list[Entry]:
        with self._lock:
            return [e for e in self.entries.values() if e.id]


@dataclass(frozen=True)
class Handover:
    how: str  # SIGKILL or SIGTERM
    seconds: float  # from the signal until another replica took the lease
    previous: str
    next: str


@dataclass
class Report:
    timing: Timing
    plan: Plan
    seconds: float = 0.0  # of load
    tally: Tally = field(default_factory=Tally)
    ledger: Ledger = field(default_factory=Ledger)
    handovers: list[Handover] = field(default_factory=list)
    holders: list[Holding] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)  # admission index, seconds
    restarts: list[float] = field(default_factory=list)  # seconds until ready again
    writes: list[Write] = field(default_factory=list)
    audit_problems: list[str] = field(default_factory=list)
    final_problems: list[str] = field(default_factory=list)

    def kills(self, how: str) -> int:
        return sum(1 for h in self.handovers if h.how == how)


@dataclass
class Soak:
    fleet: Fleet
    cluster: RealCluster
    plan: Plan
    report: Report
    stop: threading.Event = field(default_factory=threading.Event)


# --------------------------------------------------------------------------- set-up


def prepare(fleet: Fleet, cluster: RealCluster, kubeconfig: str) -> None:
    """Cluster `soak` (the real API server, as user pullkeeper) and its project's namespaces."""
    for ns in NAMESPACES:
        cluster.create("namespaces", {"metadata": {"name": ns}})
    with client(fleet.replicas[0].serve.url) as c:
        ok(c.post("/clusters", json={"name": CLUSTER, "kubeconfig": kubeconfig}), 201)
        ok(c.post("/projects", json={"name": PROJECT, "cluster": CLUSTER}), 201)
        for ns in NAMESPACES:
            ok(c.put(f"/clusters/{CLUSTER}/namespaces/{ns}", json={"project": PROJECT}), 200)


# --------------------------------------------------------------------------- load


def _get(path: str, **params: str | int) -> Request:
    return lambda c: c.get(path, params=params)


def _post(path: str, body: dict[str, Any]) -> Request:
    return lambda c: c.post(path, json=body)


def _patch(path: str, body: dict[str, Any]) -> Request:
    return lambda c: c.patch(path, json=body)


def _create(soak: Soak, caller: Caller, entry: Entry, password: str) -> bool:
    body = {
        "name": entry.name,
        "cluster": CLUSTER,
        "provider": "custom",
        "server": entry.server,
        "username": "robot",
        "password": password,
        **entry.scope,
    }
    cuts = caller.cuts
    answer = caller.until_answered(_post("/credentials", body))
    if answer is None:
        return False
    if answer.status_code == 409 and caller.cuts > cuts:
        # The attempt a stop cut off had been committed: the credential is there.
        entry.id = _id_of(caller, entry.name)
    elif answer.status_code == 201:
        entry.id = answer.json()["id"]
    else:
        caller.tally.fail("write", f"create {entry.name}: {answer.status_code} {answer.text}")
    if not entry.id:
        return False
    entry.password = password
    soak.report.ledger.add(entry)
    return True


def _id_of(caller: Caller, name: str) -> str:
    answer = caller.until_answered(_get("/credentials", cluster=CLUSTER, q=name, limit=500))
    found = [x["id"] for x in (answer.json()["items"] if answer else []) if x["name"] == name]
    if len(found) != 1:
        caller.tally.fail("write", f"{name}: created once, found {len(found)} times")
        return ""
    return str(found[0])


def _edit(soak: Soak, caller: Caller, reader: Caller, entry: Entry) -> None:
    password = f"pw-{entry.name}-{entry.edits + 1}-{caller.rng.getrandbits(32):08x}"
    path = f"/credentials/{entry.id}"
    answer = caller.until_answered(_patch(path, {"password": password}))
    if answer is None:
        return
    if answer.status_code != 200:
        caller.tally.fail("write", f"edit {entry.name}: {answer.status_code} {answer.text}")
        return
    soak.report.ledger.edited(entry, password)
    if caller.rng.random() < 1 / 3:
        # Acknowledged by one replica, read back from any: the same password.
        got = reader.until_answered(_get(f"{path}/dockerconfigjson"))
        if got is not None and _password(got, entry) != password:
            reader.tally.fail(
                "read",
                f"{entry.name}: {reader.last} answers {got.status_code}, not the password of "
                f"edit #{entry.edits}, acknowledged before the read",
            )


def _password(answer: httpx.Response, entry: Entry) -> str | None:
    if answer.status_code != 200:
        return None
    found: str = json.loads(answer.content)["auths"][entry.server]["password"]
    return found


def writer(soak: Soak, n: int) -> None:
    rng = random.Random(f"writer-{n}")  # noqa: S311 - test data, not secrets
    caller = Caller(soak.fleet, soak.report.tally, "write", rng)
    reader = Caller(soak.fleet, soak.report.tally, "read", rng)
    mine: list[Entry] = []
    try:
        while not soak.stop.is_set():
            if not mine or (len(mine) < soak.plan.credentials_per_writer and rng.random() < 0.4):
                name = f"w{n}-c{len(mine)}"
                scope = rng.choice(
                    [{"scope": "project", "project": PROJECT}]
                    + [{"scope": "namespace", "namespace": ns} for ns in NAMESPACES]
                )
                where = NAMESPACES if scope["scope"] == "project" else (scope["namespace"],)
                entry = Entry(name, f"{name}.soak.example", where, scope)
                if _create(soak, caller, entry, f"pw-{name}-0-{rng.getrandbits(32):08x}"):
                    mine.append(entry)
            else:
                _edit(soak, caller, reader, rng.choice(mine))
            soak.stop.wait(soak.plan.pause)
    finally:
        caller.close()
        reader.close()


def reader(soak: Soak, n: int) -> None:
    rng = random.Random(f"reader-{n}")  # noqa: S311 - test data, not secrets
    caller = Caller(soak.fleet, soak.report.tally, "read", rng)
    try:
        while not soak.stop.is_set():
            listed = caller.send(_get("/credentials", cluster=CLUSTER, limit=50))
            if listed is not None and listed.status_code != 200:
                caller.tally.fail("read", f"list: {listed.status_code} {listed.text}")
            known = soak.report.ledger.known()
            if known:
                entry = rng.choice(known)
                got = caller.send(_get(f"/credentials/{entry.id}"))
                if got is not None and (got.status_code != 200 or got.json()["name"] != entry.name):
                    caller.tally.fail("read", f"get {entry.name}: {got.status_code} {got.text}")
            soak.stop.wait(soak.plan.pause)
    finally:
        caller.close()


def _review_of(image: str, namespace: str) -> dict[str, Any]:
    obj = pod(image)
    obj["metadata"]["namespace"] = namespace
    return review(obj, namespace=namespace)


def _pull_secrets(caller: Caller, sent: dict[str, Any], answer: httpx.Response) -> list[str]:
    """The pull secrets a valid answer adds; a failure recorded for an invalid one."""
    try:
        doc = answer.json()
        response = doc["response"]
        valid = (
            answer.status_code == 200
            and doc["kind"] == "AdmissionReview"
            and response["uid"] == sent["request"]["uid"]
            and response["allowed"] is True
        )
        patched = applied(sent["request"]["object"], doc) if valid else {}
    except (ValueError, KeyError, TypeError) as e:
        valid, patched = False, {}
        answer_text = f"{answer.status_code} {answer.text[:300]} ({e!r})"
    else:
        answer_text = f"{answer.status_code} {answer.text[:300]}"
    if not valid:
        caller.tally.fail("admission", f"{caller.last}: {answer_text}")
        return []
    return [s["name"] for s in patched["spec"].get("imagePullSecrets") or []]


def reviewer(soak: Soak, n: int) -> None:
    """AdmissionReviews to every running replica in turn."""
    rng = random.Random(f"reviewer-{n}")  # noqa: S311 - test data, not secrets
    caller = Caller(soak.fleet, soak.report.tally, "admission", rng)
    try:
        while not soak.stop.is_set():
            for target in soak.fleet.running():
                known = soak.report.ledger.known()
                entry = rng.choice(known) if known else None
                image = f"{entry.server}/app:v1" if entry else "quay.io/team/app:v1"
                sent = _review_of(image, rng.choice(NAMESPACES))
                answer = caller.send(_post(f"/admission/mutate/{CLUSTER}", sent), target)
                if answer is not None:
                    _pull_secrets(caller, sent, answer)
                soak.stop.wait(soak.plan.pause)
    finally:
        caller.close()


def probe(soak: Soak) -> None:
    """A credential created through one replica, looked for by every other one's webhook: the
    delay from its acknowledgement until each index has it."""
    rng = random.Random("probe")  # noqa: S311 - test data, not secrets
    writes = Caller(soak.fleet, soak.report.tally, "write", rng)
    hooks = Caller(soak.fleet, soak.report.tally, "admission", rng)
    bound = soak.report.timing.index_delay + 10  # look a while past the bound, to measure
    n = 0
    try:
        while not soak.stop.is_set():
            n += 1
            name = f"probe-{n}"
            scope = {"scope": "namespace", "namespace": NAMESPACES[0]}
            entry = Entry(name, f"{name}.soak.example", NAMESPACES[:1], scope)
            if not _create(soak, writes, entry, f"pw-{name}-0-{rng.getrandbits(32):08x}"):
                continue
            acked = time.monotonic()
            others = [t for t in soak.fleet.running() if t[0].host != writes.last]
            sent = _review_of(f"{entry.server}/app:v1", NAMESPACES[0])
            while others and time.monotonic() < acked + bound:
                for target in list(others):
                    answer = hooks.send(_post(f"/admission/mutate/{CLUSTER}", sent), target)
                    if not soak.fleet.current(*target):
                        others.remove(target)  # stopped meanwhile: not measured
                    elif answer is not None and name in _pull_secrets(hooks, sent, answer):
                        soak.report.delays.append(time.monotonic() - acked)
                        others.remove(target)
                time.sleep(0.05)
            for target in others:
                hooks.tally.fail("index", f"{target[0].host} had not seen {name} after {bound} s")
            soak.stop.wait(1.0)
    finally:
        writes.close()
        hooks.close()


# --------------------------------------------------------------------------- kills


def chaos(soak: Soak, watch: LeaseWatch, began: float) -> None:
    """Kill or stop the replica that syncs, in turn, wait until another holds the lease, and
    start it again; for the plan's duration, or until there were its least kills and stops."""
    signals = (signal.SIGKILL, signal.SIGTERM)
    timing, plan = soak.report.timing, soak.plan
    n = 0
    while True:
        enough = n >= 2 * plan.least_each
        until = began + (plan.duration if enough else 2 * plan.duration)
        if time.monotonic() + plan.kill_interval >= until:
            return
        time.sleep(plan.kill_interval)
        holding = watch.current()
        found = soak.fleet.life_of(holding.identity) if holding else None
        if found is None or found[1].signalled is not None or not found[0].up:
            continue  # no running holder known yet
        replica, life = found
        sig = signals[n % 2]
        soak.fleet.stop(replica, sig)
        assert life.signalled is not None
        wait = 4 * (timing.after_kill if sig == signal.SIGKILL else timing.after_stop)
        taken = watch.next_after(life.identity, life.signalled, wait)
        if taken is None:
            soak.report.tally.fail("lease", f"nobody took the lease within {wait} s of {sig.name}")
        else:
            soak.report.handovers.append(
                Handover(sig.name, taken.acquired - life.signalled, life.identity, taken.identity)
            )
        soak.report.restarts.append(soak.fleet.restart(replica))
        n += 1


def run(fleet: Fleet, cluster: RealCluster, kubeconfig: str, plan: Plan) -> Report:
    """Set up, load with kills for plan.duration, then check; the replicas keep running."""
    report = Report(fleet.timing, plan)
    soak = Soak(fleet, cluster, plan, report)
    since = cluster.plane.audit_end()
    prepare(fleet, cluster, kubeconfig)
    watch = LeaseWatch(fleet.database_url).start()
    workers: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
        *((writer, (soak, n)) for n in range(plan.writers)),
        *((reader, (soak, n)) for n in range(plan.readers)),
        *((reviewer, (soak, n)) for n in range(plan.reviewers)),
        (probe, (soak,)),
    ]
    threads = [threading.Thread(target=f, args=a, daemon=True) for f, a in workers]
    began = time.monotonic()
    try:
        for t in threads:
            t.start()
        chaos(soak, watch, began)
    finally:
        soak.stop.set()
        for t in threads:
            t.join(timeout=180)
        report.seconds = time.monotonic() - began
        watch.stop()
    report.holders = list(watch.seen)
    report.final_problems = final_problems(soak)
    report.writes = secret_writes(cluster, since, NAMESPACES)
    report.audit_problems = audit_problems(report.writes, fleet, report.holders)
    return report


# --------------------------------------------------------------------------- checks


def final_problems(soak: Soak, timeout: float = 120.0) -> list[str]:
    """Each credential's last acknowledged password is what the store renders and, once the
    sync has caught up, what each of its Secrets holds."""
    problems: list[str] = []
    rendered: dict[str, bytes] = {}
    entries = soak.report.ledger.known()
    replica = next(r for r, _ in soak.fleet.running())
    with client(replica.serve.url) as c:
        stored, acked = set(_stored_names(c)), {e.name for e in entries}
        if stored != acked:
            problems.append(
                f"acknowledged, not in the store: {sorted(acked - stored)}; in the store, never "
                f"acknowledged: {sorted(stored - acked)}"
            )
        for e in entries:
            answer = c.get(f"/credentials/{e.id}/dockerconfigjson")
            if _password(answer, e) != e.password:
                problems.append(
                    f"{e.name}: the store renders another password than its last acknowledged "
                    f"(edit #{e.edits}): {answer.status_code}"
                )
            rendered[e.id] = answer.content
    deadline = time.monotonic() + timeout
    while True:
        stale = [
            f"{ns}/{e.name}"
            for e in entries
            for ns in e.namespaces
            if _delivered(soak.cluster, ns, e.name) != rendered[e.id]
        ]
        if not stale or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if stale:
        problems.append(f"Secrets unlike their credential after {timeout} s: {stale}")
    return problems


def _stored_names(c: httpx.Client) -> list[str]:
    names: list[str] = []
    params: dict[str, str | int] = {"cluster": CLUSTER, "limit": 500}
    while True:
        page = ok(c.get("/credentials", params=params), 200)
        names += [x["name"] for x in page["items"]]
        if not page["next"]:
            return names
        params["cursor"] = page["next"]


def _delivered(cluster: RealCluster, namespace: str, name: str) -> bytes | None:
    found = cluster.get("secrets", name, namespace)
    if found is None:
        return None
    return base64.b64decode(found["data"][".dockerconfigjson"])


# --------------------------------------------------------------------------- the table


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def table(report: Report) -> str:
    """What a run did, as benchmarks/replicas_soak.py prints it."""
    kills, stops = report.kills("SIGKILL"), report.kills("SIGTERM")
    head = (
        f"{report.seconds:.0f} s of load; the syncing replica killed {kills} times, stopped {stops}"
    )
    return "\n".join([head, *_requests(report), "", *_seconds(report), "", *_totals(report)])


def _requests(report: Report) -> list[str]:
    tally = report.tally
    lines = ["kind      | answered |  per s | cut by a stop | failures", "-" * 58]
    for kind in ("write", "read", "admission"):
        failed = sum(1 for f in tally.failures if f.startswith(f"{kind}:"))
        lines.append(
            f"{kind:9} | {tally.answered[kind]:8} | {tally.answered[kind] / report.seconds:6.1f} "
            f"| {tally.cut[kind]:13} | {failed:8}"
        )
    return lines


def _seconds(report: Report) -> list[str]:
    rows = [
        (
            f"{how}: until another holds the lease",
            [h.seconds for h in report.handovers if h.how == how],
        )
        for how in ("SIGKILL", "SIGTERM")
    ]
    rows.append(("restart: until ready again", report.restarts))
    lines = [f"{'seconds after a':38} | count | min / median / max", "-" * 67]
    return lines + [f"{what:38} | {len(values):5} | {_spread(values)}" for what, values in rows]


def _totals(report: Report) -> list[str]:
    delays = sorted(report.delays)
    p95 = (
        statistics.quantiles(delays, n=20, method="inclusive")[-1]
        if len(delays) > 1
        else sum(delays)
    )
    others = max(0, len(report.holders) - 1 - len(report.handovers))
    return [
        f"admission index delay (another replica's write): {len(delays)} measured, "
        f"median {statistics.median(delays) if delays else 0:.2f} s, p95 {p95:.2f} s, "
        f"max {max(delays, default=0):.2f} s",
        f"lease holders: {len(report.holders)}, {others} of them taking over from a replica "
        "that was neither killed nor stopped",
        f"Secret writes: {len(report.writes)} by {len(runs(report.writes))} runs of one writer",
        f"acknowledged writes: {report.ledger.acked} over {len(report.ledger.entries)} "
        "credentials, each checked in the store and its Secrets",
        f"failures: {len(report.tally.failures)}; audit problems: {len(report.audit_problems)}; "
        f"final problems: {len(report.final_problems)}",
    ]
