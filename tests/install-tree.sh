#!/bin/sh
# install-tree.sh BUILD: `cmake --install BUILD` into a staging DESTDIR, then
# the listing must hold exactly the kit's files, each in its place (the
# prefix and the distribution's directories vary, so places are matched by
# their tail). Prints the listing.
set -eu
build=$1
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
DESTDIR=$stage cmake --install "$build" >/dev/null
listing=$(cd "$stage" && find . -type f | sed 's|^\./|/|' | sort)
echo "$listing"

expected="
sbin/pt sbin/pt-bind sbin/pt-reset sbin/pt-vgaarb sbin/pt-console sbin/pt-drm
share/man/man5/pt.conf.5 share/man/man7/pt.7
share/man/man8/pt.8 share/man/man8/pt-bind.8 share/man/man8/pt-reset.8 share/man/man8/pt-vgaarb.8
share/man/man8/pt-console.8 share/man/man8/pt-drm.8
udev/rules.d/61-pt.rules
systemd/system/pt-recover@.service systemd/system/pt-boot.service
systemd/system/pt-metrics.service systemd/system/pt-metrics.timer systemd/catalog/pt.catalog
initramfs-tools/hooks/pt initramfs-tools/scripts/init-top/pt
dracut/modules.d/90pt/module-setup.sh dracut/modules.d/90pt/pt-boot.sh
doc/pt/examples/pt.conf
bash-completion/completions/pt
share/pt/contrib/proxmox/pt-hookscript share/pt/contrib/libvirt/qemu
doc/pt/examples/proxmox-hook.conf doc/pt/examples/libvirt-hook.conf doc/pt/contrib/README.md
"
status=0
for tail in $expected; do
  n=$(echo "$listing" | grep -c "/$tail\$" || true)
  [ "$n" = 1 ] || { echo "install-tree: expected one file ending in /$tail, found $n"; status=1; }
done
for f in $listing; do
  hit=0
  for tail in $expected; do
    case $f in */"$tail") hit=1 ;; esac
  done
  [ $hit = 1 ] || { echo "install-tree: unexpected file $f"; status=1; }
done
# Programs are executable; hooks are programs too.
for f in $(echo "$listing" | grep -E '/sbin/|/hooks/pt$|/init-top/pt$|/90pt/|/share/pt/contrib/'); do
  [ -x "$stage$f" ] || { echo "install-tree: $f is not executable"; status=1; }
done
# Bash completion: bash-completion loads it by command name, so each tool
# has a link to the one script.
for tool in pt-bind pt-reset pt-vgaarb pt-console pt-drm; do
  link=$(cd "$stage" && find . -path "*/bash-completion/completions/$tool")
  [ -n "$link" ] && [ -L "$stage/$link" ] && [ "$(readlink "$stage/$link")" = pt ] ||
    { echo "install-tree: no bash-completion link $tool -> pt"; status=1; }
done
[ $status = 0 ] && echo "install-tree: $(echo "$listing" | wc -l) files, each in its place"
exit $status
