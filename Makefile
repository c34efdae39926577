PY ?= python3
PIP ?= $(PY) -m pip

.PHONY: install demo test lint bench

install:
	$(PIP) install -q -e ".[dev,train,eval,speech,server,server-test,ray,app,app-test]"

demo: install
	$(PY) -m faceanim demo -o out/demo.mp4

test: install
	$(PY) -m ruff check src tests benchmarks scripts
	$(PY) -m pytest

bench: install
	$(PY) benchmarks/bench_tracking.py --json out/bench_tracking.json
	$(PY) benchmarks/bench_pipeline.py --json out/bench_pipeline.json
