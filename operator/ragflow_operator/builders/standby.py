"""The children of a standby RagFlowCluster: the sync configuration and the sync CronJob.

Pure: cluster model (its `standby`, a StandbyModel) in, manifests out. Called by
builders/cluster.py while `spec.standby.enabled` is true; when it turns false (promotion) they
are no longer desired and apply.py removes them. The CronJob `<cluster>-standby-sync` runs
`ragruntime standby sync --config <file>` in the runtime image with the cluster's own store
environment (like the restore Job, so it writes into this cluster's stores) and the same Secret
mounts as the backup Jobs: the primary's keyring and each destination's credentials, as
read-only files. The configuration file has the schema of the backup configuration
(builders/backup.py `backup_config`), `cluster` naming the PRIMARY whose backups are followed.
The Job's JSON summary lands in its termination message, which handlers/cluster_standby.py
reads back.
"""

from __future__ import annotations

import json
from typing import Any

from ragflow_operator import names
from ragflow_operator.builders import backup, common
from ragflow_operator.builders.render import Manifest, render_manifest
from ragflow_operator.model.cluster import ClusterModel
from ragflow_operator.model.standby import StandbyModel

Json = dict[str, Any]

#: Value of the backup-job label on sync Jobs (handlers/cluster_standby.py lists them by it).
JOB_KIND = "standby-sync"
CONFIG_KEY = "standby.json"
CONFIG_FILE = f"{backup.CONFIG_DIR}/{CONFIG_KEY}"
#: Room for the vector export/import of one incremental sync.
SCRATCH_SIZE_LIMIT = "20Gi"
#: A sync that has not finished within this is stopped; the next run starts over.
ACTIVE_DEADLINE_SECONDS = 3600
STARTING_DEADLINE_SECONDS = 120
HISTORY = 3


def cronjob_name(cluster: str) -> str:
    return names.child_name(cluster, "standby-sync")


def config_map_name(cluster: str) -> str:
    return names.child_name(cluster, "standby-config")


def job_labels(cluster: str) -> dict[str, str]:
    """Labels of the sync Jobs and their pods (component backup: the NetworkPolicy lets them
    reach this cluster's stores)."""
    labels = names.component_labels(cluster, names.COMPONENT_BACKUP)
    labels[backup.LABEL_JOB_KIND] = JOB_KIND
    return labels


def job_selector(cluster: str) -> dict[str, str]:
    """Selects the sync Jobs of one cluster."""
    return {names.LABEL_INSTANCE: cluster, backup.LABEL_JOB_KIND: JOB_KIND}


def sync_config(standby: StandbyModel) -> Json:
    """The file `ragruntime standby sync --config` reads (the backup configuration's schema)."""
    return {
        "cluster": standby.source_cluster,
        "destinations": [backup.destination_config(d) for d in standby.destinations],
        "minSuccessfulDestinations": 1,
        "keyringFile": f"{backup.KEYRING_DIR}/keyring",
    }


def _meta(model: ClusterModel, name: str) -> Json:
    return common.object_meta(
        name=name,
        namespace=model.namespace,
        labels=job_labels(model.name),
        owner_references=common.owner_reference(
            api_version=names.API_VERSION,
            kind=names.KIND_CLUSTER,
            name=model.name,
            uid=model.uid,
        ),
    )


def build_config_map(model: ClusterModel, standby: StandbyModel) -> Manifest:
    data = {CONFIG_KEY: json.dumps(sync_config(standby), indent=2, sort_keys=True)}
    return render_manifest(
        "configmap.yaml.j2", meta=_meta(model, config_map_name(model.name)), data=data
    )


def build_cronjob(model: ClusterModel, standby: StandbyModel) -> Manifest:
    """`<cluster>-standby-sync`: one sync at a time (Forbid), never replayed when late."""
    target = backup.runtime_target(model)
    volumes, mounts = backup.job_volumes(
        backup.JobMounts(
            config_map=config_map_name(model.name),
            key_secret=standby.key_secret,
            key_secret_key=standby.key_secret_key,
            destinations=standby.destinations,
            scratch_size_limit=SCRATCH_SIZE_LIMIT,
        )
    )
    command = ["ragruntime", "standby", "sync", "--config", CONFIG_FILE]
    pod = backup.job_pod(target, command, volumes, mounts, standby.resources)
    labels = job_labels(model.name)
    job_spec = {
        "backoffLimit": 0,  # the next scheduled run is the retry
        "activeDeadlineSeconds": ACTIVE_DEADLINE_SECONDS,
        "ttlSecondsAfterFinished": 86400,
        "template": {"metadata": {"labels": labels}, "spec": pod},
    }
    return render_manifest(
        "cronjob.yaml.j2",
        meta=_meta(model, cronjob_name(model.name)),
        schedule=standby.schedule,
        starting_deadline_seconds=STARTING_DEADLINE_SECONDS,
        suspend=False,
        successful_history=HISTORY,
        failed_history=HISTORY,
        job_labels=labels,
        job_spec=job_spec,
    )


def build_standby_children(model: ClusterModel) -> list[Manifest]:
    """ConfigMap + CronJob while the cluster is a standby; nothing for a primary."""
    if model.standby is None:
        return []
    return [build_config_map(model, model.standby), build_cronjob(model, model.standby)]
