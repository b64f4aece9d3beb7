#!/bin/bash
# Image locking against QEMU's own tools.  qemu-nbd (on a unix socket in
# $T) holds images; qimg must refuse what qemu-img refuses, with the same
# messages, and allow -U.  qimg-io holds images; qemu-img must see those
# locks, and /proc/locks must show the same bytes as when qemu-io holds.
. "$(dirname "$0")/../lib.sh"
command -v qemu-nbd >/dev/null || fail "qemu-nbd not installed"

NBD_PID=
stop_nbd() {
    [ -n "$NBD_PID" ] || return 0
    kill "$NBD_PID" 2>/dev/null
    local n=0
    while kill -0 "$NBD_PID" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    NBD_PID=
}
trap 'stop_nbd; rm -rf "$T"' EXIT
start_nbd() { # start_nbd ARGS... : qemu-nbd holding an image until stop_nbd
    rm -f "$T/nbd.pid" "$T/nbd.sock"
    qemu-nbd --fork --pid-file "$T/nbd.pid" -k "$T/nbd.sock" "$@" || fail "qemu-nbd $*"
    NBD_PID=$(cat "$T/nbd.pid")
}
locks_of() { # the OFD lock bytes held on file $1, one "start-end" per line
    local ino; ino=$(stat -c %i "$1")
    awk -v ino=":$ino" '$2 == "OFDLCK" && index($6, ino) && substr($6, length($6) - length(ino) + 1) == ino { print $7 "-" $8 }' /proc/locks | sort -u | tr '\n' ' '
}

wait_locked() { # wait (up to 10 s) until someone holds locks on file $1
    local n=0
    while [ -z "$(locks_of "$1")" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
}

"$QEMU_IMG" create -q -f raw l.raw 1M
"$QEMU_IMG" create -q -f qcow2 l.qcow2 1M

# qemu-nbd serving raw read-write (takes write, refuses to share resize)
start_nbd -f raw l.raw
same_as_qemu info l.raw
same_as_qemu info -U l.raw
same_as_qemu info -f raw --output=json l.raw
same_as_qemu resize -f raw l.raw 2M
same_as_qemu resize l.raw 2M
stop_nbd
# qemu-nbd serving qcow2 read-write: its metadata must not change under us
start_nbd -f qcow2 l.qcow2
same_as_qemu info l.qcow2
same_as_qemu info -U l.qcow2
same_as_qemu info -U --output=json l.qcow2
same_as_qemu resize l.qcow2 2M
same_as_qemu resize -f raw l.qcow2 2M
same_as_qemu create -f qcow2 -b l.qcow2 -F qcow2 top.qcow2
rm -f top.qcow2
stop_nbd
# read-only qemu-nbd on qcow2 still refuses to share write
start_nbd -r -f qcow2 l.qcow2
same_as_qemu info l.qcow2
same_as_qemu info -U l.qcow2
same_as_qemu resize l.qcow2 2M
stop_nbd

# Lock bytes: qimg-io takes what qemu-io takes, in every mode
for spec in "-f raw l.raw" "-r -f raw l.raw" "-f qcow2 l.qcow2" \
            "-r -f qcow2 l.qcow2" "-r -U -f qcow2 l.qcow2" "-f file l.raw"; do
    # shellcheck disable=SC2086
    set -- $spec; img=${!#}
    (sleep 2 | "$QEMU_IO" $spec >/dev/null 2>&1) & p=$!
    wait_locked "$img"; sleep 0.2; ref=$(locks_of "$img"); wait $p
    (sleep 2 | "$QIMG_IO" $spec >/dev/null 2>&1) & p=$!
    wait_locked "$img"; sleep 0.2; got=$(locks_of "$img"); wait $p
    [ -n "$ref" ] || check_fail "qemu-io $spec took no locks?"
    expect_eq "lock bytes for $spec" "$ref" "$got"
done

# qemu-img sees qimg's locks: with qimg-io holding qcow2 read-write,
# qemu-img is refused exactly as when qemu-io holds it
for holder in "$QEMU_IO" "$QIMG_IO"; do
    (sleep 3 | "$holder" -f qcow2 l.qcow2 >/dev/null 2>&1) & p=$!
    wait_locked l.qcow2
    "$QEMU_IMG" info l.qcow2 >/dev/null 2>"$T/h.err"; echo "rc=$?" >>"$T/h.err"
    "$QEMU_IMG" info -U l.qcow2 >/dev/null 2>>"$T/h.err"; echo "rc=$?" >>"$T/h.err"
    "$QEMU_IMG" resize -f raw l.raw 2M >/dev/null 2>>"$T/h.err"; echo "rc=$?" >>"$T/h.err"
    wait $p
    mv "$T/h.err" "$T/h.$(basename "$holder")"
done
cmp -s "$T/h.$(basename "$QEMU_IO")" "$T/h.$(basename "$QIMG_IO")" ||
    check_fail "qemu-img sees qimg-io differently: $(diff "$T/h.$(basename "$QEMU_IO")" "$T/h.$(basename "$QIMG_IO")")"
grep -q 'Failed to get shared "write" lock' "$T/h.$(basename "$QIMG_IO")" ||
    check_fail "qemu-img opened an image qimg-io holds"
finish
