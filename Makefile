# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: install run test lint browser dovecot clean

install: $(STAMP)

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: install dovecot
	$(VENV)/bin/deskclone dev

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

# The page tests drive Debian's Chromium; Playwright never downloads a browser.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# IMAP is tested against a real Dovecot (Debian's dovecot-imapd), and `deskclone dev` runs one as
# its sandbox mail server. Installed where this user may; elsewhere `dev` says how to add it.
dovecot:
	@command -v dovecot >/dev/null || PATH="$$PATH:/usr/sbin" command -v dovecot >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null \
			|| echo "could not install dovecot-imapd; IMAP tests and the dev sandbox mail server need it"; \
		else echo "dovecot is not installed: sudo apt-get install dovecot-imapd (IMAP tests need it)"; fi; }

test: lint browser dovecot
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache build *.egg-info
