# Two commands do everything on a fresh Debian machine with Python 3.11 (as root):
#   make demo   set up, then run the main job
#   make test   set up, then run the whole test suite
# Both are safe to run again: set-up is skipped while pyproject.toml is unchanged.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
LAVA := lava-nc==0.10.0 psutil

.PHONY: setup data demo test bench clean

setup: $(STAMP) data

# The virtual environment: the package, its test tools, and Lava. lava-nc 0.10.0 declares
# Requires-Python <3.11, so it is installed with --ignore-requires-python; its one 3.11
# incompatibility is patched at import time by neurodecorr.backends.lava_compat, not in
# site-packages. psutil is a Lava runtime dependency it does not declare.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip install --quiet --ignore-requires-python $(LAVA)
	touch $(STAMP)

# Fashion-MNIST from Debian's package, where apt is available (skipped if already there).
data:
	@if [ -f $(FASHION) ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing dataset-fashion-mnist with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	else \
		echo "note: Fashion-MNIST not found at $(FASHION); install the Debian package dataset-fashion-mnist or pass --data-dir"; \
	fi

DEMO_OUT := runs/demo

# The main job: energy against accuracy on Fashion-MNIST (sweeps/demo.yaml: bp, fa, np with and
# without the seed decorrelation on ideal, loihi2-residual and analog-pcm-periphery), on a Dask
# LocalCluster.
# Prints the results table and where the plots are. A second `make demo` skips finished runs.
demo: setup
	$(PY) -m neurodecorr sweep sweeps/demo.yaml --out $(DEMO_OUT)

# The suite runs on every core (at most 4 workers), each test file on one worker, so that a
# file's fixtures are built once: on 2 cores 255 s serial against 189 s.
test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n auto --maxprocesses 4 --dist loadfile

bench: setup
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/conv_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info
