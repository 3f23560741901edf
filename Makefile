# Course commands. Each target sets up .venv itself (created if missing, reinstalled when
# pyproject.toml or constraints.txt change), so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# Tests run offline, in quick mode, with quiet progress bars.
TEST_ENV := XAI_QUICK=1 XAI_DOWNLOAD=0 XAI_QUIET=1 MPLBACKEND=Agg
# Jupyter refuses to run as root unless told (containers, CI); extra flags: make lab LAB_ARGS=...
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)
# make site: EXECUTE=0 renders the committed notebooks instead of executing them again
EXECUTE ?= 1

.PHONY: help install lab test lint browser run run-inplace site bench verify student clean

help:
	@echo "make lab          open JupyterLab on notebooks/"
	@echo "make test         ruff + unit tests + every notebook in quick mode (offline)"
	@echo "make run          execute every notebook in full mode into build/notebooks/"
	@echo "make run-inplace  execute every notebook in full mode and save outputs in place"
	@echo "make site         make run, then render build/notebooks/ as HTML in build/site/"
	@echo "                  (make site EXECUTE=0: render the committed notebooks, no execution)"
	@echo "make browser      install Debian's chromium for tests/test_browser.py (make test does)"
	@echo "make bench        run the benchmarks in benchmarks/"
	@echo "make verify       re-measure every checkpoint on the full test sets in \$$XAI_DATA_DIR"
	@echo "make student      write the student version (no exercise solutions) to STUDENT_DIR"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(LAB_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check xai_helpers tests benchmarks tools data/make_samples.py

# Chromium for tests/test_browser.py; never fails: without it that test skips, saying why.
browser:
	@sh tools/install_chromium.sh

test: lint browser
	$(TEST_ENV) $(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider tests notebooks

run: $(STAMP)
	@mkdir -p build/notebooks
	XAI_QUICK=0 $(BIN)/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=3600 \
		--output-dir build/notebooks $(NOTEBOOKS)

run-inplace: $(STAMP)
	XAI_QUICK=0 $(BIN)/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=3600 \
		--inplace $(NOTEBOOKS)

site: $(STAMP) $(if $(filter 0,$(EXECUTE)),,run)
	$(BIN)/python tools/make_site.py --out build/site \
		$(if $(filter 0,$(EXECUTE)),--note "Outputs as committed (executed in full mode)",) \
		$(if $(filter 0,$(EXECUTE)),$(NOTEBOOKS),$(patsubst notebooks/%,build/notebooks/%,$(NOTEBOOKS)))

bench: $(STAMP)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

verify: $(STAMP)
	$(BIN)/python -m xai_helpers.verify

STUDENT_DIR ?= ../xai-course-student
student: $(STAMP)
	$(BIN)/python tools/student_version.py $(STUDENT_DIR)

clean:
	rm -rf build .pytest_cache .ruff_cache
