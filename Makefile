# Two commands do all set-up on a fresh machine:
#   make run    the dashboard (creates .venv and installs forkwatch when missing)
#   make test   the whole test suite (also installs Debian's chromium for browser tests
#               and redis-server for the viewer workers' tests)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
VERSION := import sys; print("%d.%d" % sys.version_info[:2])
WANT := $(shell $(PYTHON) -c '$(VERSION)' 2>/dev/null)
HAVE := $(shell $(PY) -c '$(VERSION)' 2>/dev/null || { test -e $(VENV) && echo broken; })

.PHONY: run test bench browser redis lint clean python stale-venv

# Before anything is built, $(PYTHON) must be 3.11 or newer (pyproject's requires-python);
# a .venv made by another Python (say, left by a try with 3.10) is made again.
python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  found=$$($(PYTHON) -V 2>&1) || found="not found"; \
	  echo "forkwatch needs Python 3.11 or newer, and $(PYTHON) is $$found: run make PYTHON=python3.11 (or a newer python3.X)" >&2; \
	  exit 1; }

stale-venv:
	@echo "$(VENV) $(if $(filter broken,$(HAVE)),cannot run its Python,was made by Python $(HAVE)), not by $(PYTHON) (Python $(WANT)): making it again"
	rm -rf $(VENV)

$(STAMP): pyproject.toml $(if $(and $(HAVE),$(filter-out $(WANT),$(HAVE))),stale-venv) | python
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: python $(STAMP)
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

redis:  # also for make bench (its scale_out section)
	$(call debian,/usr/bin/redis-server,redis-server,the viewer workers' tests)

test: python $(STAMP) browser redis
	$(PY) -m pytest $(ARGS)

bench: python $(STAMP) redis
	$(PY) -m bench $(ARGS)

lint: python $(STAMP)
	$(PY) -m pip install --quiet ruff
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) *.egg-info
