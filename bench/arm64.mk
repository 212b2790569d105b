# `make bench-arm64`: the arm64 exit costs inside the emulated machine (issue 12). Cross-builds
# bench/arm64_bench.c and bench/hv_bench.c static against the arm64 cleave-hv's objects (the
# Makefile's arm64-hv-full rules: Debian's arm64 libcrypto and libsodium, fetched once), the
# reference guest, and packs $(ARM64_OUT)/initramfs-bench.cpio.gz; then bench/arm64.sh boots
# QEMU with it (3 runs per kernel) and prints the table. Not part of `make test`.
ARM64_BENCH_IMAGE := $(ARM64_OUT)/initramfs-bench.cpio.gz

.PHONY: bench-arm64
bench-arm64: $(ARM64_BENCH_IMAGE)
	@BUILD=$(BUILD) bench/arm64.sh

$(ARM64_OUT)/obj/bench/arm64_bench.o $(ARM64_OUT)/obj/bench/hv_bench.o: | $(ARM64_SYSROOT)/.done
$(ARM64_OUT)/bench/%: $(ARM64_OUT)/obj/bench/%.o $(ARM64_OUT)/lib/libhv-all.a
	@mkdir -p $(@D)
	@echo "  LD      $@ (arm64)"
	@$(ARM64_CC) -static -o $@ $^ $(ARM64_HV_LIBS)
$(ARM64_OUT)/bench/arm64_ref_guest.bin: bench/arm64_ref_guest.S
	@mkdir -p $(@D)
	@echo "  AS      $< (arm64)"
	@$(ARM64_CC) -c -o $@.o $<
	@$(ARM64_CC:gcc=objcopy) -O binary $@.o $@
	@rm -f $@.o
$(ARM64_BENCH_IMAGE): $(ARM64_OUT)/bin/init $(ARM64_OUT)/bench/arm64_bench $(ARM64_OUT)/bench/hv_bench \
		$(ARM64_OUT)/bench/arm64_ref_guest.bin $(ARM64_OUT)/hv/cleave-hv $(ARM64_GUEST_BIN) \
		scripts/arm64-initramfs.sh
	@echo "  CPIO    $@"
	@scripts/arm64-initramfs.sh $@ $(filter-out %.sh,$^)
