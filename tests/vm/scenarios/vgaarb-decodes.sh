# vgaarb-decodes.sh: on vfio-pci (which registers a decode callback) a decodes
# write is ignored by the kernel and pt-vgaarb says so (exit 1, names
# vfio-pci); back on virtio-pci (no callback) decodes none is applied, and
# restore puts back what pt-bind detach recorded in the journal, verified.
. /pt-vm/lib.sh

assert_attached
assert_eq "decodes of $GPU at boot" io+mem "$(arb_field "$GPU" decodes)"

say "detach: the journal records the arbiter's view before the first write"
expect_rc 0 pt-bind detach "$SLOT"
assert_detached
assert_eq "journal: recorded decodes" io+mem "$(journal_vga "$GPU" decodes)"
assert_eq "journal: recorded owns" "$(arb_field "$GPU" owns)" "$(journal_vga "$GPU" owns)"
assert_eq "journal: recorded driver" virtio-pci "$(journal_vga "$GPU" driver)"
assert_eq "journal: recorded boot_vga" false "$(journal_vga "$GPU" boot_vga)"
assert_eq "journal: no record for $AUD" null "$(journal_vga "$AUD" decodes)"

say "on vfio-pci: decodes none is ignored by the kernel"
line=$(arb_line "$GPU")
expect_rc 1 pt-vgaarb decodes "$GPU" none
assert_out_has "the kernel ignored \"decodes none\""
assert_out_has "vfio-pci"
assert_out_has "decode callback"
assert_eq "arbiter line after the ignored write" "$line" "$(arb_line "$GPU")"
dmesg | tail -n 3

say "restore refuses while vfio-pci decides the decodes; the record stays"
expect_rc 1 pt-vgaarb restore "$GPU"
assert_out_has "is on vfio-pci"
assert_out_has "pt-bind attach $GPU"
assert_eq "journal: record after a refused restore" io+mem "$(journal_vga "$GPU" decodes)"
assert_eq "arbiter line after a refused restore" "$line" "$(arb_line "$GPU")"

say "attach: the record outlives it"
expect_rc 0 pt-bind attach "$SLOT"
assert_driver "$GPU" virtio-pci
assert_eq "journal: record after attach" io+mem "$(journal_vga "$GPU" decodes)"

say "on virtio-pci (no callback): decodes none is applied and read back"
expect_rc 0 pt-vgaarb decodes "$GPU" none
assert_out_has "decodes io+mem -> none"
assert_eq "decodes after 'decodes none'" none "$(arb_field "$GPU" decodes)"
assert_eq "count after 'decodes none'" 1 "$(arb_field "$GPU" count)"
expect_rc 0 pt-vgaarb decodes "$GPU" none
assert_out_has "already"

say "--dry-run restore writes nothing"
expect_rc 0 pt-vgaarb --dry-run restore "$GPU"
assert_out_has "from the journal"
assert_eq "decodes after a dry run" none "$(arb_field "$GPU" decodes)"
assert_eq "journal record after a dry run" io+mem "$(journal_vga "$GPU" decodes)"

say "restore: back to the recorded io+mem, verified; the record goes"
expect_rc 0 pt-vgaarb restore "$GPU"
assert_out_has "decodes none -> io+mem"
assert_out_has "from the journal: decodes=io+mem"
assert_eq "decodes after restore" io+mem "$(arb_field "$GPU" decodes)"
assert_eq "count after restore" 2 "$(arb_field "$GPU" count)"
assert_eq "journal record after restore" null "$(journal_vga "$GPU" decodes)"
expect_rc 0 pt-vgaarb show "$GPU"
# "changed VGA decodes" (5.10, 6.1) or "VGA decodes changed" (6.12)
assert_out_has "olddecodes=none,decodes=io+mem"

say "without a record: io+mem, and it says so"
expect_rc 0 pt-vgaarb decodes "$GPU" mem
assert_out_has "already"
expect_rc 0 pt-vgaarb -v decodes "$GPU" none
assert_out_has "pt-vgaarb: write /dev/vga_arbiter \"target PCI:$GPU\""
assert_out_has "pt-vgaarb: write /dev/vga_arbiter \"decodes none\""
expect_rc 0 pt-vgaarb decodes "$GPU" io
assert_out_has "takes io as io+mem"
assert_eq "decodes after 'decodes io'" io+mem "$(arb_field "$GPU" decodes)"
expect_rc 0 pt-vgaarb decodes "$GPU" none
expect_json 0 pt-vgaarb restore --json "$GPU"
assert_json "restore --json" '.to == "io+mem" and .result == "changed" and (.source | startswith("no journal record")) and .journal_record_removed == false'
assert_eq "decodes at the end" io+mem "$(arb_field "$GPU" decodes)"
assert_attached
pass
