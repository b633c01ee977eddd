# The bundle, RPM half: the bundle's yum repository (mirror/src/rpm). Its tests build repos with rpmbuild +
# createrepo_c, serve one with python3 -m http.server on loopback, recompress metadata with zstd/gzip, and
# prove the bundle with an offline `dnf --installroot` install. The signature tests generate keys with gpg, sign
# with rpmsign and check with rpmkeys (both in Debian's rpm) and dnf's gpgcheck=1.
APT_PACKAGES += rpm createrepo-c dnf zstd gzip python3 gpg gpgconf
# `make unit` (cargo nextest --workspace) already runs mirror/tests/rpm.rs; this target runs it alone.
.PHONY: test-rpm
test-rpm: deps
	$(CARGO) test -p kubeha-mirror --test rpm
	$(CARGO) test -p kubeha-mirror --lib rpm::
