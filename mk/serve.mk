# `kubeha serve`. Its loopback tests (cli/tests/serve_cli.rs) run in `make unit`: the fleet page in
# headless Chromium (and live over its event stream, driven through chromedriver: WebDriver), `--tftp` copying
# iPXE's loaders. test-serve-boot adds real network boots: QEMU (TCG; SeaBIOS, and OVMF for UEFI)
# with QEMU's iPXE ROM chains to the server and boots the installer it hands out.
APT_PACKAGES += chromium chromium-driver ipxe qemu-system-x86 ipxe-qemu ovmf
TEST_TARGETS += test-serve-boot

.PHONY: test-serve-boot
test-serve-boot: deps
	$(CARGO) test -p kubeha --test serve_cli -- --ignored

# `make bench-serve` (part of `make bench`): 500 simulated nodes each POSTing a report a second for 60 s against the
# real `kubeha serve` on loopback; every accepted report must be in the journal; p50/p99 of the page, /api/fleet
# and `kubeha status` under that load next to nginx serving the same bytes in the same run (cli/benches/serve_load.rs,
# BENCHMARKS.md). KUBEHA_BENCH_NODES and KUBEHA_BENCH_SECS shrink it for a quick run.
APT_PACKAGES += nginx curl
.PHONY: bench-serve
bench: bench-serve
bench-serve: deps
	$(CARGO) bench -p kubeha --bench serve_load
