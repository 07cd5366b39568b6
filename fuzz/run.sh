#!/usr/bin/env bash
# Runs every fuzz target for a fixed time and fails on the first crash.
#
#   fuzz/run.sh --ci              each target for 20 s (CI, on every submission)
#   fuzz/run.sh --long [SECONDS]  each target for SECONDS (default 600)
#   fuzz/run.sh --only TARGET [SECONDS]
#
# Seeds come from fuzz/seeds/TARGET (committed, small); what a run discovers goes to
# fuzz/corpus/TARGET (ignored by git), so later local runs start from it. A crash leaves
# its input in fuzz/artifacts/TARGET/ and the command to replay it in the output.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}
# Safe Rust needs no AddressSanitizer to find panics; without it the build is quicker and
# the targets run faster. Debug assertions turn integer overflow into a crash.
BUILD_FLAGS=(--sanitizer none --debug-assertions)

say() { echo "fuzz: $*" >&2; }

usage() {
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

ensure_cargo_fuzz() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        say "installing cargo-fuzz (on stable)"
        cargo install cargo-fuzz --locked >&2
    fi
    rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1 ||
        { say "the $TOOLCHAIN toolchain is missing (rustup toolchain install $TOOLCHAIN)"; exit 1; }
}

targets() { sed -n 's/^name = "\(.*\)"$/\1/p' "$HERE/Cargo.toml" | grep -v '^daedalus-fuzz$'; }

run_target() { # TARGET SECONDS
    local target=$1 seconds=$2
    mkdir -p "$HERE/corpus/$target"
    say "$target: ${seconds}s"
    (cd "$HERE" && cargo "+$TOOLCHAIN" fuzz run "${BUILD_FLAGS[@]}" "$target" \
        "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 2>&1 |
        { grep -E 'number_of_executed_units|Done|ERROR|panicked|SUMMARY|artifact|Test unit' >&2 || true; })
}

main() {
    local mode=${1:-} seconds only=""
    case "$mode" in
    --ci) seconds=20 ;;
    --long) seconds=${2:-600} ;;
    --only) only=${2:?--only needs a target}; seconds=${3:-60} ;;
    *) usage ;;
    esac
    ensure_cargo_fuzz
    local started=$SECONDS
    say "building the targets"
    (cd "$HERE" && cargo "+$TOOLCHAIN" fuzz build "${BUILD_FLAGS[@]}" >&2)
    local failed=()
    for target in ${only:-$(targets)}; do
        run_target "$target" "$seconds" || failed+=("$target")
    done
    say "took $((SECONDS - started)) s"
    if ((${#failed[@]})); then
        say "crashed: ${failed[*]} (inputs in fuzz/artifacts/)"
        exit 1
    fi
    say "no crash"
}

main "$@"
