#!/bin/sh
# Debian packages tools/qemu/capture.sh needs (read by tools/deps.sh).
echo qemu-system-x86 busybox-static cpio
