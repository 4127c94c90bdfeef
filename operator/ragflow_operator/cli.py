"""Command line: `ragflow-operator run` (the operator) and `ragflow-operator render -f cr.yaml`.

`run` reads the operator's settings once (settings.py), registers every handler module
(handlers.register_handlers) and runs kopf standalone over the given namespaces (or all of
them), with JSON logs and an optional liveness endpoint for the Helm chart's probe. `render`
prints, as stable YAML, the children the operator would apply for the custom resources in a
file (dispatching on `kind` through builders/registry.py). No reconcile logic lives here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import yaml

from ragflow_operator import __version__, errors
from ragflow_operator.builders.registry import RENDERERS
from ragflow_operator.builders.render import dump_manifests
from ragflow_operator.capabilities import FLAG_NAMES, parse_flags


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragflow-operator", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the operator")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)"
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    run.add_argument("--liveness", default=None, help="e.g. http://0.0.0.0:8080/healthz")
    run.add_argument(
        "--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port"
    )
    run.add_argument("--log-format", choices=["json", "plain"], default="json")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    render = commands.add_parser("render", help="print the children of the CRs in a file")
    render.add_argument("-f", "--filename", required=True, help="YAML file ('-' for stdin)")
    render.add_argument(
        "--capabilities",
        default="all",
        help=f"optional APIs to assume: all, none or a list of {','.join(sorted(FLAG_NAMES))}",
    )
    return parser


def _run(args: argparse.Namespace) -> int:
    import kopf

    from ragflow_operator.handlers import register_handlers
    from ragflow_operator.settings import OperatorSettings

    try:
        settings = OperatorSettings.from_environment()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.PLAIN,
    )
    registry = kopf.get_default_registry()
    register_handlers(registry, settings)
    if args.metrics_port:
        from ragflow_operator.metrics import start_metrics_server

        start_metrics_server(args.metrics_port)
    namespaces = [] if args.all_namespaces else (args.namespace or ["default"])
    kopf.run(
        registry=registry,
        standalone=True,
        clusterwide=bool(args.all_namespaces),
        namespaces=namespaces,
        liveness_endpoint=args.liveness,
    )
    return 0


def _render(args: argparse.Namespace) -> int:
    capabilities = parse_flags(args.capabilities)
    handle = sys.stdin if args.filename == "-" else open(args.filename, encoding="utf-8")  # noqa: SIM115
    with handle:
        documents = [d for d in yaml.safe_load_all(handle) if d]
    output: list[dict[str, object]] = []
    for document in documents:
        kind = document.get("kind")
        renderer = RENDERERS.get(str(kind))
        if renderer is None:
            known = ", ".join(sorted(RENDERERS))
            print(f"error: cannot render kind {kind!r} (known: {known})", file=sys.stderr)
            return 2
        try:
            result = renderer(document, capabilities)
        except errors.OperatorError as err:
            print(
                f"error: {kind} {document.get('metadata', {}).get('name')}: {err}", file=sys.stderr
            )
            return 1
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
        output.extend(result.manifests)
    sys.stdout.write(dump_manifests(output))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    return _render(args)


if __name__ == "__main__":
    sys.exit(main())
