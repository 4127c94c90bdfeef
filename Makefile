# One entry point for developers and CI. `make test` is the README's test command:
# it installs what is missing (idempotent), lints, then runs the whole suite.
PYTHON ?= python3
PYTEST_ARGS ?=

.PHONY: install lint test unit demo controlplane e2e-kind images lock e2e-node sync-crds bench clean

install:
	bash scripts/bootstrap.sh

lint:  # style, the layers (.importlinter), types (mypy: [tool.mypy] in pyproject.toml)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	lint-imports
	$(PYTHON) -m mypy

test: install lint
	$(PYTHON) -m pytest $(PYTEST_ARGS)

# The README's first command: local control plane + operator + samples + runtime query.
demo: install
	$(PYTHON) -m e2e.demo $(DEMO_ARGS)

unit:
	$(PYTHON) -m pytest tests/unit $(PYTEST_ARGS)

controlplane:
	bash scripts/install.d/40-controlplane.sh

e2e-kind:  # the e2e suite against a kind cluster (needs docker + kind; see docs/kind.md)
	bash e2e/kind/run.sh

images:  # both images from the Dockerfile, without a registry by default (docs/images.md)
	bash scripts/images/build.sh

lock:  # re-resolve pyproject.toml, then pin what got installed into constraints.txt (docs/images.md)
	$(PYTHON) -m pip install -q -e '.[all,dev]'
	$(PYTHON) scripts/lock.py

e2e-node:  # the real-node tier: kubelet + containerd + CNI, real pods (docs/real-node.md)
	$(PYTHON) -m pytest e2e/node $(PYTEST_ARGS)

sync-crds:  # copy crds/ into the Helm chart and regenerate docs/reference/crds.md (tests check both)
	rm -f charts/ragflow-operator/crds/*.yaml && cp crds/*.yaml charts/ragflow-operator/crds/
	$(PYTHON) scripts/gen_crd_reference.py

bench:
	$(PYTHON) -m pytest tests/bench -s -p no:cacheprovider $(PYTEST_ARGS)

clean:
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache build *.egg-info operator/*.egg-info
