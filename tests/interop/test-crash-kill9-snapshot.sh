#!/bin/bash
# kill -9 at random moments of snapshot create, apply (also across a size
# change) and delete: qemu-img check never finds
# corruption (leaks allowed) and data reads back old or new.
. "$(dirname "$0")/../lib.sh"
. "$TEST_SRCDIR/interop/crash-lib.sh"
run_ops snapcreate snapapply snapdelete snapapply_resized
finish
