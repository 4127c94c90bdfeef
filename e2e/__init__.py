"""End-to-end suite and the local Kubernetes control plane (``e2e.controlplane``) the tests use."""
