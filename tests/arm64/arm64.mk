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
