#!/bin/bash
# dracut module: puts pt-bind, /etc/pt/pt.conf and vfio-pci into the
# initramfs and claims the configured functions in a pre-udev hook.

check() {
    [[ -f /etc/pt/pt.conf ]] || return 255
    require_binaries /usr/sbin/pt-bind || return 1
    return 0
}

depends() {
    return 0
}

installkernel() {
    hostonly='' instmods vfio-pci vfio_iommu_type1
}

install() {
    inst_binary /usr/sbin/pt-bind
    inst_simple /etc/pt/pt.conf
    inst_hook pre-udev 30 "$moddir/pt-boot.sh"
}
