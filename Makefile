# Every target creates .venv and installs the project when it is missing or out of date,
# so `make demo` and `make test` are the whole setup on a fresh clone.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8765

.PHONY: install demo test test-fast bench soak dev sandbox lint format clean

install: $(STAMP)

# uv installs the pinned set in seconds where pip takes minutes; constraints.txt holds every pin.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv==0.13.9'
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/metasync demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit

bench: $(STAMP)
	$(BIN)/python -m benchmarks

soak: $(STAMP)
	$(BIN)/python -m benchmarks soak

dev: $(STAMP)
	$(BIN)/metasync dev

sandbox: $(STAMP)
	$(BIN)/metasync sandbox --port $(PORT) --admin

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf .metasync .pytest_cache .ruff_cache .hypothesis
