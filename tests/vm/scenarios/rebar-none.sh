# rebar-none.sh: no device QEMU emulates has a Resizable BAR capability
# (QEMU 7.2 has none), so on the real kernel this proves the reporting of
# "none" and the refusals of --rebar: exit 2, no write, no journal. The
# resize itself is proven on fixture config spaces (tests/pt/rebar_test.cpp,
# bind_test.cpp, reset_test.cpp).
. /pt-vm/lib.sh

assert_attached
before=$(snapshot)

unchanged() {
  assert_snapshot "$1" "$before"
  assert_journal_clean
}

say "show reports no Resizable BAR on the emulated GPU"
expect_rc 0 pt-bind show "$GPU"
assert_out_has "resizable bars:   none"
expect_rc 0 pt-bind --json show "$GPU"
assert_out_has '"rebar": []'

say "detach --rebar on a function without the capability is refused"
expect_rc 2 pt-bind detach --rebar 0=256M "$GPU"
assert_out_has "has no Resizable BAR capability"
unchanged "--rebar 0=256M"

say "malformed sizes and BARs are refused before anything else"
expect_rc 2 pt-bind detach --rebar 0=3G "$GPU"
assert_out_has "not a power of two"
unchanged "--rebar 0=3G"
expect_rc 2 pt-bind detach --rebar 7=1G "$GPU"
assert_out_has "from 0 to 5"
unchanged "--rebar 7=1G"
expect_rc 2 pt-bind attach --rebar 0=1G "$GPU"
unchanged "attach --rebar"
pass
