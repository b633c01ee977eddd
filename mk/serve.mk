# `kubeha serve`. Its loopback tests (cli/tests/serve_cli.rs) run in `make unit`: the fleet page in
# headless Chromium, `--tftp` copying iPXE's loaders. test-serve-boot adds a real network boot: QEMU (TCG, SeaBIOS)
# with QEMU's iPXE ROM chains to the server and boots the installer it hands out.
APT_PACKAGES += chromium ipxe qemu-system-x86 ipxe-qemu
TEST_TARGETS += test-serve-boot

.PHONY: test-serve-boot
test-serve-boot: deps
	$(CARGO) test -p kubeha --test serve_cli -- --ignored
