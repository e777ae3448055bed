# Two commands do all the set-up on a fresh machine (see README.md):
#   make demo   - build the environment, group the sample data, open the UI
#   make test   - build the environment, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch 2.13.0 is the CPU build where the machine provides one (pip's find-links) and the
# CUDA build from PyPI on a Linux GPU machine. Override, e.g. TORCH="torch==2.13.0 --index-url ..."
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test venv browser clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(STAMP)

# Imports and groups the sample questions into var/demo.sqlite (once), then serves the UI on
# http://127.0.0.1:8501 (localhost only). Ctrl-C stops it.
demo: $(STAMP)
	mkdir -p var
	$(BIN)/grouper ui --db var/demo.sqlite --import-samples

# The browser tests drive Debian's Chromium (Playwright's own browser download is not used);
# install it when missing and apt-get is there, else those tests are skipped.
browser:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then \
		if [ "$$(id -u)" -eq 0 ]; then SUDO=""; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

test: $(STAMP) browser
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV)
