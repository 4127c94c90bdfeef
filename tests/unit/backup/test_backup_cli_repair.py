"""``ragruntime backup repair|list|prune`` on a local destination whose catalog is damaged."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from backup_helpers import DictSnapshot

from ragruntime.backup import crypto
from ragruntime.backup.destinations.local import LocalDestination
from ragruntime.backup.engine import BackupOptions, run_backup
from ragruntime.cli import main


def test_repair_rebuilds_a_truncated_catalog_and_list_never_fails(tmp_path: Path, capsys) -> None:
    key = os.urandom(32)
    (tmp_path / "keyring").write_text(base64.b64encode(key).decode())
    config = tmp_path / "backup.json"
    config.write_text(
        json.dumps(
            {
                "cluster": "demo",
                "keyringFile": str(tmp_path / "keyring"),
                "destinations": [{"name": "disk", "local": {"path": str(tmp_path / "repo")}}],
            }
        )
    )
    dest = LocalDestination("disk", tmp_path / "repo" / "demo")
    options = BackupOptions(cluster="demo", object_size=1024, chunk_size=256)
    keyring = crypto.Keyring.from_keys([key])
    ids = [
        run_backup(
            DictSnapshot({("files", "a"): os.urandom(2000)}), [dest], keyring, options
        ).backup_id
        for _ in range(2)
    ]
    catalog = tmp_path / "repo" / "demo" / "catalog.json"
    catalog.write_bytes(catalog.read_bytes()[:40])

    assert main(["backup", "list", "--config", str(config), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert sorted(b["id"] for b in listing[0]["backups"]) == sorted(ids)

    assert main(["backup", "repair", "--config", str(config)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["ok"] and report["details"][0]["added"] == sorted(ids)
    assert sorted(b["id"] for b in json.loads(catalog.read_text())["backups"]) == sorted(ids)

    assert main(["backup", "repair", "--config", str(config)]) == 0  # nothing left to do
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["details"][0]["added"] == [] and again["details"][0]["dropped"] == []
