# kubeha-firstboot, the node agent.
#   make node-binary        dist/kubeha-firstboot for EL7+ (glibc 2.17, cargo-zigbuild), checked with objdump -T;
#                           the agent `kubeha iso`/`kubeha pxe` embed by default (make unit and make demo build it)
#   make test-firstboot     a short fuzz run of each parser (its other tests, incl. real containerd/dockerd image
#                           loads, run in `make unit`)
#   make fuzz-firstboot     a long fuzz run (FUZZ_SECS per target)
#   make install-firstboot  binary + unit into DESTDIR (what the kickstart's %post does on a node)
APT_PACKAGES += containerd docker.io runc xorriso mtools dosfstools systemd firewalld iproute2 util-linux binutils
TEST_TARGETS += test-firstboot

FIRSTBOOT_TARGET := x86_64-unknown-linux-gnu
FIRSTBOOT_GLIBC := 2.17
FUZZ_TARGETS_FIRSTBOOT := cmdline node_config iso9660 fat
FUZZ_SECS ?= 300
DESTDIR ?=

.PHONY: node-binary test-firstboot fuzz-firstboot fuzz-firstboot-short install-firstboot cargo-fuzz

node-binary: deps
	@command -v cargo-zigbuild >/dev/null && python3 -c 'import ziglang' 2>/dev/null || \
	  { pip install -q --disable-pip-version-check ziglang cargo-zigbuild 2>/dev/null || \
	    pip install -q --break-system-packages ziglang cargo-zigbuild; }
	@rustup target list --installed 2>/dev/null | grep -qx $(FIRSTBOOT_TARGET) || rustup target add $(FIRSTBOOT_TARGET)
	$(CARGO) zigbuild --release --target $(FIRSTBOOT_TARGET).$(FIRSTBOOT_GLIBC) -p kubeha-firstboot
	@mkdir -p dist
	@cp "$${CARGO_TARGET_DIR:-target}/$(FIRSTBOOT_TARGET)/release/kubeha-firstboot" dist/kubeha-firstboot
	@newest=$$(objdump -T dist/kubeha-firstboot | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1); \
	  if [ "$$(printf '%s\n%s\n' "$$newest" "$(FIRSTBOOT_GLIBC)" | sort -V | tail -n1)" != "$(FIRSTBOOT_GLIBC)" ]; then \
	    echo "node-binary: dist/kubeha-firstboot needs GLIBC_$$newest, newer than $(FIRSTBOOT_GLIBC) (CentOS 7)" >&2; exit 1; fi; \
	  echo "node-binary: dist/kubeha-firstboot, $$(stat -c %s dist/kubeha-firstboot) bytes, newest symbol GLIBC_$$newest"

cargo-fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked

# Short fuzz runs for `make test`; the corpus stays in firstboot/fuzz/corpus (not committed). The first build of the
# fuzz targets (sanitizer build of the model crate and its crypto) takes ~9 min on a loaded 2-core machine, later runs ~40 s.
fuzz-firstboot-short: cargo-fuzz
	@cd firstboot/fuzz && for t in $(FUZZ_TARGETS_FIRSTBOOT); do \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t -- -max_total_time=10 2>&1 | tail -n 3 || exit 1; done

fuzz-firstboot: cargo-fuzz
	@cd firstboot/fuzz && for t in $(FUZZ_TARGETS_FIRSTBOOT); do \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t -- -max_total_time=$(FUZZ_SECS) 2>&1 | tail -n 3 || exit 1; done

test-firstboot: deps fuzz-firstboot-short

install-firstboot:
	install -D -m 0755 $(or $(wildcard dist/kubeha-firstboot),target/debug/kubeha-firstboot) $(DESTDIR)/usr/local/bin/kubeha-firstboot
	install -D -m 0644 firstboot/kubeha-firstboot.service $(DESTDIR)/etc/systemd/system/kubeha-firstboot.service
