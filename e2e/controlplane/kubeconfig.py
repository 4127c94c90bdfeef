"""Write kubeconfig files for the local control plane's users.

Called by ``launcher`` for the admin kubeconfig handed to tests and users, and for the
controller-manager, scheduler and kwok. Certificates are embedded (``*-data`` fields), so a copied
kubeconfig keeps working while the control plane runs.
"""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from e2e.controlplane import pki

CONTEXT_NAME = "ragflow-local"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def render(server: str, ca_cert: Path, client_cert: Path, client_key: Path, user: str) -> str:
    """The YAML of a single-context kubeconfig for ``user`` talking to ``server``."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT_NAME,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_cert)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(client_cert),
                    "client-key-data": _b64(client_key),
                },
            }
        ],
        "contexts": [
            {"name": CONTEXT_NAME, "context": {"cluster": CONTEXT_NAME, "user": user}},
        ],
        "current-context": CONTEXT_NAME,
        "preferences": {},
    }
    return yaml.safe_dump(document, sort_keys=False)


def write(path: Path, server: str, certs: pki.Pki, identity: pki.ClientIdentity) -> Path:
    """Write the kubeconfig of ``identity`` to ``path`` (mode 0600) and return ``path``."""
    text = render(
        server,
        certs.ca_cert,
        certs.client_cert(identity),
        certs.client_key(identity),
        identity.user,
    )
    path.touch(mode=0o600)
    path.write_text(text)
    return path
