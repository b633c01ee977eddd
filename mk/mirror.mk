# The offline bundle (kubeha-mirror, `kubeha bundle`).
# Its integration tests (mirror/tests/it: docker-registry, dockerd, containerd, skopeo, all on loopback, ~30 s) run
# with the workspace's `make unit`; `make test-mirror` runs them alone.
# minisign: the bundle signature tests (cli/tests/bundle_cli.rs) check `kubeha bundle sign` with stock `minisign -V`.
APT_PACKAGES += docker-registry skopeo docker.io containerd runc busybox-static iproute2 util-linux tar minisign

.PHONY: test-mirror bench bench-mirror bench-rpm
test-mirror: deps
	$(CARGO) test -p kubeha-mirror -- --test-threads=2

# `make bench`: kubeha against the reference tools in the same run, each table printed on stdout (BENCHMARKS.md).
# Not part of `make test`, and nothing in it is timed by a test.
#   bench-mirror: `kubeha bundle build` vs skopeo's best modes on BENCH_IMAGES (default 25) images sharing a base
#                 layer, from a local registry (mirror/examples/bench.rs).
#   bench-rpm:    a cold `kubeha bundle resolve` vs a cold `dnf --installroot --assumeno install` of a Kubernetes
#                 request from generated repodata of EL scale, BENCH_RPM_PACKAGES (default 22000) packages and
#                 BENCH_RPM_FILES (default 1300000) file entries (mirror/examples/bench_rpm.rs).
# BENCH_RUNS (default 3) cold runs of each; see the examples' headers for the other knobs.
BENCH_TARGET = $${CARGO_TARGET_DIR:-$(CURDIR)/target}
bench: bench-mirror bench-rpm
bench-mirror: deps
	$(CARGO) build --release -p kubeha --bin kubeha
	$(CARGO) run --release -p kubeha-mirror --example bench -- $(BENCH_TARGET)/release/kubeha
bench-rpm: deps
	$(CARGO) build --release -p kubeha --bin kubeha
	$(CARGO) run --release -p kubeha-mirror --example bench_rpm -- $(BENCH_TARGET)/release/kubeha
