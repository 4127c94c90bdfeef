"""The ServiceMonitor of a RagFlowCluster (Prometheus Operator), scraping API and workers.

Called by builders/cluster.py only when the ServiceMonitor API is served. It selects the
`<cluster>-api` and `<cluster>-worker` Services (port `http`, path /metrics), which the
AlertPolicy rules rely on (their series carry `namespace` and `service` labels).
"""

from __future__ import annotations

from ragflow_operator import names
from ragflow_operator.builders import common
from ragflow_operator.builders.context import BuildContext
from ragflow_operator.builders.render import Manifest, render_manifest


def build_service_monitor(ctx: BuildContext) -> Manifest:
    model = ctx.model
    monitoring = model.monitoring
    labels = {**monitoring.labels, **names.component_labels(model.name, "metrics")}
    selector = {
        "matchLabels": {names.LABEL_NAME: names.APP_NAME, names.LABEL_INSTANCE: model.name},
        "matchExpressions": [
            {
                "key": names.LABEL_COMPONENT,
                "operator": "In",
                "values": [names.COMPONENT_API, names.COMPONENT_WORKER],
            }
        ],
    }
    return render_manifest(
        "servicemonitor.yaml.j2",
        meta=common.object_meta(
            name=model.name,
            namespace=model.namespace,
            labels=labels,
            owner_references=ctx.owner_references(),
        ),
        selector=selector,
        port_name=names.RUNTIME_PORT_NAME,
        path=names.METRICS_PATH,
        interval=monitoring.interval,
    )
