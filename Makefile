# Two commands do all set-up on a fresh machine with Python 3.11:
#   make book   create .venv if missing, install, generate the synthetic world,
#               run every chapter and build the HTML book (_build/html/index.html)
#   make test   create .venv if missing, install, run the test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: book test lint clean env browser

env: $(STAMP)

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m ipykernel install --prefix $(VENV) --name python3 >/dev/null
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/nepkit book

# Headless Chromium for the browser test of the built book (Debian packages;
# installed when missing and we may, else the browser test is skipped with a reason).
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	      || echo "note: could not install Chromium; the browser test will be skipped"; \
	  else echo "note: Chromium missing (apt-get install chromium chromium-driver); the browser test will be skipped"; fi; \
	fi

test: $(STAMP) browser
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check nepkit tests benchmarks

clean:
	rm -rf _build runs
