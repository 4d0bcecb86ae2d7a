# The author's commands. Each target bootstraps .venv from the pinned requirements, then calls a task in tasks.py.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INVOKE := $(BIN)/invoke
PORT ?= 8000
export PORT

.PHONY: serve build publish deploy release test import export remove migrate-store send bounces preview check-mail bench audit clean import-wordpress

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Third-party Pelican plugins the accelerator is tested with: in their own folder, not in .venv (see the file).
.pypi-plugins/.requirements-sha256: requirements-plugins.txt $(VENV)/.runtime
	rm -rf .pypi-plugins
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --target .pypi-plugins -r requirements-plugins.txt
	sha256sum requirements-plugins.txt | cut -d' ' -f1 > $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

serve: $(VENV)/.runtime
	$(INVOKE) serve --port $(PORT)

build: $(VENV)/.runtime
	$(INVOKE) build

publish: $(VENV)/.runtime
	$(INVOKE) publish

deploy: $(VENV)/.runtime
	$(INVOKE) deploy $(if $(ROLLBACK),--rollback)

release: $(VENV)/.runtime
	$(INVOKE) release

test: $(VENV)/.dev node_modules/.installed .pypi-plugins/.requirements-sha256
	$(INVOKE) test

# LIST= a rubrique's slug (empty: the whole blog).
import: $(VENV)/.runtime
	$(INVOKE) import --file "$(FILE)" --list "$(LIST)"

import-wordpress: $(VENV)/.runtime
	$(INVOKE) import-wordpress --file "$(FILE)" $(if $(UPLOADS),--uploads "$(UPLOADS)") $(if $(filter 1 yes true,$(FORCE)),--force)

# LIST= one list (a rubrique's slug, or tout for the whole blog); none: every address with its lists.
export: $(VENV)/.runtime
	@$(INVOKE) export $(if $(LIST),--list "$(LIST)")

remove: $(VENV)/.runtime
	$(INVOKE) remove --email "$(EMAIL)"

# FROM=, TO=: a SQLite path or a postgresql:// URL; TO must be empty. All or nothing, FROM untouched.
migrate-store: $(VENV)/.runtime
	$(INVOKE) migrate-store --source "$(FROM)" --target "$(TO)"

# POST= empty: every post due (the first run records the archive, mails nothing); TO=: a test send; DRY_RUN=1: only show.
send: $(VENV)/.runtime
	DRY_RUN="$(DRY_RUN)" $(INVOKE) send --post "$(POST)" --to "$(TO)"

# BOUNCE_MAILBOX: imaps://user:pass@host/INBOX or a Maildir folder; prints counts only.
bounces: $(VENV)/.runtime
	$(INVOKE) bounces

preview: $(VENV)/.runtime
	$(INVOKE) preview --post "$(POST)"

# SPF, DKIM, DMARC, MX of NEWSLETTER_FROM's domain and the SMTP_URL relay; exit 1 if anything is to fix.
check-mail: $(VENV)/.runtime
	$(INVOKE) check-mail

bench: $(VENV)/.dev
	$(INVOKE) bench

audit: $(VENV)/.dev node_modules/.installed
	$(INVOKE) audit

clean:
	rm -rf output .building-output-* .pytest_cache .pypi-plugins
