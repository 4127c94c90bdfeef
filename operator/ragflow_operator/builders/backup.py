"""The children of a BackupPolicy, and the restore Job of RagFlowCluster.spec.restoreFrom.

Pure: model (+ the referenced cluster's model) in, manifests out. `build(model, capabilities,
target=...)` (the shape of every kind's builder, builders/children.py) gives the policy's
ConfigMap and CronJobs; it is called by handlers/backup_policy.py (which adds the on-demand
Jobs) and by `render`; restore.py calls `build_restore_job` for a RagFlowCluster. Every Job
runs `ragruntime backup ...` in the runtime image with the runtime's own RAGFLOW_* environment
(so it reaches the same database and vector store), the backup configuration from a ConfigMap,
and Secrets mounted as files: the keyring and each destination's credentials. Nothing secret
is in a manifest. Pods follow the `restricted` Pod Security profile; the JSON summary of
`ragruntime backup` lands in the termination message, which the handler reads back into the
policy's status.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ragflow_contract import environment
from ragflow_operator import names
from ragflow_operator.builders import common
from ragflow_operator.builders.children import Children
from ragflow_operator.builders.render import Manifest, render_manifest
from ragflow_operator.builders.runtime import DATA_DIR, RUNTIME_USER, runtime_env
from ragflow_operator.capabilities import Capabilities
from ragflow_operator.model.backup_policy import BackupPolicyModel, Destination
from ragflow_operator.model.cluster import ClusterModel

Json = dict[str, Any]

LABEL_POLICY = f"{names.GROUP}/backup-policy"
LABEL_JOB_KIND = f"{names.GROUP}/backup-job"  # backup | validation | on-demand | restore
CONFIG_DIR = "/etc/ragflow/backup"
CONFIG_FILE = f"{CONFIG_DIR}/backup.json"
KEYRING_DIR = "/var/run/ragflow/backup/keyring"
CREDENTIALS_DIR = "/var/run/ragflow/backup/credentials"
SCRATCH_DIR = "/scratch"
TERMINATION_LOG = "/dev/termination-log"
CONTAINER = "backup"


def config_map_name(policy: str) -> str:
    return f"{policy}-backup-config"


def cronjob_name(policy: str, schedule: str) -> str:
    return f"{policy}-{schedule}"


def validation_name(policy: str) -> str:
    return f"{policy}-validate"


def on_demand_job_name(policy: str, value: str) -> str:
    """Same annotation value → same Job name, so a repeated reconcile never runs it twice."""
    return f"{policy}-now-{hashlib.sha256(value.encode()).hexdigest()[:10]}"


def restore_job_name(cluster: str) -> str:
    return names.child_name(cluster, "restore")


def policy_selector(policy: str) -> dict[str, str]:
    """Selects every child of one BackupPolicy (for listing and removal)."""
    return {LABEL_POLICY: policy, names.LABEL_MANAGED_BY: names.MANAGED_BY}


@dataclass(frozen=True)
class RuntimeTarget:
    """What a backup pod needs from the RagFlowCluster it backs up."""

    cluster: str
    image: str
    pull_policy: str
    pull_secrets: tuple[str, ...]
    env: tuple[Json, ...]
    config_map: str


def runtime_target(cluster: ClusterModel, policy: BackupPolicyModel | None = None) -> RuntimeTarget:
    image = cluster.image.reference
    if policy is not None and policy.image.repository:
        image = f"{policy.image.repository}:{policy.image.tag or cluster.version}"
    env = [e for e in runtime_env(cluster, names.COMPONENT_WORKER) if e["name"] != environment.ROLE]
    return RuntimeTarget(
        cluster=cluster.name,
        image=image,
        pull_policy=cluster.image.pull_policy,
        pull_secrets=cluster.image.pull_secrets,
        env=tuple(env),
        config_map=names.config_name(cluster.name),
    )


def destination_config(d: Destination) -> Json:
    """One destination of the runtime's configuration file: credentials as a mounted folder."""
    block = dict(d.settings)
    if d.credentials_secret:
        block["credentialsDir"] = f"{CREDENTIALS_DIR}/{d.name}"
    return {"name": d.name, d.provider: block}


def backup_config(model: BackupPolicyModel) -> Json:
    """The file `ragruntime backup` reads (ragruntime/backup/settings.py), without secrets."""

    return {
        "cluster": model.cluster,
        "destinations": [destination_config(d) for d in model.destinations],
        "minSuccessfulDestinations": model.min_successful,
        "destinationTimeoutSeconds": model.destination_timeout_seconds,
        "include": model.include,
        "keyringFile": f"{KEYRING_DIR}/keyring",
        "keyRotationDays": model.key_rotation_days,
        "schedules": [
            {"name": s.name, "type": s.type, "retention": s.retention} for s in model.schedules
        ],
    }


def _meta(model: BackupPolicyModel, name: str, cluster: str, **annotations: str) -> Json:
    return common.object_meta(
        name=name,
        namespace=model.namespace,
        labels=_labels(model, cluster, None),
        owner_references=common.owner_reference(
            api_version=names.API_VERSION,
            kind=names.KIND_BACKUP_POLICY,
            name=model.name,
            uid=model.uid,
        ),
        annotations=annotations,
    )


def _labels(model: BackupPolicyModel | None, cluster: str, job_kind: str | None) -> dict[str, str]:
    # instance = the cluster, so the cluster's NetworkPolicy lets backup pods reach its stores.
    labels = names.component_labels(cluster, names.COMPONENT_BACKUP)
    if model is not None:
        labels[LABEL_POLICY] = model.name
    if job_kind:
        labels[LABEL_JOB_KIND] = job_kind
    return labels


def build_config_map(model: BackupPolicyModel) -> Manifest:
    data = {"backup.json": json.dumps(backup_config(model), indent=2, sort_keys=True)}
    return render_manifest(
        "configmap.yaml.j2",
        meta=_meta(model, config_map_name(model.name), model.cluster),
        data=data,
    )


def _env(target: RuntimeTarget) -> list[Json]:
    """The runtime's env (its order matters: URLs refer to earlier vars) plus ours, unique."""
    ours = [{"name": "HOME", "value": "/tmp"}, {"name": environment.LOG_LEVEL, "value": "INFO"}]
    taken = {e["name"] for e in target.env}
    return [*target.env, *(e for e in ours if e["name"] not in taken)]


@dataclass(frozen=True)
class JobMounts:
    """What a runtime Job mounts: its configuration, the keyring and destination credentials."""

    config_map: str
    key_secret: str
    key_secret_key: str
    destinations: tuple[Destination, ...]
    scratch_size_limit: str


def _volumes(model: BackupPolicyModel, config_map: str) -> tuple[list[Json], list[Json]]:
    return job_volumes(
        JobMounts(
            config_map=config_map,
            key_secret=model.key_secret,
            key_secret_key=model.key_secret_key,
            destinations=model.destinations,
            scratch_size_limit=model.scratch_size_limit,
        )
    )


def job_volumes(mounts_of: JobMounts) -> tuple[list[Json], list[Json]]:
    """Volumes and mounts of a backup/restore/sync pod: Secrets as read-only 0400 files."""
    volumes: list[Json] = [
        {"name": "config", "configMap": {"name": mounts_of.config_map}},
        {
            "name": "keyring",
            "secret": {
                "secretName": mounts_of.key_secret,
                "items": [{"key": mounts_of.key_secret_key, "path": "keyring"}],
                "defaultMode": 0o400,
            },
        },
        {"name": "scratch", "emptyDir": {"sizeLimit": mounts_of.scratch_size_limit}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        # The runtime's data dir (RAGFLOW_DATA_DIR from the cluster's ConfigMap): the restore
        # writes the restored settings there. The root filesystem is read-only, and the image's
        # VOLUME is no pod volume: runtimes that ignore image volumes would leave it read-only.
        {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    mounts: list[Json] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "keyring", "mountPath": KEYRING_DIR, "readOnly": True},
        {"name": "scratch", "mountPath": SCRATCH_DIR},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "data", "mountPath": DATA_DIR},
    ]
    for d in mounts_of.destinations:
        if d.credentials_secret:
            volume = f"creds-{d.name}"
            secret = {"secretName": d.credentials_secret, "defaultMode": 0o400}
            volumes.append({"name": volume, "secret": secret})
            mounts.append(
                {"name": volume, "mountPath": f"{CREDENTIALS_DIR}/{d.name}", "readOnly": True}
            )
    return volumes, mounts


def job_pod(
    target: RuntimeTarget,
    command: list[str],
    volumes: list[Json],
    mounts: list[Json],
    resources: Json,
) -> Json:
    """The pod of a runtime Job: `command` plus `--termination-log`, restricted, Secrets as files.

    The JSON summary the command writes to the termination log is what the operator reads back
    (handlers/backup_policy.py `job_result`).
    """
    container: Json = {
        "name": CONTAINER,
        "image": target.image,
        "imagePullPolicy": target.pull_policy,
        "args": [*command, "--termination-log", TERMINATION_LOG],
        "envFrom": [{"configMapRef": {"name": target.config_map}}],
        "env": _env(target),
        "resources": common.resources(resources),
        "securityContext": common.container_security_context(),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": mounts,
    }
    pod: Json = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": common.pod_security_context(RUNTIME_USER, fs_group=RUNTIME_USER),
        "containers": [container],
        "volumes": volumes,
    }
    if target.pull_secrets:
        pod["imagePullSecrets"] = [{"name": s} for s in target.pull_secrets]
    return pod


def _job_spec(
    model: BackupPolicyModel,
    target: RuntimeTarget,
    args: list[str],
    job_kind: str,
    *,
    config_map: str | None = None,
    backoff_limit: int | None = None,
) -> Json:
    volumes, mounts = _volumes(model, config_map or config_map_name(model.name))
    command = ["ragruntime", "backup", *args, "--config", CONFIG_FILE]
    pod = job_pod(target, command, volumes, mounts, model.resources)
    return {
        "backoffLimit": model.backoff_limit if backoff_limit is None else backoff_limit,
        "activeDeadlineSeconds": model.active_deadline_seconds,
        "ttlSecondsAfterFinished": 7 * 86400,
        "template": {
            "metadata": {"labels": _labels(model, target.cluster, job_kind)},
            "spec": pod,
        },
    }


def _cronjob(
    model: BackupPolicyModel,
    target: RuntimeTarget,
    name: str,
    cron: str,
    suspend: bool,
    args: list[str],
    job_kind: str,
) -> Manifest:
    return render_manifest(
        "cronjob.yaml.j2",
        meta=_meta(model, name, target.cluster),
        schedule=cron,
        starting_deadline_seconds=model.starting_deadline_seconds,
        suspend=suspend,
        successful_history=model.successful_history,
        failed_history=model.failed_history,
        job_labels=_labels(model, target.cluster, job_kind),
        job_spec=_job_spec(model, target, args, job_kind),
    )


def build_cronjobs(model: BackupPolicyModel, target: RuntimeTarget) -> list[Manifest]:
    """One CronJob per schedule, plus the validation CronJob when enabled."""
    manifests = [
        _cronjob(
            model,
            target,
            cronjob_name(model.name, s.name),
            s.cron,
            model.suspend or s.suspend,
            ["run", "--schedule", s.name, "--workdir", SCRATCH_DIR],
            "backup",
        )
        for s in model.schedules
    ]
    if model.validation.enabled:
        args = ["verify", "--tests", ",".join(model.validation.tests), "--workdir", SCRATCH_DIR]
        manifests.append(
            _cronjob(
                model,
                target,
                validation_name(model.name),
                model.validation.cron,
                model.suspend,
                args,
                "validation",
            )
        )
    return manifests


def build_on_demand_job(model: BackupPolicyModel, target: RuntimeTarget, value: str) -> Manifest:
    """The Job for `ragflow.operator.dev/backup-now: <value>` (full backup, retention applied)."""
    args = ["run", "--schedule", "on-demand", "--type", "full", "--workdir", SCRATCH_DIR]
    meta = _meta(
        model,
        on_demand_job_name(model.name, value),
        target.cluster,
        **{names.ANNOTATION_BACKUP_NOW: value},
    )
    meta["labels"][LABEL_JOB_KIND] = "on-demand"
    return render_manifest(
        "job.yaml.j2", meta=meta, job_spec=_job_spec(model, target, args, "on-demand")
    )


def build(
    model: BackupPolicyModel, capabilities: Capabilities, *, target: RuntimeTarget
) -> Children:
    """Everything a BackupPolicy owns permanently (on-demand Jobs are added by the handler).

    `target` is what the pods take from the policy's RagFlowCluster (`runtime_target`). No
    child needs an optional API, so `capabilities` changes nothing.
    """
    return Children(manifests=[build_config_map(model), *build_cronjobs(model, target)])


def build_restore_job(
    cluster: ClusterModel, policy: BackupPolicyModel, backup_id: str | None
) -> list[Manifest]:
    """ConfigMap + Job that restore `backup_id` (None: the newest) into a NEW cluster.

    For RagFlowCluster.spec.restoreFrom: handlers/cluster.py applies these once the cluster's
    database and vector store are ready and BEFORE it creates the API/worker Deployments; it
    creates the Deployments only after the Job has succeeded (Complete condition). The Job is
    owned by the RagFlowCluster; the restore refuses a non-empty target, so re-running it can
    never overwrite data.
    """
    target = runtime_target(cluster, policy)
    owner = common.owner_reference(
        api_version=names.API_VERSION, kind=names.KIND_CLUSTER, name=cluster.name, uid=cluster.uid
    )
    config_name = names.child_name(cluster.name, "restore-config")
    labels = names.component_labels(cluster.name, names.COMPONENT_BACKUP)
    labels[LABEL_JOB_KIND] = "restore"
    config = backup_config(policy)
    config["cluster"] = policy.cluster  # the backups live under the SOURCE cluster's name
    config_map = render_manifest(
        "configmap.yaml.j2",
        meta=common.object_meta(
            name=config_name, namespace=cluster.namespace, labels=labels, owner_references=owner
        ),
        data={"backup.json": json.dumps(config, indent=2, sort_keys=True)},
    )
    spec = _job_spec(
        policy,
        target,
        ["restore", "--backup-id", backup_id or "latest"],
        "restore",
        config_map=config_name,
        backoff_limit=2,
    )
    spec["template"]["metadata"]["labels"] = labels
    job = render_manifest(
        "job.yaml.j2",
        meta=common.object_meta(
            name=restore_job_name(cluster.name),
            namespace=cluster.namespace,
            labels=labels,
            owner_references=owner,
        ),
        job_spec=spec,
    )
    return [config_map, job]
