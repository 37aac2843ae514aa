# `make demo` and `make test` are the README's two commands; both set everything up first.
# demo: demo data → train a small C12 model → evaluate → convert to int8 TFLite + firmware sources.
# --force: a rerun of the demo starts its own run in build/demo over (fit refuses that by default).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := build/demo

.PHONY: setup toolchain demo test clean

setup: $(STAMP) toolchain

# Idempotent: reinstalls only when the lock file or the project metadata change.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

# Cross toolchain, C libraries, emulator and CMake for tests/test_firmware.py (Debian/Ubuntu).
FIRMWARE_PKGS := gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib \
	libstdc++-arm-none-eabi-picolibc picolibc-arm-none-eabi qemu-system-arm cmake
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Only what is missing, so a second `make setup` does nothing.
toolchain:
	@missing=$$(for p in $(FIRMWARE_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	else echo "firmware toolchain: installed"; fi

demo: setup
	$(BIN)/train data demo --out $(DEMO)/data
	$(BIN)/train fit --data $(DEMO)/data --out $(DEMO)/c12.pt --force --group C12 --width 0.35 \
		--epochs 3 --batch-size 32 --lr 4e-3 --no-progress
	$(BIN)/train eval $(DEMO)/c12.pt --data $(DEMO)/data --split test
	$(BIN)/convert tflite $(DEMO)/c12.pt --out $(DEMO)/c12_tflite --firmware firmware/cortex-m

test: setup
	$(BIN)/pytest -q

clean:
	rm -rf build .pytest_cache
