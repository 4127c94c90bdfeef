"""The real-node tier: a kubelet with containerd and CNI joined to the local control plane.

Pods run as real containers (runc) instead of kwok's pretend ones. ``premises`` says whether this
machine can do it (the tests skip with that reason otherwise), ``node`` starts and stops the
node's daemons, ``images`` builds the images it runs and imports them. See docs/real-node.md.
"""
