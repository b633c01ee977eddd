# Issue 3: the offline bundle (kubeha-mirror, `kubeha bundle`).
# Its integration tests (mirror/tests/it: docker-registry, dockerd, containerd, skopeo, all on loopback, ~30 s) run
# with the workspace's `make unit`; `make test-mirror` runs them alone.
# minisign: the bundle signature tests (cli/tests/bundle_cli.rs) check `kubeha bundle sign` with stock `minisign -V`.
APT_PACKAGES += docker-registry skopeo docker.io containerd runc busybox-static iproute2 util-linux tar minisign

.PHONY: test-mirror bench bench-mirror
test-mirror: deps
	$(CARGO) test -p kubeha-mirror -- --test-threads=2

# `make bench`: kubeha vs skopeo on 12 images (>= 500 MB, one shared base layer) from a local registry.
# Not part of `make test`. Prints the table that BENCHMARKS.md holds.
bench: bench-mirror
bench-mirror: deps
	$(CARGO) build --release -p kubeha --bin kubeha
	$(CARGO) run --release -p kubeha-mirror --example bench -- $(CURDIR)/target/release/kubeha
