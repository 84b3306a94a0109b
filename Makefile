# ytrec — the two commands are `make run` and `make test`; both build .venv from the pinned files first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PRESET ?= ci

.PHONY: help run test test-lane-python test-lane-notebooks test-browser lint unit faults notebook-tests lab \
        clean-notebooks lock clean

help:
	@echo "make run              every notebook at PRESET=$(PRESET), JOBS=$(JOBS) at a time; report in build/index.html"
	@echo "make test             ruff, then side by side: unit, fault and real-format tests | every notebook at ci (CI)"
	@echo "make test-browser     notebooks 05 and 08 in JupyterLab through headless Chromium"
	@echo "make lab              JupyterLab on notebooks/, every notebook at PRESET (LAB_ARGS: extra options)"
	@echo "make clean-notebooks  strip outputs and execution counts (before committing)"

# The virtual environment, rebuilt when the pinned versions or the package metadata change.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# Two notebooks side by side, one a core (as make test's two lanes); 05 last, alone. JOBS=1: in order.
JOBS   ?= 2
run: $(STAMP)
	$(BIN)/python -m ytrec_lib run-notebooks --preset $(PRESET) --jobs $(JOBS)

lint: $(STAMP)
	$(BIN)/ruff check ytrec_lib tests notebooks

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

# Writers killed mid-write and cache files damaged on disk (tests/faults; under a minute).
faults: $(STAMP)
	$(BIN)/python -m pytest tests/faults -q

notebook-tests: $(STAMP)
	$(BIN)/python -m pytest tests/notebooks -q

# make test: ruff, then two lanes side by side, one a core; each lane prints its output when it ends, and
# the slower one sets the time (every test runs once, as in `make lint unit faults notebook-tests`).
# Notebook 05 runs after the lanes, alone: it times one query against batches of queries, and its check
# that a batch pays needs a quiet core (it failed beside a busy lane).
NB05_WARNINGS := 'tests/notebooks/test_no_warnings.py::test_executed_notebook_has_no_warnings[05_ann_serving]' \
                 'tests/notebooks/test_no_warnings.py::test_executed_notebook_shows_figures_as_images[05_ann_serving]'
# Notebook 03c (three seeds of the lessons' models, ~6 CPU-minutes) runs in the python lane, which has room.
NB03C := tests/notebooks/test_nb03c_fresh_and_labels.py \
         'tests/notebooks/test_no_warnings.py::test_executed_notebook_has_no_warnings[03c_fresh_and_labels]' \
         'tests/notebooks/test_no_warnings.py::test_executed_notebook_shows_figures_as_images[03c_fresh_and_labels]'
test: lint
	@echo "make test: two lanes side by side (the unit, fault and real-format notebook tests and notebook"
	@echo "03c; the other notebook tests at ci but 05); each lane's output appears when it ends; then"
	@echo "notebook 05's tests alone."
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-lane-python test-lane-notebooks
	$(BIN)/python -m pytest tests/notebooks/test_nb05_ann_serving.py $(NB05_WARNINGS) -q

test-lane-python: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q
	$(BIN)/python -m pytest tests/faults -q
	$(BIN)/python -m pytest tests/notebooks/test_real_presets.py -q
	$(BIN)/python -m pytest $(NB03C) -q

test-lane-notebooks: $(STAMP)
	$(BIN)/python -m pytest tests/notebooks -q --ignore=tests/notebooks/test_real_presets.py \
	    --ignore=tests/notebooks/test_nb05_ann_serving.py $(addprefix --deselect ,$(NB05_WARNINGS)) \
	    --ignore=tests/notebooks/test_nb03c_fresh_and_labels.py $(addprefix --deselect ,$(wordlist 2,3,$(NB03C)))

# Notebooks 05 and 08 in JupyterLab, driven by headless Chromium (needs the chromium package;
# skipped without it). Screenshots in build/browser/.
test-browser: $(STAMP)
	$(BIN)/python -m pytest tests/browser -q -rs

# JupyterLab on notebooks/; every notebook's PRESET defaults to $(PRESET) (the server and its kernels get
# YTREC_PRESET). --allow-root only when run as root (LAB_UID: the user id, faked by the tests).
# Extra options: make lab PRESET=ci LAB_ARGS="--port 8890 --no-browser".
LAB_UID  ?= $(shell id -u)
LAB_ARGS ?=
LAB_ROOT := $(if $(filter 0,$(LAB_UID)),--allow-root)

lab: $(STAMP)
	@echo "JupyterLab with PRESET=$(PRESET) in every notebook: open the http://...:<port>/lab?token=... URL it prints below"
	YTREC_PRESET=$(PRESET) $(BIN)/jupyter lab $(LAB_ROOT) $(LAB_ARGS) notebooks/

clean-notebooks: $(STAMP)
	$(BIN)/python -m ytrec_lib strip-notebooks

# Regenerate requirements.lock from a fresh environment (maintainers only).
lock:
	rm -rf /tmp/ytrec-lock-venv && $(PYTHON) -m venv /tmp/ytrec-lock-venv
	/tmp/ytrec-lock-venv/bin/pip install --quiet torch==2.13.0 -e '.[dev,browser,scale]'
	{ echo "# Exact versions that install on Python 3.11 (torch: the CPU build on this machine's disk)."; \
	  echo "# Regenerate with: make lock"; \
	  /tmp/ytrec-lock-venv/bin/pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu/torch==\1/'; } > requirements.lock

clean:
	rm -rf build
