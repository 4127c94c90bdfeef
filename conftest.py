"""Repository-wide pytest setup: the local Kubernetes control plane's fixtures.

``cluster`` (session) and ``namespace`` (per test) come from ``e2e.controlplane.pytest_plugin``;
see docs/controlplane.md.
"""

pytest_plugins = ["e2e.controlplane.pytest_plugin"]
