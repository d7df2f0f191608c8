#!/usr/bin/env bash
# Installs the Debian packages the importer uses at run time and the tests and benchmark use.
#   qemu-utils: qemu-img/qemu-io make fixtures and reference conversions
#   xz-utils lz4 bzip2: decoders the importer runs (xz -T2 decodes on both cores); zstd pigz gzip: fixtures, bench
#   util-linux (fallocate, blockdev): preallocation and block device sizes; openssl: test PKIs and checks
#   of our own X.509 issuer
#   nbdkit curl: bench baseline; docker-registry skopeo: registry tests; clang: fuzzing the native addon;
#   clang-format: the C++ format check (Chromium style, .clang-format)
#   zlib1g-dev libzstd-dev: the native addon; kubernetes-client: kubectl for the sandbox tests; time: bench
#   chromium: the browser form-upload test (puppeteer-core drives Debian's chromium)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PKGS="qemu-utils xz-utils zstd lz4 bzip2 pigz gzip tar curl util-linux openssl nbdkit docker-registry skopeo \
  clang clang-format zlib1g-dev libzstd-dev apache2-utils python3 make g++ time chromium"
if ! command -v kubectl >/dev/null 2>&1; then PKGS="$PKGS kubernetes-client"; fi
$SUDO apt-get update
# shellcheck disable=SC2086
$SUDO apt-get install -y --no-install-recommends $PKGS
