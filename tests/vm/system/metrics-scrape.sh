# metrics-scrape.sh (vm-system): pt metrics as a fleet reads it. Debian's
# prometheus-node-exporter runs in the guest with its textfile collector on
# /var/lib/prometheus/node-exporter; pt-metrics.service writes pt.prom there
# and curl scrapes node_exporter on loopback after each stage of a cycle:
# the GPU claimed at boot, a reset, the attach and udev's recovery.
. /pt-vm/lib.sh

gpu=$(full_bdf "$GPU")
aud=$(full_bdf "$AUD")
unit=pt-recover@$gpu.service

wait_for "systemctl is-active -q prometheus-node-exporter.service" 120 ||
  fail "prometheus-node-exporter" "active" "$(systemctl status --no-pager prometheus-node-exporter 2>&1 | tail -n 20)"

# scrape: pt-metrics.service writes the file, then node_exporter's /metrics
# on loopback, pt's lines only, into $SCRAPE.
scrape() {
  systemctl start pt-metrics.service ||
    fail "systemctl start pt-metrics.service" "success" "$(journalctl -b -u pt-metrics.service --no-pager | tail -n 10)"
  SCRAPE=$(curl -sf http://127.0.0.1:9100/metrics | grep '^pt_') ||
    fail "curl http://127.0.0.1:9100/metrics" "pt_ metrics" "$(curl -s http://127.0.0.1:9100/metrics | grep -i textfile)"
  printf '%s\n' "$SCRAPE"
}
# metric LINE: the scrape holds LINE exactly.
metric() { printf '%s\n' "$SCRAPE" | grep -qxF "$1" || fail "scraped metrics" "$1" "$SCRAPE"; }
value_of() { printf '%s\n' "$SCRAPE" | awk -v m="$1" '$1 == m { print $2 }'; }

say "the GPU claimed at boot: on vfio-pci where pt's journal put it"
assert_driver "$GPU" vfio-pci
scrape
metric "pt_device_info{bdf=\"$gpu\",device=\"0x1050\",driver=\"vfio-pci\",expected_driver=\"vfio-pci\",vendor=\"0x1af4\"} 1"
metric "pt_device_info{bdf=\"$aud\",device=\"0x293e\",driver=\"vfio-pci\",expected_driver=\"vfio-pci\",vendor=\"0x8086\"} 1"
metric "pt_journal_pending 0"
metric "pt_recover_total{result=\"ok\"} 0"
metric "pt_last_recover_timestamp_seconds 0"
[ -z "$(value_of "pt_reset_total{method=\"flr\",result=\"ok\"}")" ] || fail "resets before any" "none" "$SCRAPE"
stat -c '%a %U' /var/lib/prometheus/node-exporter/pt.prom
assert_eq "mode and owner of pt.prom" "644 root" "$(stat -c '%a %U' /var/lib/prometheus/node-exporter/pt.prom)"

say "a reset of the GPU on vfio-pci is counted"
expect_rc 0 pt-reset --method flr "$GPU"
scrape
metric "pt_reset_total{method=\"flr\",result=\"ok\"} 1"

say "attach; udev's recovery is counted, and the display is healthy again"
t0=$(date +%s)
expect_rc 0 pt-bind attach "$SLOT"
wait_for "[ -n \"\$(systemctl show -p InvocationID --value $unit)\" ]" 120 ||
  fail "$unit" "started by udev" "$(systemctl status --no-pager "$unit" 2>&1)"
wait_for "! systemctl show -p ActiveState --value $unit | grep -qx activating" 180 ||
  fail "$unit" "finished" "$(systemctl status --no-pager "$unit" 2>&1)"
assert_eq "result of $unit" success "$(systemctl show -p Result --value "$unit")"
scrape
metric "pt_device_info{bdf=\"$gpu\",device=\"0x1050\",driver=\"virtio-pci\",expected_driver=\"\",vendor=\"0x1af4\"} 1"
metric "pt_recover_total{result=\"ok\"} 1"
metric "pt_recover_total{result=\"failed\"} 0"
metric "pt_display_healthy{bdf=\"$gpu\"} 1"
last=$(value_of pt_last_recover_timestamp_seconds)
# node_exporter prints large values in exponent form (1.764e+09).
last=$(awk -v v="$last" 'BEGIN { printf "%d", v }')
[ "$last" -ge "$t0" ] || fail "pt_last_recover_timestamp_seconds" "at least $t0" "$last"

say "the timer is there to enable"
expect_rc 0 systemctl enable --now pt-metrics.timer
assert_eq "pt-metrics.timer" active "$(systemctl is-active pt-metrics.timer)"
pass
