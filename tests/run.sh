#!/usr/bin/env bash
# Runs every test of corebgp, installing what a fresh Debian machine lacks.
# This is the README's test command; .ci/run calls it. Nothing is skipped:
# a prerequisite that cannot be installed stops the run with a message.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-5}"

step() { printf '\n==> %s\n' "$*"; }
die() { printf '\nerror: %s\n' "$*" >&2; exit 1; }

step "toolchain"
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
command -v rustup >/dev/null || die "rustup not found: the test command needs rustup to add targets"
for c in rustfmt clippy; do
  rustup component list --installed | grep -q "^$c" || rustup component add "$c"
done
rustup target list --installed | grep -qx thumbv7em-none-eabihf || rustup target add thumbv7em-none-eabihf
rustup toolchain list | grep -q '^nightly' ||
  die "a nightly toolchain is needed for cargo fuzz: rustup toolchain install nightly"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup component list --installed | grep -q '^llvm-tools' || rustup component add llvm-tools

step "Debian packages for the interoperability tests"
# BIRD 2, GoBGP 3, FRR 8 and ExaBGP 4 are real peers of the tests; bgpdump
# reads back the MRT files the collector tool writes; nats-server (JetStream)
# carries what many collectors publish (tests/tests/nats.rs); qemu-system-arm
# runs the MPS2 firmware that peers with BIRD (tests/tests/qemu_bird.rs).
pkgs=(bird2 gobgpd frr exabgp iproute2 bgpdump nats-server qemu-system-arm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    die "missing Debian packages: ${missing[*]}; install with: sudo apt-get install -y ${pkgs[*]}"
  fi
fi

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "firmware for QEMU's MPS2 AN500 (booted by the qemu_bird test)"
# The test builds it too; building here keeps the test's own time short.
(cd examples/firmware-qemu-mps2 && cargo build --release --bins)

step "tests"
# Builds every example first (the collector and announcer tests run them as
# processes from target/debug/examples), then runs every test.
cargo test --workspace

step "documentation of the library crates (broken links fail)"
RUSTDOCFLAGS="-D warnings" cargo doc -p corebgp-core -p corebgp-std -p corebgp-embassy --no-deps

step "corebgp-core for thumbv7em-none-eabihf (no_std), with and without defmt"
cargo build -p corebgp-core --target thumbv7em-none-eabihf
cargo build -p corebgp-core --target thumbv7em-none-eabihf --features defmt

step "firmware for the NUCLEO-H743ZI and corebgp's footprint on both boards"
sh corebgp-embassy/size.sh

step "fuzz targets (build, then ${FUZZ_SECONDS}s each)"
(
  cd corebgp-core/fuzz
  cargo +nightly fuzz build -O
  for t in $(cargo +nightly fuzz list); do
    mkdir -p "corpus/$t"
    # The committed seeds (seeds/$t) are read; what the run finds goes to
    # corpus/$t (the first directory), which git ignores.
    seeds=""
    [ -d "seeds/$t" ] && seeds="seeds/$t"
    log=$(mktemp)
    # shellcheck disable=SC2086 # $seeds: no directory or one
    if ! cargo +nightly fuzz run -O "$t" "corpus/$t" $seeds -- -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1; then
      tail -n 40 "$log"
      die "fuzz target $t failed: see corebgp-core/fuzz/artifacts/$t"
    fi
    echo "fuzz $t: $(grep -E '^Done' "$log" || tail -n 1 "$log")"
    rm -f "$log"
  done
)

step "all tests passed"
