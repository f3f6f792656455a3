# The two entry points of the README: `make demo` and `make test`. Each creates .venv from
# pyproject.toml when it is missing (or older than pyproject.toml / setup.py / the CPU kernels).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test kernels bench clean

$(VENV)/.installed: pyproject.toml setup.py kernels/*.cpp kernels/*.cuh kernels/models/*.cuh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/gpuproc demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_fit.py

clean:
	rm -rf $(VENV) build *.egg-info gpuproc/*.so
