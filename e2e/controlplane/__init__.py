"""A local Kubernetes control plane for tests and demos (no Docker, no kubelet).

etcd, kube-apiserver, kube-controller-manager and kube-scheduler (built from the pinned
k8s.io/kubernetes module in ``kube/``) plus kwok, which plays the kubelet for a few fake nodes so
that scheduled Pods become Running. Modules: ``assets`` (where binaries are), ``pki``,
``kubeconfig``, ``flags`` (command lines), ``processes`` (start/stop by PID), ``readiness``,
``launcher`` (the ``ControlPlane`` class), ``cli`` (``python -m e2e.controlplane``), ``bench`` and
``pytest_plugin`` (the ``cluster`` and ``namespace`` fixtures). See docs/controlplane.md.
"""
