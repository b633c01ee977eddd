# Install media: `kubeha kickstart`, `kubeha iso`, `kubeha pxe`.
# The unit tests (cargo nextest in `make unit`) render and ksvalidate every kickstart variant, remaster the synthetic
# CentOS 7 / Rocky 9 ISOs and check them with xorriso/mtools/checkisomd5, write PXE trees and run %post for real.
# test-media adds the QEMU (TCG) boots: ISO on SeaBIOS (CD and USB disk) and OVMF, PXE with pxelinux and GRUB.
APT_PACKAGES += xorriso genisoimage xfsprogs syslinux-utils isolinux syslinux-common pxelinux grub-efi-amd64-bin grub-common mtools dosfstools \
	busybox-static cpio gzip linux-image-amd64 qemu-system-x86 ovmf ipxe-qemu isomd5sum createrepo-c rpm python3
PIP_PACKAGES += pykickstart
TEST_TARGETS += test-media

.PHONY: test-media test-media-boot
# The fast tests run in `make unit`; test-media adds the QEMU boots.
test-media: deps
	$(MAKE) --no-print-directory test-media-boot

# Seven QEMU boots (~10-90 s each under TCG), two at a time.
test-media-boot:
	$(CARGO) test -p kubeha-image --test boot -- --ignored --test-threads 2
