#!/usr/bin/env bash
# Memory per host in flight of `winrm run --hosts`, measured as .ci/run's fan-out smoke
# test does: 1,000 hosts on 8 standalone simulators (`winrm sim`), `echo hi` on each,
# peak RSS at concurrency 64 minus peak RSS at concurrency 8, over the 56 extra hosts.
# Three rounds, since the figure moves by 5-10 kB between runs.
#
#   bash bench/fanout_memory.sh [WINRM_BINARY]     (default: the debug build)
#   MALLOC_ARENA_MAX=1 bash bench/fanout_memory.sh  (glibc with one malloc arena)
#   MASSIF=1 bash bench/fanout_memory.sh [WINRM_BINARY]
#       the client under valgrind's massif instead: peak heap (requested bytes plus
#       malloc's overhead, no stacks) at concurrency 64 minus at 8, over 56; repeatable
#       where RSS is not (RSS also counts freed memory malloc keeps, per thread arena)
#   MASSIF=1 MASSIF_OUT=DIR bash bench/fanout_memory.sh [WINRM_BINARY]
#       also keeps the last round's massif files as DIR/massif.8 and DIR/massif.64, for
#       `ms_print DIR/massif.64` (the peak snapshot: who holds the bytes)
#   JSON=1 bash bench/fanout_memory.sh [WINRM_BINARY]
#       one round, printed as one JSON line (bench/compare.sh's fan-out row): wall time
#       and peak RSS of the 1,000 hosts at concurrency 8 and 64, and kB per host in flight
set -euo pipefail
target="${CARGO_TARGET_DIR:-$HOME/.cache/tokio-winrm-target}"
winrm="${1:-$target/debug/winrm}"
sim="${SIM:-$winrm}"
dir="$(mktemp -d)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT
for n in 0 1 2 3 4 5 6 7; do
    "$sim" sim --addr 127.0.0.1:0 --ping-interval-ms 50 --ignore-stdin </dev/null >"$dir/e$n" 2>/dev/null &
    pids+=($!)
done
for n in 0 1 2 3 4 5 6 7; do
    for _ in $(seq 100); do [[ -s "$dir/e$n" ]] && break; sleep 0.05; done
done
for ((i = 0; i < 1000; i++)); do printf '%s#%d\n' "$(head -n1 "$dir/e$((i % 8))")" "$i"; done >"$dir/hosts"
auth=(--user vagrant --password vagrant --allow-http-basic --auth basic)
peak() { sed -n 's/^peak RSS: \([0-9]*\) kB$/\1/p' "$1"; }
if [[ -n "${MASSIF:-}" ]]; then
    # Peak of heap plus malloc's overhead, in bytes, from massif's snapshots.
    heap() { awk -F= '/^mem_heap_B=/{h=$2} /^mem_heap_extra_B=/{t=h+$2; if (t>m) m=t} END{print m}' "$1"; }
    for round in 1 2; do
        for c in 8 64; do
            valgrind --tool=massif --massif-out-file="$dir/massif.$c" "$winrm" "${auth[@]}" --json run \
                --hosts "$dir/hosts" --concurrency "$c" -- echo hi >"$dir/out" 2>/dev/null
        done
        b="$(heap "$dir/massif.8")"
        p="$(heap "$dir/massif.64")"
        if [[ -n "${MASSIF_OUT:-}" ]]; then
            mkdir -p "$MASSIF_OUT" && cp "$dir/massif.8" "$dir/massif.64" "$MASSIF_OUT/"
        fi
        echo "round $round (massif): peak heap at concurrency 8 $((b / 1024)) kB, 64 $((p / 1024)) kB: $(((p - b) / 56 / 1024)).$(((p - b) / 56 % 1024 * 10 / 1024)) kB per host in flight ($(grep -c '"exit_code":0' "$dir/out") of 1000 exited 0)"
    done
    exit 0
fi
if [[ -n "${JSON:-}" ]]; then
    now() { date +%s.%N; }
    for c in 8 64; do
        t0="$(now)"
        "$winrm" "${auth[@]}" --json --report-peak-rss run --hosts "$dir/hosts" --concurrency "$c" -- echo hi >"$dir/out$c" 2>"$dir/err$c"
        t1="$(now)"
        eval "wall$c=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')"
        eval "ok$c=$(grep -c '"exit_code":0' "$dir/out$c" || true)"
    done
    b="$(peak "$dir/err8")"
    p="$(peak "$dir/err64")"
    printf '{"workload":"fanout_cli","hosts":1000,"endpoints":8,"wall_s_8":%s,"wall_s_64":%s,"peak_kb_8":%s,"peak_kb_64":%s,"kb_per_host":%s,"ok_8":%s,"ok_64":%s}\n' \
        "$wall8" "$wall64" "$b" "$p" "$(awk -v p="$p" -v b="$b" 'BEGIN{printf "%.1f", (p - b) / 56}')" "$ok8" "$ok64"
    exit 0
fi
for round in 1 2 3; do
    "$winrm" "${auth[@]}" --json --report-peak-rss run --hosts "$dir/hosts" --concurrency 8 -- echo hi >/dev/null 2>"$dir/err8"
    "$winrm" "${auth[@]}" --json --report-peak-rss run --hosts "$dir/hosts" --concurrency 64 -- echo hi >"$dir/out" 2>"$dir/err64"
    b="$(peak "$dir/err8")"
    p="$(peak "$dir/err64")"
    echo "round $round: concurrency 8 $b kB, 64 $p kB: $(((p - b) / 56)) kB per host in flight ($(grep -c '"exit_code":0' "$dir/out") of 1000 exited 0)"
done
