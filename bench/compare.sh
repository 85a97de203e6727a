#!/usr/bin/env bash
# Measures tokio-winrm against pywinrm, pypsrp and winrm-rs (the closest Rust peer) on the
# same workloads, against the embedded simulator (winrm sim, crates/winrm-cli) on
# loopback, and writes BENCHMARKS.md.
#
#   bash bench/compare.sh            # full run (about 3 minutes on 2 cores; the first run
#                                    # also builds the winrm-rs peer, several minutes more)
#   QUICK=1 bash bench/compare.sh    # reduced counts (about 2 minutes)
#
# Counts can be set one by one (defaults in brackets, QUICK values after the slash):
#   W1_OPS [4000/1000] W1_PEER_OPS [400/100] W2_MIB [64/16] W3_COUNT [100000/20000]
#   W4_RUNS [200/50] W5_ENDPOINTS [8/4] W5_PER [1250/250] W5_SECS [10/4]
#   W6_OPS [1000/300] CEILING_SECS [4/2] CALLGRIND_OPS [200/50] (0 skips callgrind)
#   CALLGRIND_W2_MIB [8/2] CALLGRIND_W3_ITEMS [5000/1000] (callgrind's W2 and W3 sizes)
#   W1_RS_OPS [2000/500] W4_RS_RUNS [50/20] NTLM_PROBE_OPS [20/10] (winrm-rs)
#   PSRP: W4B_RUNS [200/50] W7_SEQ [2000/500] W7_CONC [4000/1000] W7_PEER_SEQ [200/50]
#   W7_PEER_CONC [400/100] W7_OBJECTS [20000/5000]
#   File copy: FC_MIB [64/16] (each way, tokio-winrm and pypsrp); FANOUT=0 skips the
#   `winrm run --hosts` row (1,000 hosts over 8 simulators)
#   OUT=file (default BENCHMARKS.md), VENV=dir (default ~/.cache/tokio-winrm-bench-venv)
#   RS_SCRATCH=dir (default ~/.cache/winrm-rs-scratch): where the winrm-rs peer
#   (bench/peers/winrm-rs, winrm-rs pinned in its Cargo.toml) is copied and built, with
#   its own target directory; WINRM_RS=0 skips it (its rows then read n/a).
#
# Needs: cargo, python3 (with venv), network access to PyPI and crates.io for the first
# run; valgrind for the profile section (skipped when absent). Not part of .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

q() { if [ "${QUICK:-0}" = 1 ]; then echo "$2"; else echo "$1"; fi; }
W1_OPS=${W1_OPS:-$(q 4000 1000)}
W1_PEER_OPS=${W1_PEER_OPS:-$(q 400 100)}
W2_MIB=${W2_MIB:-$(q 64 16)}
# tokio-winrm moves 64 MiB in about 0.1 s: too short to time reliably, so it gets more.
W2_RUST_MIB=${W2_RUST_MIB:-$(q 256 64)}
W3_COUNT=${W3_COUNT:-$(q 100000 20000)}
W4_RUNS=${W4_RUNS:-$(q 200 50)}
W5_ENDPOINTS=${W5_ENDPOINTS:-$(q 8 4)}
W5_PER=${W5_PER:-$(q 1250 250)}
W5_SECS=${W5_SECS:-$(q 10 4)}
W6_OPS=${W6_OPS:-$(q 1000 300)}
W4B_RUNS=${W4B_RUNS:-$(q 200 50)}
W7_SEQ=${W7_SEQ:-$(q 2000 500)}
W7_CONC=${W7_CONC:-$(q 4000 1000)}
W7_PEER_SEQ=${W7_PEER_SEQ:-$(q 200 50)}
W7_PEER_CONC=${W7_PEER_CONC:-$(q 400 100)}
W7_OBJECTS=${W7_OBJECTS:-$(q 20000 5000)}
FC_MIB=${FC_MIB:-$(q 64 16)}
CEILING_SECS=${CEILING_SECS:-$(q 4 2)}
CALLGRIND_OPS=${CALLGRIND_OPS:-$(q 200 50)}
CALLGRIND_W2_MIB=${CALLGRIND_W2_MIB:-$(q 8 2)}
CALLGRIND_W3_ITEMS=${CALLGRIND_W3_ITEMS:-$(q 5000 1000)}
W1_RS_OPS=${W1_RS_OPS:-$(q 2000 500)}
W4_RS_RUNS=${W4_RS_RUNS:-$(q 50 20)}
NTLM_PROBE_OPS=${NTLM_PROBE_OPS:-$(q 20 10)}
RS_SCRATCH=${RS_SCRATCH:-$HOME/.cache/winrm-rs-scratch}
OUT=${OUT:-BENCHMARKS.md}
VENV=${VENV:-$HOME/.cache/tokio-winrm-bench-venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release/examples
WORK=$(mktemp -d)
RESULTS=$WORK/results.tsv
: > "$RESULTS"
SIM_PIDS=()

cleanup() {
    for p in "${SIM_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*" >&2; }

say "build (release)"
cargo build --release --examples >&2
cargo build --release -p winrm-cli >&2

say "python peers in $VENV"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -c 'import winrm, pypsrp' 2>/dev/null ||
    "$VENV/bin/pip" install --quiet pywinrm pypsrp >&2
PY=$VENV/bin/python
PEERS=$ROOT/bench/peers/peers.py

# The winrm-rs peer: bench/peers/winrm-rs copied to $RS_SCRATCH/peer (outside the
# repository, so it is no workspace member and its lock file stays out of the tree),
# the simulator's path pointed at this checkout, built with its own target directory.
# Two winrm-rs releases from the one source (features v1 and v2 of the peer's Cargo.toml):
# 1.1.2, the newest whose declared rust-version this toolchain meets, and 2.0.1, the newest,
# which declares rust-version 1.98 but builds with 1.95 under --ignore-rust-version.
RS=""
RS2=""
if [ "${WINRM_RS:-1}" != 0 ]; then
    say "winrm-rs peer in $RS_SCRATCH"
    mkdir -p "$RS_SCRATCH/peer"
    rm -rf "$RS_SCRATCH/peer/src"
    cp -r "$ROOT/bench/peers/winrm-rs/src" "$RS_SCRATCH/peer/src"
    sed "s#path = \"../../../#path = \"$ROOT/#" "$ROOT/bench/peers/winrm-rs/Cargo.toml" > "$RS_SCRATCH/peer/Cargo.toml"
    # Start from the workspace's lock file (the simulator's dependencies as tested).
    [ -f "$RS_SCRATCH/peer/Cargo.lock" ] || cp "$ROOT/Cargo.lock" "$RS_SCRATCH/peer/Cargo.lock"
    mkdir -p "$RS_SCRATCH/bin"
    rs_build() { # OUTPUT-NAME CARGO-ARGS...: builds the peer, copies the binary.
        local name=$1
        shift
        CARGO_TARGET_DIR=$RS_SCRATCH/target cargo build --release \
            --manifest-path "$RS_SCRATCH/peer/Cargo.toml" "$@" >&2 &&
            cp "$RS_SCRATCH/target/release/winrm-rs-peer" "$RS_SCRATCH/bin/$name"
    }
    if rs_build winrm-rs-peer-v1; then
        RS=$RS_SCRATCH/bin/winrm-rs-peer-v1
    else
        echo "   winrm-rs 1.x peer did not build: its rows read n/a" >&2
    fi
    if rs_build winrm-rs-peer-v2 --ignore-rust-version --no-default-features --features v2; then
        RS2=$RS_SCRATCH/bin/winrm-rs-peer-v2
    else
        echo "   winrm-rs 2.x peer did not build: its rows read n/a" >&2
    fi
fi
# run_rs TAG ARGS...: a workload through both winrm-rs peers, recorded under TAG with
# `winrmrs` (1.1.2) and `winrmrs2` (2.0.1) in it (a missing peer's rows read n/a).
run_rs() {
    local tag=$1
    shift
    local bin t
    for bin in "$RS" "$RS2"; do
        if [ "$bin" = "$RS" ]; then t=$tag; else t=${tag/winrmrs/winrmrs2}; fi
        if [ -n "$bin" ]; then
            run "$t" "$bin" "$@"
        else
            printf '%s\t%s\n' "$t" '{"error":"not built"}' >> "$RESULTS"
        fi
    done
}

# start_sim NAME ARGS...: starts a simulator; sets SIM_URL.
start_sim() {
    local name=$1
    shift
    "$BIN/../winrm" sim --addr 127.0.0.1:0 --ignore-stdin "$@" > "$WORK/$name.url" 2> "$WORK/$name.log" &
    SIM_PIDS+=($!)
    for _ in $(seq 100); do
        if [ -s "$WORK/$name.url" ]; then break; fi
        sleep 0.05
    done
    SIM_URL=$(head -n1 "$WORK/$name.url")
    [ -n "$SIM_URL" ] || { echo "simulator $name did not start" >&2; cat "$WORK/$name.log" >&2; exit 1; }
}

# run TAG CMD...: runs one workload, records its JSON line under TAG.
run() {
    local tag=$1
    shift
    echo "   $tag: $*" >&2
    local line
    if ! line=$("$@" 2> "$WORK/last.err" | tail -n1); then
        echo "   $tag FAILED:" >&2
        tail -n5 "$WORK/last.err" >&2
        line='{"error":"failed"}'
    fi
    printf '%s\t%s\n' "$tag" "$line" >> "$RESULTS"
}

start_sim main --synthetic-count "$W3_COUNT" --max-shells 1000
URL=$SIM_URL

say "simulator ceiling (raw HTTP client, W1 exchange)"
run ceiling.1 "$BIN/bench_client" ceiling "$URL" "$CEILING_SECS" 1
run ceiling.32 "$BIN/bench_client" ceiling "$URL" "$CEILING_SECS" 32

say "W1 command round trips"
run w1.rust.1 "$BIN/bench_client" w1 "$URL" "$W1_OPS" 1
run w1.rust.32 "$BIN/bench_client" w1 "$URL" "$W1_OPS" 32
for lib in pywinrm pypsrp; do
    run "w1.$lib.1" "$PY" "$PEERS" "$lib" w1 "$URL" "$W1_PEER_OPS" 1
    run "w1.$lib.32" "$PY" "$PEERS" "$lib" w1 "$URL" "$W1_PEER_OPS" 32
done
run_rs w1.winrmrs.1 w1 "$URL" "$W1_RS_OPS" 1
run_rs w1.winrmrs.32 w1 "$URL" "$W1_RS_OPS" 32

say "W2 stdout throughput"
run w2.rust "$BIN/bench_client" w2 "$URL" "$W2_RUST_MIB"
run w2.pywinrm "$PY" "$PEERS" pywinrm w2 "$URL" "$W2_MIB"
run w2.pypsrp "$PY" "$PEERS" pypsrp w2 "$URL" "$W2_MIB"
run_rs w2.winrmrs w2 "$URL" "$W2_RUST_MIB"

say "W3 enumeration"
run w3.rust "$BIN/bench_client" w3 "$URL" "$W3_COUNT"
run w3.raw "$BIN/bench_client" w3raw "$URL" "$W3_COUNT"
run w3.pypsrp "$PY" "$PEERS" pypsrp w3 "$URL" "$W3_COUNT"

say "W4 cancel latency"
run w4.rust "$BIN/bench_client" w4 "$W4_RUNS"
run_rs w4.winrmrs w4 "$W4_RS_RUNS"

say "W4b PSRP pipeline cancel latency (embedded simulator)"
run w4b.rust env RUNS="$W4B_RUNS" "$BIN/bench_psrp_cancel"

# run_pair TAG1 TAG2 MATCH1 MATCH2 CMD...: a workload that prints two JSON lines.
run_pair() {
    local t1=$1 t2=$2 m1=$3 m2=$4
    shift 4
    echo "   $t1/$t2: $*" >&2
    local all
    all=$("$@" 2> "$WORK/last.err") || { tail -n5 "$WORK/last.err" >&2; all=""; }
    LAST_ALL=$all
    printf '%s\t%s\n' "$t1" "$(grep -m1 "\"$m1\"" <<< "$all" || echo '{"error":"failed"}')" >> "$RESULTS"
    printf '%s\t%s\n' "$t2" "$(grep -m1 "$m2" <<< "$all" || echo '{"error":"failed"}')" >> "$RESULTS"
}

say "W7 PSRP: small pipelines in one opened pool, and objects per second"
start_sim psrp --psrp-processes "$W7_OBJECTS"
PSRP_URL=$SIM_URL
run_pair w7.rust.1 w7.rust.32 psrp_seq psrp_32 \
    env WINRM_ENDPOINT="$PSRP_URL" SEQ="$W7_SEQ" CONC_OPS="$W7_CONC" "$BIN/bench_psrp"
run_pair w7.rust1t.1 w7.rust1t.32 psrp_seq psrp_32 \
    env THREADS=1 WINRM_ENDPOINT="$PSRP_URL" SEQ="$W7_SEQ" CONC_OPS="$W7_CONC" "$BIN/bench_psrp"
run_pair w7.pypsrp.1 w7.pypsrp.32 psrp_seq psrp_32 \
    "$PY" "$ROOT/bench/peers/psrp_pipelines.py" "$PSRP_URL" "$W7_PEER_SEQ" "$W7_PEER_CONC"
# The sequential loop with close() after each pipeline, from the same run.
printf '%s\t%s\n' w7.pypsrpclose.1 "$(grep -m1 psrp_seq_close <<< "$LAST_ALL" || echo '{"error":"failed"}')" >> "$RESULTS"
run w7o.rust env WINRM_ENDPOINT="$PSRP_URL" COUNT="$W7_OBJECTS" ROUNDS=3 "$BIN/bench_psrp_objects"
run w7o.pypsrp env ROUNDS=3 "$PY" "$ROOT/bench/peers/psrp_objects.py" "$PSRP_URL"

say "W6 NTLM-sealed against Basic"
run w6.rust.basic "$BIN/bench_client" w1 "$URL" "$W6_OPS" 1 basic
run w6.rust.ntlm "$BIN/bench_client" w1 "$URL" "$W6_OPS" 1 ntlm
for lib in pywinrm pypsrp; do
    run "w6.$lib.basic" "$PY" "$PEERS" "$lib" w1 "$URL" "$W1_PEER_OPS" 1 basic
    run "w6.$lib.ntlm" "$PY" "$PEERS" "$lib" w1 "$URL" "$W1_PEER_OPS" 1 ntlm
done
run_rs w6.winrmrs.basic w1 "$URL" "$W6_OPS" 1 basic
run_rs w6.winrmrs.ntlm w1 "$URL" "$W6_OPS" 1 ntlm
# What the simulator's counters saw of winrm-rs's NTLM (AllowUnencrypted false and true).
run_rs ntlm.winrmrs ntlm "$NTLM_PROBE_OPS"

say "W5 fan-out: $W5_ENDPOINTS endpoints x $W5_PER commands"
# Every command holds a connection while its Receive is pending: raise the fd limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
need=$((W5_ENDPOINTS * W5_PER + 512))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
    echo "   warning: ulimit -n is $(ulimit -n), W5 needs about $need descriptors" >&2
fi
URLS=""
for i in $(seq "$W5_ENDPOINTS"); do
    start_sim "w5_$i" --max-shells $((W5_PER + 100))
    URLS="$URLS${URLS:+,}$SIM_URL"
done
run w5.rust "$BIN/bench_client" w5 "$URLS" "$W5_PER" "$W5_SECS"

if [ "${FANOUT:-1}" != 0 ]; then
    say "W5 from the command line: winrm run --hosts, 1,000 hosts over 8 simulators"
    run fanout.rust env JSON=1 bash "$ROOT/bench/fanout_memory.sh" "$BIN/../winrm"
fi

say "File copy and fetch: $FC_MIB MiB each way against pypsrp"
run fc env JSON=1 SIZE_MIB="$FC_MIB" "$PY" "$ROOT/bench/file_copy.py" "$BIN/../winrm"

CG_FILE=""
if [ "$CALLGRIND_OPS" != 0 ] && command -v valgrind > /dev/null; then
    say "callgrind: W1 sequential, instructions per command"
    for n in 20 $((20 + CALLGRIND_OPS)); do
        THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$n" \
            "$BIN/bench_client" w1 "$URL" "$n" 1 > /dev/null 2> "$WORK/cg.$n.log" || true
    done
    CG_FILE=$WORK/cg.$((20 + CALLGRIND_OPS))
    callgrind_annotate --inclusive=no "$CG_FILE" 2> /dev/null | head -n 40 > "$WORK/cg.top" || true
    # W2 and W3 the same way: two sizes, the difference divided by the extra work, so
    # start-up and connection set-up cancel out (machine-independent figures).
    say "callgrind: W2 instructions per MiB of stdout, W3 per enumerated item"
    for m in 1 $((1 + CALLGRIND_W2_MIB)); do
        NO_RAW=1 THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$WORK/cgw2.$m" \
            "$BIN/bench_client" w2 "$URL" "$m" > /dev/null 2> "$WORK/cgw2.$m.log" || true
    done
    for n in 1000 $((1000 + CALLGRIND_W3_ITEMS)); do
        # W3 reads every instance the simulator has: one simulator per size.
        start_sim "cgw3_$n" --synthetic-count "$n"
        THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$WORK/cgw3.$n" \
            "$BIN/bench_client" w3 "$SIM_URL" "$n" > /dev/null 2> "$WORK/cgw3.$n.log" || true
    done
fi

say "machine"
{
    echo "nproc=$(nproc)"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "kernel=$(uname -sr)"
    echo "rustc=$(rustc --version)"
    echo "python=$("$PY" --version 2>&1)"
    echo "pywinrm=$("$PY" -c 'from importlib.metadata import version as v; print(v("pywinrm"))')"
    echo "pypsrp=$("$PY" -c 'from importlib.metadata import version as v; print(v("pypsrp"))')"
    echo "requests=$("$PY" -c 'from importlib.metadata import version as v; print(v("requests"))')"
    echo "winrm_rs=$(sed -n 's/^winrm-rs = { version = "=\([^"]*\)".*/\1/p' "$ROOT/bench/peers/winrm-rs/Cargo.toml")$([ -n "$RS" ] || echo ' (not built)')"
    echo "winrm_rs2=$(sed -n 's/^winrm-rs2 = { package = "winrm-rs", version = "=\([^"]*\)".*/\1/p' "$ROOT/bench/peers/winrm-rs/Cargo.toml")$([ -n "$RS2" ] || echo ' (not built)')"
    echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
} > "$WORK/machine.txt"

say "Robust Connections: cost and recovery (in-process, examples/bench_robust.rs)"
"$BIN/bench_robust" > "$WORK/robust.md"

python3 "$ROOT/bench/report.py" "$RESULTS" "$WORK/machine.txt" "$WORK" "${CALLGRIND_OPS}" > "$OUT"
{
    echo
    cat "$WORK/robust.md"
} >> "$OUT"
say "wrote $OUT"
