# The arm64 nested-KVM test image (tests/arm64/README.md): static aarch64 programs built with
# Debian's cross compiler, packed with our own init into $(BUILD)/arm64/initramfs.cpio.gz, plus
# Debian's arm64 kernels fetched by apt into $(BUILD)/arm64/ (scripts/arm64-kernel.sh).
#
#   make arm64          the image and the kernels (the network only for a kernel not yet here)
#   make arm64-image    the image only (no network); `make all` does this when the cross
#                       compiler is installed
ARM64_CC     ?= aarch64-linux-gnu-gcc
ARM64_DIR    := tests/arm64
ARM64_OUT    := $(BUILD)/arm64
ARM64_CFLAGS := -std=c11 -O2 -g -static -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Wvla -Ihypercall-bridge/include
# hv_smoke and its guest: cleave-hv's arm64 VMM (the Makefile's arm64-hv rules build them).
ARM64_PROGS  := $(ARM64_OUT)/bin/kvm_probe $(ARM64_OUT)/bin/hv_smoke $(ARM64_OUT)/bin/hv_smoke_guest.bin \
	$(ARM64_OUT)/bin/hv_fault_guest.bin
ARM64_IMAGE  := $(ARM64_OUT)/initramfs.cpio.gz

.PHONY: arm64 arm64-image arm64-kernel
arm64: arm64-image arm64-kernel
arm64-image: $(ARM64_IMAGE)
arm64-kernel:
	@scripts/arm64-kernel.sh $(ARM64_OUT)

ifneq ($(shell command -v $(ARM64_CC) 2>/dev/null),)
all: $(ARM64_IMAGE)
endif

$(ARM64_OUT)/bin/%: $(ARM64_DIR)/%.c hypercall-bridge/include/cleave_abi.h
	@mkdir -p $(@D)
	@echo "  CC      $< (arm64)"
	@$(ARM64_CC) $(ARM64_CFLAGS) -o $@ $<

$(ARM64_IMAGE): $(ARM64_OUT)/bin/init $(ARM64_PROGS) scripts/arm64-initramfs.sh
	@echo "  CPIO    $@"
	@scripts/arm64-initramfs.sh $@ $(ARM64_OUT)/bin/init $(ARM64_PROGS)

# The Linux corporate half (issue 12 §4, `make arm64-linux`; part of `make test` after the
# kernels and arm64-hv-full): Debian's 6.1 arm64 Image as cleave-hv's --linux guest, with
# corp_init and the kernel's virtio_mmio and virtio_blk modules (scripts/arm64-kernel.sh keeps
# them beside the kernel) in its initramfs; linux_steps drives it inside the emulated machine.
ARM64_LINUX_KVER := 6.1
ARM64_LINUX_MODS := $(ARM64_OUT)/modules-$(ARM64_LINUX_KVER)
.PHONY: arm64-linux
arm64-linux: $(ARM64_OUT)/initramfs-linux.cpio.gz
# The guest kernel must be an uncompressed Image: Debian's arm64 vmlinuz is one; a gzip'd one
# is decompressed here.
$(ARM64_OUT)/linux/Image: $(ARM64_OUT)/vmlinuz-$(ARM64_LINUX_KVER)
	@mkdir -p $(@D)
	@echo "  IMAGE   $@"
	@if [ "$$(head -c 2 $< | od -An -tx1 | tr -d ' ')" = 1f8b ]; then zcat $< >$@.tmp; \
		else cp $< $@.tmp; fi && mv $@.tmp $@
$(ARM64_OUT)/linux/corp.cpio.gz: $(ARM64_OUT)/bin/corp_init scripts/arm64-initramfs.sh \
		$(ARM64_LINUX_MODS)/virtio_mmio.ko $(ARM64_LINUX_MODS)/virtio_blk.ko
	@mkdir -p $(@D)
	@echo "  CPIO    $@"
	@scripts/arm64-initramfs.sh $@ $< lib/virtio_mmio.ko=$(ARM64_LINUX_MODS)/virtio_mmio.ko \
		lib/virtio_blk.ko=$(ARM64_LINUX_MODS)/virtio_blk.ko
$(ARM64_OUT)/initramfs-linux.cpio.gz: $(ARM64_OUT)/bin/init $(ARM64_OUT)/bin/linux_steps \
		$(ARM64_OUT)/hv/cleave-hv $(ARM64_OUT)/hv/cleave-hvctl $(ARM64_OUT)/hv/cleave-ticket \
		$(ARM64_OUT)/linux/Image $(ARM64_OUT)/linux/corp.cpio.gz scripts/arm64-initramfs.sh
	@echo "  CPIO    $@"
	@scripts/arm64-initramfs.sh $@ $(filter-out %.sh %/Image %.cpio.gz,$^) \
		bin/Image=$(ARM64_OUT)/linux/Image bin/corp.cpio.gz=$(ARM64_OUT)/linux/corp.cpio.gz
