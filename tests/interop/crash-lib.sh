# Shared part of the kill -9 tests (sourced after lib.sh).
# kill -9 at random moments of commit, rebase, snapshot create/apply/delete
# and resize: the real qemu-img check must never find corruption (leaks
# are allowed), and every image must read back as before or as after the
# operation (per 64 KiB chunk for a commit's base, which fills gradually).
RUNS=${CRASH_RUNS:-50}
RANDOM=${CRASH_SEED:-4242}

view() { "$QEMU_IMG" convert -U -O raw "$@" "$T/view.raw" && cat "$T/view.raw"; }

mkchain() {
    rm -f base.qcow2 top.qcow2
    "$QEMU_IMG" create -q -f qcow2 base.qcow2 4M
    "$QEMU_IO" -c "write -P 1 0 4M" base.qcow2 >/dev/null
    "$QEMU_IMG" create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 4M
    for i in $(seq 0 2 62); do echo "write -P $((i % 200 + 2)) $((i * 64))k 64k"; done |
        "$QEMU_IO" top.qcow2 >/dev/null
}
mksnap() {
    rm -f s.qcow2
    "$QEMU_IMG" create -q -f qcow2 s.qcow2 4M
    for i in $(seq 0 63); do echo "write -P $((i + 1)) $((i * 64))k 64k"; done |
        "$QEMU_IO" s.qcow2 >/dev/null
    "$QEMU_IMG" snapshot -c first s.qcow2
    for i in $(seq 0 3 63); do echo "write -P $((i + 100)) $((i * 64))k 32k"; done |
        "$QEMU_IO" s.qcow2 >/dev/null
}

kill_after_random() { # CMD... ; runs CMD in background and kills it
    "$@" >/dev/null 2>&1 &
    local pid=$!
    # KILL_MAX_MS widens the window for operations that take longer
    # (several flushes) than the default 0-9 ms.
    if [ -n "${KILL_MAX_MS:-}" ]; then
        sleep "$(printf '0.%03d' $((RANDOM % KILL_MAX_MS)))"
    else
        sleep "0.00$((RANDOM % 10))"
    fi
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
}

check_ok() { # IMG WHAT
    "$QEMU_IMG" check -U "$1" >"$T/chk.out" 2>&1
    local rc=$?
    case $rc in
    0|3) ;;
    *) check_fail "$2: qemu-img check $1 exit $rc: $(head -5 "$T/chk.out")" ;;
    esac
}

# Snapshot create and delete change a shared cluster's refcount (in a
# refcount block) and the COPIED flag of the active L2 entry pointing to it
# (in an L2 table): two writes to two clusters, so qcow2 itself has a moment
# when they disagree, and QEMU has the same one.  A kill there may leave
# only "OFLAG_COPIED" errors, which describe no lost data and which
# `qemu-img check -r all` repairs.  Any other error still fails.
COPIED_WINDOWS=0
check_ok_copied_window() { # IMG WHAT
    "$QEMU_IMG" check -U "$1" >"$T/chk.out" 2>&1
    local rc=$?
    case $rc in
    0|3) return ;;
    2)
        if ! grep '^ERROR' "$T/chk.out" | grep -qv '^ERROR OFLAG_COPIED'; then
            cp "$1" "$T/repair.qcow2"
            "$QEMU_IMG" check -q -r all "$T/repair.qcow2" >/dev/null 2>&1
            if "$QEMU_IMG" check "$T/repair.qcow2" >/dev/null 2>&1; then
                COPIED_WINDOWS=$((COPIED_WINDOWS + 1))
                return
            fi
        fi ;;
    esac
    check_fail "$2: qemu-img check $1 exit $rc: $(head -5 "$T/chk.out")"
}

same_as() { # FILE EXPECTED1 [EXPECTED2] WHAT
    cmp -s "$1" "$2" && return 0
    [ -n "${3:-}" ] && cmp -s "$1" "$3" && return 0
    check_fail "$4: content is neither old nor new"
}

chunks_old_or_new() { # CUR OLD NEW WHAT
    python3 - "$1" "$2" "$3" <<'PY' || check_fail "$4: base chunk neither old nor new"
import sys
c, o, n = (open(p, 'rb').read() for p in sys.argv[1:4])
k = 65536
sys.exit(0 if all(c[i:i+k] in (o[i:i+k], n[i:i+k]) for i in range(0, len(c), k)) else 1)
PY
}

# Reference states.
mkchain
view top.qcow2 >top.view; view base.qcow2 >base.old
cp top.qcow2 top.tmpl; cp base.qcow2 base.tmpl
"$QEMU_IMG" commit -q -d top.qcow2; view base.qcow2 >base.new
mksnap
cp s.qcow2 s.tmpl
view s.qcow2 >s.cur; view -l first s.qcow2 >s.first

op_commit() { # RUN
    local run=$1
    # commit
    cp top.tmpl top.qcow2; cp base.tmpl base.qcow2
    kill_after_random "$QIMG" commit top.qcow2
    check_ok top.qcow2 commit-top; check_ok base.qcow2 commit-base
    view top.qcow2 >cur.raw; same_as cur.raw top.view "" "commit top $run"
    view base.qcow2 >cur.raw; chunks_old_or_new cur.raw base.old base.new "commit $run"
}

op_rebase() { # RUN
    local run=$1
    # rebase onto nothing (flatten)
    cp top.tmpl top.qcow2; cp base.tmpl base.qcow2
    kill_after_random "$QIMG" rebase -b '' top.qcow2
    check_ok top.qcow2 rebase
    view top.qcow2 >cur.raw; same_as cur.raw top.view "" "rebase $run"
}

op_snapcreate() { # RUN
    local run=$1
    # snapshot create
    cp s.tmpl s.qcow2
    kill_after_random "$QIMG" snapshot -c second s.qcow2
    check_ok_copied_window s.qcow2 snapshot-create
    view s.qcow2 >cur.raw; same_as cur.raw s.cur "" "snapshot create $run"
    if "$QEMU_IMG" snapshot -U -l s.qcow2 | grep -q second; then
        view -l second s.qcow2 >cur.raw; same_as cur.raw s.cur "" "new snapshot $run"
    fi
}

op_snapapply() { # RUN
    local run=$1
    # snapshot apply
    cp s.tmpl s.qcow2
    kill_after_random "$QIMG" snapshot -a first s.qcow2
    check_ok s.qcow2 snapshot-apply
    view s.qcow2 >cur.raw; same_as cur.raw s.cur s.first "snapshot apply $run"
}

op_snapdelete() { # RUN
    local run=$1
    # snapshot delete
    cp s.tmpl s.qcow2
    kill_after_random "$QIMG" snapshot -d first s.qcow2
    check_ok_copied_window s.qcow2 snapshot-delete
    view s.qcow2 >cur.raw; same_as cur.raw s.cur "" "snapshot delete $run"
}

op_resize() { # RUN
    local run=$1
    # resize (grow), where the format supports it
    cp s.tmpl s.qcow2
    "$QEMU_IMG" snapshot -d first s.qcow2
    kill_after_random "$QIMG" resize s.qcow2 64M
    check_ok s.qcow2 resize
    view s.qcow2 >cur.raw; head -c 4194304 cur.raw | cmp -s - s.cur ||
        check_fail "resize $run: data changed"
}

# run_ops OP... : RUNS rounds of each operation
run_ops() {
    for run in $(seq "$RUNS"); do
        for op in "$@"; do "op_$op" "$run"; done
    done
    [ "$COPIED_WINDOWS" -eq 0 ] ||
        echo "note: $COPIED_WINDOWS kill(s) hit the COPIED-flag window (repaired by check -r all)"
}

# snapshot apply across a size change: the image was grown after the
# snapshot, apply takes the snapshot's size back (one header write
# switching size and L1 table together).
mksnap_grown() {
    cp s.tmpl sg.tmpl
    "$QEMU_IMG" resize -q sg.tmpl 8M
    "$QEMU_IO" -c "write -P 0x5a 6M 1M" sg.tmpl >/dev/null
    view sg.tmpl >sg.cur
}
op_snapapply_resized() { # RUN
    local run=$1
    [ -e sg.tmpl ] || mksnap_grown
    cp sg.tmpl s.qcow2
    kill_after_random "$QIMG" snapshot -a first s.qcow2
    check_ok s.qcow2 snapshot-apply-resized
    view s.qcow2 >cur.raw; same_as cur.raw sg.cur s.first "snapshot apply resized $run"
}
