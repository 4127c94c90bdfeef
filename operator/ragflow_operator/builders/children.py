"""What every kind's builder returns: `Children`, the manifests to apply and notes for the user.

The three kinds' entry points have one shape, `build(model, capabilities, ...) -> Children`
(builders/cluster.py, builders/backup.py, builders/alert_policy.py): a frozen model and the
optional APIs the cluster serves in, the ordered children out. Keyword-only arguments carry
what the handler resolved beforehand and the model cannot hold (values of Secrets generated
once, the referenced cluster of a BackupPolicy). The handlers hand `manifests` to
apply.apply_children; `render` prints them and writes the notes to stderr.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ragflow_operator.builders.render import Manifest


@dataclass(frozen=True)
class Children:
    """The desired children of one custom resource, in apply order."""

    manifests: list[Manifest]
    #: Why requested optional children were left out (an API the cluster does not serve), for
    #: a condition message and `render`'s stderr.
    notes: list[str] = field(default_factory=list)
