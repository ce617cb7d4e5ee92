#!/bin/sh
# dracut pre-udev hook (sourced by dracut's init, so it never exits): claims
# pt.conf's boot = "vfio" functions before udev starts. A broken pt.conf skips
# pt with a message; the boot goes on.
if [ -x /usr/sbin/pt-bind ] && [ -f /etc/pt/pt.conf ]; then
    /usr/sbin/pt-bind boot 2>&1 | while IFS= read -r line; do
        echo "pt-bind boot: $line" >/dev/kmsg
    done
fi
