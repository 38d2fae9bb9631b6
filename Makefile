# The two commands the README opens with: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test install system-deps

$(BIN)/finmon: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' -c constraints.txt
	touch $@

install: $(BIN)/finmon

## Main job: local market simulator -> crawl -> analyse -> SQLite index -> HTML report.
demo: install
	$(BIN)/finmon demo --out out

## Everything the tests need (browser, CJK font, Elasticsearch), then the whole suite.
test: install system-deps
	$(BIN)/finmon es install
	$(BIN)/pytest

system-deps:
	bash scripts/install-test-deps.sh
