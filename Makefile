# Two commands on a fresh Debian 12 / Python 3.11 machine:
#   make demo   - install into .venv and run `cosmos generate` on the seed payload (embedded SQLite store)
#   make test   - install, bring up the real parts (dockerd, haproxy, dynalite) and run every test
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check
PLUGINS := $(wildcard plugins/*/pyproject.toml)

.PHONY: install demo test image

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(PLUGINS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) -e '.[serve]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) -e '.[serve,test]'
	touch $@

demo: install
	$(VENV)/bin/cosmos generate examples/seed-payload.json

test: $(VENV)/.installed-test
	bash scripts/install-test-deps.sh
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The agent image (Dockerfile): wheels of Cosmos, its agent plugins and their dependencies, then docker build.
AGENT_PACKAGES := . plugins/events_docker plugins/reload_docker_exec plugins/routing_host_path plugins/emit_remote
image: install
	rm -rf build/wheels
	$(PY) -m pip wheel -q --disable-pip-version-check --wheel-dir build/wheels $(AGENT_PACKAGES)
	docker build -t cosmos-agent .
