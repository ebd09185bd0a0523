# Two commands do all set-up on a fresh machine:
#   make run    the dashboard (creates .venv and installs forkwatch when missing)
#   make test   the whole test suite (also installs Debian's chromium for browser tests
#               and redis-server for the viewer workers' tests)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: run test bench browser redis lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m supervisor $(ARGS)

# $(call debian,PATH,PACKAGE,WHO): install Debian's PACKAGE (as root) when PATH is missing
define debian
@test -x $(1) || { \
  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
  else echo "$(3) need $(1): sudo apt-get install $(2)" >&2; exit 1; fi; }
endef

browser:
	$(call debian,/usr/bin/chromium,chromium,browser tests)

redis:
	$(call debian,/usr/bin/redis-server,redis-server,the viewer workers' tests)

test: $(STAMP) browser redis
	$(PY) -m pytest $(ARGS)

bench: $(STAMP)
	$(PY) -m bench $(ARGS)

lint: $(STAMP)
	$(PY) -m pip install --quiet ruff
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) *.egg-info
