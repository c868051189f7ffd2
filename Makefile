# Two commands on a fresh Debian 12 / Python 3.11 machine:
#   make demo   - install into .venv and run `cosmos generate` on the seed payload (embedded SQLite store)
#   make test   - install, bring up the real parts (dockerd, haproxy, dynalite) and run every test
VENV ?= .venv
PY := $(VENV)/bin/python
PLUGINS := $(wildcard plugins/*/pyproject.toml)

.PHONY: install demo test bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(PLUGINS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $@

demo: install
	$(VENV)/bin/cosmos generate examples/seed-payload.json

test: install
	bash scripts/install-test-deps.sh
	$(VENV)/bin/pytest $(PYTEST_ARGS)
