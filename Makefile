PY ?= python3
PIP ?= $(PY) -m pip

.PHONY: install install-all demo test lint bench

install:  # the no-weights pipeline only
	$(PIP) install -q -e .

install-all:  # every extra the test suite exercises
	$(PIP) install -q -e ".[dev,train,eval,speech,server,server-test,ray,app,app-test]"

demo: install
	$(PY) -m faceanim demo -o out/demo.mp4

test: install-all
	$(PY) -m ruff check src tests benchmarks scripts
	$(PY) -m pytest

bench: install-all
	$(PY) benchmarks/bench_tracking.py --json out/bench_tracking.json
	$(PY) benchmarks/bench_pipeline.py --json out/bench_pipeline.json
