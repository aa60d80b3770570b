# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv on first use: torch==2.13.0 first (a CPU build; an open range would pull a
# multi-GB CUDA build), then the project with its dev extra, then MediaPipe Hands without the
# dependencies it declares but does not need (they would replace opencv-python-headless).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.c2f-installed

# cv2 must come from opencv-python-headless alone: a second OpenCV distribution overwrites its files.
define CHECK_OPENCV
import importlib.metadata as md, sys
others = {d.metadata["Name"].lower() for d in md.distributions()} & {"opencv-python", "opencv-contrib-python", "opencv-contrib-python-headless"}
sys.exit(f"another OpenCV is installed beside opencv-python-headless: {sorted(others)}") if others else None
endef
export CHECK_OPENCV

.PHONY: demo test venv clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps mediapipe==0.10.21
	$(BIN)/python -c "$$CHECK_OPENCV"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/c2f demo --out demo_out

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

clean-venv:
	rm -rf $(VENV)
