"""The product's image, made without a container engine (none runs here) by the Containerfile's
steps, as an OCI layout for skopeo to push. Test tooling: the product is the Containerfile.

Three layers, each made in an overlay of the ones before it, chrooted, so that a step's upper
directory is its layer:

- base: Debian bookworm from Debian's mirror (mmdebstrap, minbase) with Debian's Python 3.11,
  python3-venv and ca-certificates where the Containerfile starts from python:3.11-slim; then
  the Containerfile's final-stage RUN (its user and data directory);
- dependencies: `python3 -m venv /opt/pullkeeper`, requirements.lock installed with
  `--require-hashes`, then the build tools and pip uninstalled, as the build stage does;
- the project: its wheel, built here from the Containerfile's build context by the locked
  backend without isolation (as the build stage builds it), installed into that venv by the
  pip wheel that Debian's python3-venv ships.

The first two are kept in PULLKEEPER_CACHE/image (default ~/.cache/pullkeeper/image): the
base by its recipe, the dependencies by requirements.lock's hash too, so only a machine's
first build pays for them. The image's user, environment, working directory, ports,
entrypoint and command are read from the Containerfile's final stage.

Needs root (mount, chroot), mmdebstrap and Debian's mirror for the first build, PyPI for the
dependencies (scripts/test installs mmdebstrap).
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import posixpath
import shlex
import shutil
import stat
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.tools import missing

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("PULLKEEPER_CACHE") or Path.home() / ".cache" / "pullkeeper")
STORE = CACHE / "image"  # the cached layers
SUITE = "bookworm"
SOURCES = tuple(
    f"deb http://deb.debian.org/{archive} {suite} main"
    for archive, suite in (
        ("debian", SUITE),
        ("debian", f"{SUITE}-updates"),
        ("debian-security", f"{SUITE}-security"),
    )
)
PACKAGES = "python3,python3-venv,ca-certificates"
# As Debian's slim images: no manual pages, translations or documentation but copyrights.
DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)
VENV = "/opt/pullkeeper"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # Debian's, in the image and on the host
BUILD_TOOLS = "hatchling editables pip"  # what the build stage uninstalls
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Debian images' PATH
RECIPE = 1  # bump to rebuild the cached layers after a change here
TOOLS = ("mmdebstrap", "chroot", "mount", "umount")
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class Layer:
    blob: Path  # gzipped tar
    digest: str  # of the blob
    diff_id: str  # of the tar


def require() -> None:
    """`missing` unless this machine can build the image."""
    if os.geteuid() != 0:
        missing("root: the product's image is built in chroots on overlay mounts")
    for tool in TOOLS:
        if shutil.which(tool) is None:
            missing(f"{tool}, to build the product's image (scripts/test installs mmdebstrap)")


def stages() -> list[list[tuple[str, str]]]:
    """The Containerfile's stages, each its (instruction, arguments), continuations joined."""
    text = (ROOT / "Containerfile").read_text().replace("\\\n", " ")
    found: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            if word.upper() == "FROM":
                found.append([])
            if found:
                found[-1].append((word.upper(), " ".join(rest.split())))
    return found


def final_stage() -> list[tuple[str, str]]:
    return stages()[-1]


def copied() -> list[str]:
    """What the build stage copies from the context, in its order."""
    return [src for word, args in stages()[0] if word == "COPY" for src in args.split()[:-1]]


def wheel(work: Path) -> Path:
    """The project's wheel as the build stage makes it: from what it copies, by the locked
    backend without build isolation."""
    context = work / "context"
    for name in copied():
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / name)
    wheels = work / "wheels"
    _run(
        sys.executable,
        *("-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"),
        *("-w", str(wheels), str(context)),
    )
    (made,) = wheels.glob("*.whl")
    return made


def image_config() -> dict[str, object]:
    """The runtime settings of the final stage, as an OCI image config's `config`."""
    config: dict[str, object] = {}
    env = {"PATH": PATH}
    for word, args in final_stage():
        if word == "ENV":
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                env[name] = value.replace("$PATH", env["PATH"])
        elif word in ("ENTRYPOINT", "CMD"):
            config[word.title()] = json.loads(args)
        elif word == "USER":
            config["User"] = args
        elif word == "WORKDIR":
            config["WorkingDir"] = args
        elif word == "EXPOSE":
            config["ExposedPorts"] = {f"{p}/tcp": {} for p in args.split()}
    config["Env"] = [f"{k}={v}" for k, v in env.items()]
    return config


def build(layout: Path, tag: str, work: Path) -> None:
    """The image as an OCI layout in `layout`, tagged `tag`; `work` is scratch space."""
    STORE.mkdir(parents=True, exist_ok=True)
    with (STORE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run on this machine may be filling the cache
        for stale in STORE.glob("*.tmp"):  # a build stopped halfway
            _unmount_under(stale)
            shutil.rmtree(stale)
        base = _base()
        deps = _dependencies(base)
        layers = [_read(base), _read(deps), _project([deps / "upper", base / "rootfs"], work)]
        _layout(layout, tag, layers)


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


@contextmanager
def _cached(name: str) -> Iterator[tuple[Path, bool]]:
    """STORE/NAME, and whether it must be made (then in NAME.tmp, renamed when done)."""
    final = STORE / name
    if final.is_dir():
        yield final, False
        return
    partial = final.with_name(name + ".tmp")
    partial.mkdir()
    yield partial, True
    partial.rename(final)


def _base() -> Path:
    runs = [args for word, args in final_stage() if word == "RUN"]
    name = f"base-{_key(RECIPE, SOURCES, PACKAGES, DPKG_OPTIONS, runs)}"
    with _cached(name) as (d, make):
        if make:
            hooks = [f'chroot "$1" sh -ec {shlex.quote(r)}' for r in runs]
            # The build's resolv.conf is the host's: the image's is empty (the runtime's wins).
            hooks.append(': >"$1/etc/resolv.conf"')
            _run(
                "mmdebstrap",
                "--variant=minbase",
                f"--include={PACKAGES}",
                *(f"--dpkgopt={o}" for o in DPKG_OPTIONS),
                *(f"--customize-hook={h}" for h in hooks),
                SUITE,
                str(d / "rootfs"),
                *SOURCES,
            )
            # Device nodes are the runtime's to make: /dev goes empty into the layer.
            _write_layer(d / "rootfs", d, skip=lambda rel: rel.startswith("dev/"))
    return STORE / name


def _dependencies(base: Path) -> Path:
    lock = (ROOT / "requirements.lock").read_bytes()
    name = f"deps-{_key(base.name, hashlib.sha256(lock).hexdigest(), BUILD_TOOLS)}"
    with _cached(name) as (d, make):
        if make:
            with _overlay([base / "rootfs"], d) as root:
                (root / "tmp" / "requirements.lock").write_bytes(lock)
                _chroot(
                    root,
                    f"python3 -m venv {VENV}\n"
                    f"{VENV}/bin/pip install --no-deps --require-hashes -r /tmp/requirements.lock\n"
                    f"{VENV}/bin/pip check\n"
                    f"{VENV}/bin/python -m pip uninstall -y {BUILD_TOOLS}",
                )
            _write_layer(d / "upper", d)
    return STORE / name


def _project(lowers: list[Path], work: Path) -> Layer:
    made = wheel(work)
    with _overlay(lowers, work / "project") as root:
        shutil.copyfile(made, root / "tmp" / made.name)
        # The venv has no pip any more: the one Debian ships as a wheel installs the project.
        _chroot(
            root,
            "set -- /usr/share/python-wheels/pip-*.whl\n"
            f'{VENV}/bin/python "$1/pip" install --no-deps --no-index /tmp/{made.name}',
        )
    return _write_layer(work / "project" / "upper", work / "project")


@contextmanager
def _overlay(lowers: list[Path], work: Path) -> Iterator[Path]:
    """An overlay of `lowers` (the first on top) with /proc, a /dev and a /tmp of its own and
    the host's resolv.conf and CA bundle mounted in: what is run there writes only to
    work/upper."""
    upper, scratch, root = work / "upper", work / "overlay-work", work / "root"
    for d in (upper, scratch, root):
        d.mkdir(parents=True)
    lower = ":".join(str(p) for p in lowers)
    _run("mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={upper},"
         f"workdir={scratch}", str(root))  # fmt: skip
    try:
        _run("mount", "-t", "proc", "proc", str(root / "proc"))
        for scratch_fs in ("dev", "tmp"):
            _run("mount", "-t", "tmpfs", "tmpfs", str(root / scratch_fs))
        _devices(root / "dev")
        # The host's name server and CAs (a proxy in the way of PyPI may need its own).
        for name in ("resolv.conf", "ssl/certs/ca-certificates.crt"):
            _run("mount", "--bind", "-o", "ro", f"/etc/{name}", str(root / "etc" / name))
        yield root
    finally:
        _unmount_under(work)
    shutil.rmtree(scratch)
    root.rmdir()


def _devices(dev: Path) -> None:
    """The device nodes a build uses, made in the chroot's own /dev (not the host's, which a
    stray removal of the build's directory could reach through a bind mount)."""
    for name, minor in (("null", 3), ("zero", 5), ("full", 7), ("random", 8), ("urandom", 9)):
        os.mknod(dev / name, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
        (dev / name).chmod(0o666)  # past the umask
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):  # fmt: skip
        (dev / name).symlink_to(target)


def _mounts_under(directory: Path) -> list[str]:
    prefix = str(directory)
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    return sorted((m for m in mounts if m == prefix or m.startswith(prefix + "/")), reverse=True)


def _unmount_under(directory: Path) -> None:
    """Unmount whatever is mounted at or under `directory`, deepest first (detached if busy),
    so that removing the directory can only remove what the build made."""
    for point in _mounts_under(directory):
        if subprocess.run(["umount", point], check=False, capture_output=True).returncode:
            subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)
    if left := _mounts_under(directory):
        raise RuntimeError(f"still mounted, unmount by hand: {left}")


def _chroot(root: Path, script: str) -> None:
    """`sh -e` in the chroot, as root, with nothing of this process's environment."""
    _run(
        "chroot", str(root), "/usr/bin/env", "-i", f"PATH={PATH}", "HOME=/root",
        "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_CACHE_DIR=1", f"PIP_CERT={CA_BUNDLE}",
        *(f"{k}={v}" for k, v in os.environ.items() if k == "PIP_INDEX_URL"),
        "/bin/sh", "-ec", script,
    )  # fmt: skip


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        raise RuntimeError(f"{shlex.join(command[:3])}... failed ({done.returncode}):\n{tail}")


def _entries(tree: Path) -> Iterator[Path]:
    for entry in sorted(os.scandir(tree), key=lambda e: e.name):
        yield Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from _entries(Path(entry.path))


def _write_layer(tree: Path, out: Path, skip: Callable[[str], bool] = lambda _: False) -> Layer:
    """tree as a layer (out/layer.tar.gz, described in out/layer.json): overlayfs whiteouts
    (0/0 character devices, opaque directories) become OCI's `.wh.` files."""
    raw = out / "layer.tar"
    with tarfile.open(raw, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in _entries(tree):
            rel = path.relative_to(tree).as_posix()
            if skip(rel):
                continue
            st = path.lstat()
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                tar.addfile(
                    tarfile.TarInfo(posixpath.join(posixpath.dirname(rel), ".wh." + path.name))
                )
                continue
            info = tar.gettarinfo(str(path), rel)
            if info is None:  # a socket
                continue
            info.uname = info.gname = ""
            if info.isreg():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
            if info.isdir() and _opaque(path):
                tar.addfile(tarfile.TarInfo(f"{rel}/.wh..wh..opq"))
    diff_id = _sha256(raw)
    blob = out / "layer.tar.gz"
    with (
        raw.open("rb") as src,
        blob.open("wb") as out_file,
        gzip.GzipFile(filename="", fileobj=out_file, mode="wb", compresslevel=6, mtime=0) as gz,
    ):
        shutil.copyfileobj(src, gz, 1 << 20)
    raw.unlink()
    layer = Layer(blob, "sha256:" + _sha256(blob), "sha256:" + diff_id)
    (out / "layer.json").write_text(json.dumps({"digest": layer.digest, "diff_id": diff_id}))
    return layer


def _read(cached: Path) -> Layer:
    meta = json.loads((cached / "layer.json").read_text())
    return Layer(cached / "layer.tar.gz", meta["digest"], "sha256:" + meta["diff_id"])


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _layout(layout: Path, tag: str, layers: list[Layer]) -> None:
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes, media_type: str) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    for layer in layers:
        target = blobs / layer.digest.removeprefix("sha256:")
        try:
            os.link(layer.blob, target)
        except OSError:  # another file system
            shutil.copyfile(layer.blob, target)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": image_config(),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": put(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
        "layers": [
            {"mediaType": OCI_LAYER, "digest": layer.digest, "size": layer.blob.stat().st_size}
            for layer in layers
        ],
    }
    top = put(json.dumps(manifest).encode(), str(manifest["mediaType"]))
    top["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
