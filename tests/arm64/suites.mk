# The x86 host's hypervisor suites cross-built unchanged for arm64 and packed with the arm64
# cleave-hv, cleave-hvctl, cleave-ticket and corporate guest into $(ARM64_OUT)/initramfs-suites.cpio.gz,
# which test_arm64_kvm's suites_* cases boot (tests/arm64/README.md). Part of `make arm64-hv-full`:
# like the rest of it, the arm64 sysroot (and here busybox-static and openssl, arm64) come by apt.
ARM64_SUITES     := test_hv test_hv_cli test_hv_console test_hv_workspace test_hv_crash
ARM64_SUITE_BINS := $(addprefix $(ARM64_OUT)/suites/,$(ARM64_SUITES))
ARM64_SUITE_LIB  := $(addprefix $(ARM64_OUT)/obj/tests/lib/,trun.o hvproc.o)
ARM64_TOOLS      := $(ARM64_OUT)/tools
ARM64_CROSS_LIB  ?= /usr/aarch64-linux-gnu/lib
ARM64_SUITES_IMG := $(ARM64_OUT)/initramfs-suites.cpio.gz

.PHONY: arm64-suites
arm64-suites: $(ARM64_SUITES_IMG)
arm64-hv-full: $(ARM64_SUITES_IMG)

$(patsubst %,$(ARM64_OUT)/obj/tests/integration/%.o,$(ARM64_SUITES)) $(ARM64_SUITE_LIB): \
	| $(ARM64_SYSROOT)/.done
$(ARM64_OUT)/suites/%: $(ARM64_OUT)/obj/tests/integration/%.o $(ARM64_SUITE_LIB) \
		$(ARM64_OUT)/lib/libhv-all.a
	@mkdir -p $(@D)
	@echo "  LD      $@ (arm64)"
	@$(ARM64_CC) -static -o $@ $^ $(ARM64_HV_LIBS)
$(ARM64_TOOLS)/.done:
	@scripts/arm64-sysroot.sh $(ARM64_OUT) tools busybox-static openssl libssl3
$(ARM64_SUITES_IMG): $(ARM64_OUT)/bin/init $(ARM64_GUEST_BIN) $(ARM64_TOOLS)/.done \
		$(ARM64_OUT)/bin/hv_suites $(ARM64_SUITE_BINS) $(ARM64_OUT)/hv/cleave-hv \
		$(ARM64_OUT)/hv/cleave-hvctl $(ARM64_OUT)/hv/cleave-ticket \
		scripts/arm64-suites-image.sh
	@echo "  CPIO    $@"
	@scripts/arm64-suites-image.sh $@ $(ARM64_OUT)/bin/init $(ARM64_GUEST_BIN) $(ARM64_TOOLS) \
		$(ARM64_CROSS_LIB) $(filter-out $(ARM64_OUT)/bin/init $(ARM64_GUEST_BIN) %.done %.sh,$^)
