#!/usr/bin/env bash
# Debian packages the test suite needs. Safe to run twice.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/bookworm-backports.list
fi
apt-get update -qq
# Jupyter for the kernel tests, Chromium for browser tests, PyTorch as the independent numerics reference,
# scikit-learn and NLTK as the references of the classification and BLEU metrics.
apt-get install -y -qq --no-install-recommends \
  jupyter-notebook python3-nbclient python3-nbconvert python3-ipykernel chromium python3-torch python3-numpy python3-sklearn python3-nltk >/dev/null
# Mesa 22 (bookworm) is too old for onnxruntime's WebGPU provider; lavapipe from backports works.
apt-get install -y -qq --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
