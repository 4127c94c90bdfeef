"""What optional APIs the cluster serves, as a frozen value the builders can branch on.

Every kind's builder takes one (`build(model, capabilities)`, builders/children.py).
`Capabilities.from_resources` turns API discovery facts ({groupVersion: {kinds}}, gathered by
k8s.KubeClient.served_kinds) into flags. The RagFlowCluster and BackupPolicy handlers use the
value discovered at operator startup (handlers/lifecycle.py, `memo.capabilities`): an API
installed later is used after a restart. The AlertPolicy handler discovers the monitoring APIs
again on every reconcile (handlers/alert_policy.py), so installing the Prometheus Operator
switches its rules over without a restart. `parse_flags` reads the `render --capabilities`
option. No I/O here (the builders import this module).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

MONITORING_GROUP_VERSION = "monitoring.coreos.com/v1"
ALERTMANAGER_CONFIG_GROUP_VERSION = "monitoring.coreos.com/v1alpha1"
VPA_GROUP_VERSION = "autoscaling.k8s.io/v1"
#: Every groupVersion whose kinds `from_resources` reads (one discovery GET each).
GROUP_VERSIONS = (MONITORING_GROUP_VERSION, VPA_GROUP_VERSION, ALERTMANAGER_CONFIG_GROUP_VERSION)


@dataclass(frozen=True)
class Capabilities:
    """Optional APIs present in the cluster."""

    #: monitoring.coreos.com/v1 ServiceMonitor (Prometheus Operator).
    service_monitor: bool = False
    #: monitoring.coreos.com/v1 PrometheusRule (Prometheus Operator).
    prometheus_rule: bool = False
    #: autoscaling.k8s.io/v1 VerticalPodAutoscaler.
    vertical_pod_autoscaler: bool = False
    #: monitoring.coreos.com/v1alpha1 AlertmanagerConfig (Prometheus Operator).
    alertmanager_config: bool = False

    @classmethod
    def from_resources(cls, served: Mapping[str, Iterable[str]]) -> Capabilities:
        """Flags from discovery: `served` maps groupVersion to the kinds it serves."""
        monitoring = set(served.get(MONITORING_GROUP_VERSION, ()))
        vpa = set(served.get(VPA_GROUP_VERSION, ()))
        routing = set(served.get(ALERTMANAGER_CONFIG_GROUP_VERSION, ()))
        return cls(
            service_monitor="ServiceMonitor" in monitoring,
            prometheus_rule="PrometheusRule" in monitoring,
            vertical_pod_autoscaler="VerticalPodAutoscaler" in vpa,
            alertmanager_config="AlertmanagerConfig" in routing,
        )

    @classmethod
    def all_enabled(cls) -> Capabilities:
        return cls(**{f.name: True for f in fields(cls)})


#: Spelling of each flag on the command line (`render --capabilities servicemonitor,vpa`).
FLAG_NAMES = {
    "servicemonitor": "service_monitor",
    "prometheusrule": "prometheus_rule",
    "vpa": "vertical_pod_autoscaler",
    "alertmanagerconfig": "alertmanager_config",
}


def parse_flags(text: str) -> Capabilities:
    """`all`, `none` or a comma-separated subset of FLAG_NAMES' keys."""
    text = text.strip().lower()
    if text == "all":
        return Capabilities.all_enabled()
    if text in ("", "none"):
        return Capabilities()
    chosen: dict[str, bool] = {}
    for flag in text.split(","):
        flag = flag.strip()
        if flag not in FLAG_NAMES:
            raise ValueError(f"unknown capability {flag!r}; known: {', '.join(sorted(FLAG_NAMES))}")
        chosen[FLAG_NAMES[flag]] = True
    return Capabilities(**chosen)
