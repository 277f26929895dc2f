# Set-up and the two commands the README promises. Everything installs into .venv.
# torch is pinned to the CPU build that pip finds on this kind of machine; the package
# metadata keeps a normal range for users elsewhere.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0
# Tests, benchmarks and the demo find the shared data through PIXELFORGE_DATA.
export PIXELFORGE_DATA ?= $(abspath ../shared/data)
DEMO_MINUTES ?= 5

.PHONY: demo test bench venv browser serve clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/pixelforge train gan --data fashion-mnist --minutes $(DEMO_MINUTES) --run-dir runs/demo --overwrite
	$(VENV)/bin/pixelforge sample runs/demo -n 100 --nrow 10 -o runs/demo/samples/grid.png
	$(VENV)/bin/pixelforge interpolate runs/demo -o runs/demo/samples/walk.gif
	$(VENV)/bin/pixelforge train gan --data fashion-mnist --no-conditional --minutes $(DEMO_MINUTES) --run-dir runs/demo-unconditional --overwrite
	$(VENV)/bin/pixelforge sample runs/demo-unconditional -n 100 --nrow 10 -o runs/demo-unconditional/samples/grid.png
	@echo "samples: runs/demo/samples/ (grid.png, walk.gif, epoch_*.png), losses: runs/demo/loss.png"
	@echo "the same GAN without the labels: runs/demo-unconditional/samples/grid.png"

# A headless Chromium for the studio's browser tests: the system's chromium, else Playwright's
# own build, else Debian's chromium package (needs root); without one the browser tests skip
# and say why.
$(VENV)/.browser: $(VENV)/.installed
	@command -v chromium >/dev/null 2>&1 \
	  || $(PY) -m playwright install chromium >/dev/null 2>&1 \
	  || (command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && apt-get install -y -q chromium >/dev/null 2>&1) \
	  || echo "make: no headless Chromium could be installed; the studio's browser tests will skip"
	touch $@

browser: $(VENV)/.browser

# Two pytest workers with one thread each: most of the suite's time is process start-up and small
# models, which one thread per worker runs as fast as two, so the workers halve the wall time.
TEST_WORKERS ?= 2
test: venv browser
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS)

serve: venv
	$(VENV)/bin/pixelforge serve --runs-dir runs

bench: venv
	$(PY) benchmarks/gan_throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache tests/artifacts
