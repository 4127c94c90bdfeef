"""The one place that talks to the Kubernetes API (besides kopf's own watching).

`KubeClient` is a small, thread-safe REST layer over the `kubernetes` package's configured
`ApiClient`: get/list/create/delete, server-side apply, merge patches of status, events and
API discovery, on plain dicts. Every transport error is translated here into errors.ApiError
subclasses (ApiNotFound, ApiConflict, ApiInvalid for 400/422, ApiThrottled for timeouts, 429
and 5xx), so no other module imports the
client's exceptions. Used by apply.py, observe.py, the handlers and the tests' helpers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from ragflow_operator import __version__, errors, names

Json = dict[str, Any]
USER_AGENT = f"ragflow-operator/{__version__}"

#: Plurals that the simple English rule in `plural_of` gets wrong.
IRREGULAR_PLURALS = {"Endpoints": "endpoints"}


def plural_of(kind: str) -> str:
    """Resource plural of a kind (Ingress → ingresses, NetworkPolicy → networkpolicies)."""
    if kind in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[kind]
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    if lower.endswith("s"):
        return lower + "es"
    return lower + "s"


@dataclass(frozen=True)
class ObjectRef:
    """Identity of a namespaced object."""

    api_version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, manifest: Json) -> ObjectRef:
        meta = manifest["metadata"]
        namespace = meta.get("namespace", "")
        return cls(manifest["apiVersion"], manifest["kind"], namespace, meta["name"])

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


def collection_path(api_version: str, kind: str, namespace: str) -> str:
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    return f"{base}/namespaces/{namespace}/{plural_of(kind)}"


def object_path(ref: ObjectRef) -> str:
    return f"{collection_path(ref.api_version, ref.kind, ref.namespace)}/{ref.name}"


#: Messages of a 500 that no retry can fix: the object itself cannot be converted to its type.
UNDECODABLE_MARKERS = ("failed to convert new object", "unable to convert unstructured object")


def _translate(status: int, body: bytes, what: str) -> errors.ApiError:
    """Turn an error response into our exception; the message names the object, never data."""
    try:
        message = json.loads(body or b"{}").get("message", "")
    except ValueError:
        message = body[:200].decode("utf-8", "replace")
    text = f"{what}: {message or 'HTTP ' + str(status)}"
    if status == 404:
        return errors.ApiNotFound(text, status)
    if status == 409:
        return errors.ApiConflict(text, status)
    if status in (400, 422):  # malformed (400) or invalid (422): the spec must change
        return errors.ApiInvalid(text, status)
    if status == 500 and any(marker in message for marker in UNDECODABLE_MARKERS):
        # server-side apply answers 500 when the merged object cannot be decoded into its
        # type (e.g. a malformed quantity in a field the schema leaves open): permanent too
        return errors.ApiInvalid(text, status)
    if status in (408, 429) or status >= 500:
        return errors.ApiThrottled(text, status)
    return errors.ApiError(text, status)


class KubeClient:
    """Plain-dict access to the API server with one configured `ApiClient` (thread-safe)."""

    def __init__(self, api_client: k8s_client.ApiClient) -> None:
        self.api_client = api_client

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None, pool_size: int = 32) -> KubeClient:
        """Client from `kubeconfig`, else $KUBECONFIG / ~/.kube/config, else in-cluster config."""
        configuration = k8s_client.Configuration()
        path = kubeconfig or os.environ.get("KUBECONFIG")
        default_path = os.path.expanduser("~/.kube/config")
        if path or os.path.exists(default_path):
            k8s_config.load_kube_config(config_file=path, client_configuration=configuration)
        else:
            k8s_config.load_incluster_config(client_configuration=configuration)
        configuration.connection_pool_maxsize = pool_size
        api_client = k8s_client.ApiClient(configuration)
        # Our requests are recognisable in audit logs (kopf's own say "kopf/<version>").
        api_client.user_agent = USER_AGENT
        return cls(api_client)

    # --- transport -----------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Iterable[tuple[str, str]] = (),
        content_type: str = "application/json",
        what: str = "",
        timeout: float = 30.0,
    ) -> Json:
        """One API request; returns the decoded JSON body or raises an errors.ApiError."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method_, url, headers, _, _ = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query) or None,
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        try:
            # The REST layer serialises dict bodies to JSON itself (also for apply-patch+yaml).
            response = self.api_client.call_api(
                method_, url, header_params=headers, body=body, _request_timeout=timeout
            )
            data = response.read()
        except ApiException as exc:  # transport-level failure (TLS, connection)
            raise errors.ApiThrottled(f"{what or path}: {exc.reason}", exc.status or 0) from None
        except OSError as exc:
            raise errors.ApiThrottled(f"{what or path}: {type(exc).__name__}", 0) from None
        if not 200 <= response.status < 300:
            raise _translate(response.status, data, what or f"{method} {path}")
        return json.loads(data) if data else {}

    # --- objects -------------------------------------------------------------------------------
    def get(self, ref: ObjectRef) -> Json | None:
        """The live object, or None when it does not exist."""
        try:
            return self.request("GET", object_path(ref), what=f"get {ref}")
        except errors.ApiNotFound:
            return None

    def list(
        self, api_version: str, kind: str, namespace: str, label_selector: dict[str, str]
    ) -> list[Json]:
        """Objects of a kind in a namespace matching every label (empty if the kind is absent)."""
        query = [("labelSelector", names.selector_string(label_selector))]
        try:
            path = collection_path(api_version, kind, namespace)
            result = self.request("GET", path, query=query, what=f"list {kind}")
        except errors.ApiNotFound:
            return []
        items = list(result.get("items") or [])
        for item in items:  # list items carry no apiVersion/kind; make them full objects
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def apply(
        self, manifest: Json, *, field_manager: str = names.FIELD_MANAGER, dry_run: bool = False
    ) -> Json:
        """Server-side apply with force: we own the fields we set, conflicts are overridden.

        With `dry_run`, the API server runs every admission step (schema, CEL, defaulting,
        webhooks) and answers as if it applied, but persists nothing.
        """
        ref = ObjectRef.of(manifest)
        query = [("fieldManager", field_manager), ("force", "true")]
        return self.request(
            "PATCH",
            object_path(ref),
            body=manifest,
            query=[*query, ("dryRun", "All")] if dry_run else query,
            content_type="application/apply-patch+yaml",
            what=f"{'check' if dry_run else 'apply'} {ref}",
        )

    def create(self, manifest: Json, *, dry_run: bool = False) -> Json:
        """Create; raises errors.ApiConflict when the object already exists."""
        ref = ObjectRef.of(manifest)
        path = collection_path(ref.api_version, ref.kind, ref.namespace)
        query = [("fieldManager", names.FIELD_MANAGER)]
        return self.request(
            "POST",
            path,
            body=manifest,
            query=[*query, ("dryRun", "All")] if dry_run else query,
            what=f"{'check' if dry_run else 'create'} {ref}",
        )

    def delete(self, ref: ObjectRef, *, uid: str | None = None) -> bool:
        """Delete in the background (dependents via GC); False when it was already gone.

        With `uid`, the delete only happens if the object is still that same incarnation.
        """
        options: Json = {"propagationPolicy": "Background"}
        if uid:
            options["preconditions"] = {"uid": uid}
        try:
            self.request("DELETE", object_path(ref), body=options, what=f"delete {ref}")
        except errors.ApiNotFound:
            return False
        return True

    def patch_status(self, ref: ObjectRef, status_patch: Json) -> Json:
        """JSON merge patch of the status subresource."""
        return self.request(
            "PATCH",
            object_path(ref) + "/status",
            body={"status": status_patch},
            query=[("fieldManager", names.FIELD_MANAGER)],
            content_type="application/merge-patch+json",
            what=f"patch status of {ref}",
        )

    # --- discovery -----------------------------------------------------------------------------
    def served_kinds(self, group_versions: Iterable[str]) -> dict[str, set[str]]:
        """For each groupVersion the server serves, the kinds it serves (absent ones omitted)."""
        served: dict[str, set[str]] = {}
        for group_version in group_versions:
            path = f"/apis/{group_version}" if "/" in group_version else f"/api/{group_version}"
            try:
                found = self.request("GET", path, what=f"discover {group_version}")
            except errors.ApiNotFound:
                continue
            served[group_version] = {
                r["kind"] for r in found.get("resources", []) if "/" not in r.get("name", "")
            }
        return served
