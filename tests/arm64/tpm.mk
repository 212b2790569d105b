# issue 13 §3 on arm64 (`make arm64-tpm`; part of `make test` after arm64-hv-full): a cleave-hv
# with the TPM layer for the emulated machine, and the image test_arm64_tpm boots with QEMU's
# tpm-tis-device backed by the host's swtpm. Debian ships tpm2-tss only as shared libraries, so
# this cleave-hv is linked dynamically against them (scripts/arm64-sysroot.sh fetches them into
# tpmroot/, with OpenSSL and libsodium as shared libraries too: one libcrypto in the process;
# libtss2-sys is ESAPI's, libtss2-tcti-device the TCTI the loader opens), and the image
# carries them with the cross compiler's arm64 libc and loader. Only the files that differ with
# the TPM (tpm*.c, and the three that compile to -ENOTSUP stubs under CLEAVE_NO_TPM) are built
# again, in obj-tpm/; the rest is the static cleave-hv's objects.
ARM64_TPMROOT    := $(ARM64_OUT)/tpmroot
ARM64_TPM_LIBDIR := $(ARM64_TPMROOT)/usr/lib/aarch64-linux-gnu
ARM64_TPM_SPLIT  := $(addprefix hypercall-bridge/hv/,hv_tpm.c keys_tpm.c trust_tpm.c)
ARM64_TPM_OBJ    := $(patsubst %.c,$(ARM64_OUT)/obj-tpm/%.o,$(ARM64_TPM_SPLIT) \
	$(wildcard hypercall-bridge/hv/tpm*.c))
ARM64_TPM_REST   := $(patsubst %.c,$(ARM64_OUT)/obj/%.o,$(filter-out $(ARM64_TPM_SPLIT),$(ARM64_HV_ALL)))
ARM64_TPM_LIBS   := -L$(ARM64_TPM_LIBDIR) -Wl,-rpath-link,$(ARM64_TPM_LIBDIR) -ltss2-esys \
	-ltss2-mu -ltss2-tctildr -ltss2-rc -lcrypto -lsodium -lpthread
# What the dynamic cleave-hv loads at run time (tctildr dlopens the device TCTI by name).
ARM64_TPM_SOLIBS := libtss2-esys.so.0 libtss2-sys.so.1 libtss2-mu.so.0 libtss2-rc.so.0 \
	libtss2-tctildr.so.0 libtss2-tcti-device.so.0 libcrypto.so.3 libsodium.so.23
ARM64_TPM_IMG    := $(ARM64_OUT)/initramfs-tpm.cpio.gz
# The TPM's driver, the virtio disk on which tpm_steps carries its state across a reboot, and
# the virtio-serial port test_arm64_enroll's /bin/enroll_relay carries the bridge over to the
# host (virtio_console.ko; all of them Debian's modules but tpm_tis).
ARM64_TPM_MODS   := tpm_tis_core tpm_tis virtio_mmio virtio_blk virtio_console

.PHONY: arm64-tpm
arm64-tpm: $(ARM64_TPM_IMG)
ARM64_TPM_PKGS   := libtss2-dev libtss2-esys-3.0.2-0 libtss2-mu0 libtss2-rc0 libtss2-sys1 \
	libtss2-tctildr0 libtss2-tcti-device0 libssl-dev libssl3 libsodium-dev libsodium23
$(ARM64_TPMROOT)/.done:
	@scripts/arm64-sysroot.sh $(ARM64_OUT) tpmroot $(ARM64_TPM_PKGS)
$(ARM64_LINUX_MODS)/tpm_tis.ko: $(ARM64_OUT)/vmlinuz-$(ARM64_LINUX_KVER)
	@scripts/arm64-tpm-module.sh $(ARM64_OUT)
# The headers each of these objects was built from (-MMD): the Makefile's own include covers
# obj/ only, and a stale object here against a changed header corrupts memory at run time.
-include $(shell find $(ARM64_OUT)/obj-tpm -name '*.d' 2>/dev/null)
$(ARM64_OUT)/obj-tpm/%.o: %.c | $(ARM64_TPMROOT)/.done
	@mkdir -p $(@D)
	@echo "  CC      $< (arm64, TPM)"
	@$(ARM64_CC) $(filter-out -DCLEAVE_NO_TPM,$(ARM64_HV_CPPFLAGS)) \
		-isystem $(ARM64_TPMROOT)/usr/include $(ARM64_HV_CFLAGS) -c $< -o $@
$(ARM64_OUT)/hv-tpm/cleave-hv: $(ARM64_OUT)/obj/hypercall-bridge/hv/main.o $(ARM64_TPM_OBJ) \
		$(ARM64_TPM_REST)
	@mkdir -p $(@D)
	@echo "  LD      $@ (arm64, dynamic)"
	@$(ARM64_CC) -o $@ $^ $(ARM64_TPM_LIBS)
$(ARM64_OUT)/bin/tpm_steps: $(ARM64_OUT)/bin/hv_steps
	@cp $< $@
$(ARM64_OUT)/bin/enroll_relay: tests/lib/relaylink.h
$(ARM64_LINUX_MODS)/virtio_console.ko:
	@scripts/arm64-kernel.sh $(ARM64_OUT)
$(ARM64_TPM_IMG): $(ARM64_OUT)/bin/init $(ARM64_OUT)/bin/tpm_steps $(ARM64_OUT)/bin/enroll_relay \
		$(ARM64_OUT)/hv-tpm/cleave-hv $(ARM64_OUT)/hv/cleave-hvctl $(ARM64_OUT)/hv/cleave-ticket \
		$(ARM64_GUEST_BIN) $(foreach m,$(ARM64_TPM_MODS),$(ARM64_LINUX_MODS)/$(m).ko) \
		scripts/arm64-initramfs.sh tests/arm64/tpm.mk
	@echo "  CPIO    $@"
	@scripts/arm64-initramfs.sh $@ $(filter-out %.ko %.sh %.mk,$^) \
		$(foreach m,$(ARM64_TPM_MODS),lib/$(m).ko=$(ARM64_LINUX_MODS)/$(m).ko) \
		lib/ld-linux-aarch64.so.1=$(ARM64_CROSS_LIB)/ld-linux-aarch64.so.1 \
		lib/aarch64-linux-gnu/libc.so.6=$(ARM64_CROSS_LIB)/libc.so.6 \
		$(foreach l,$(ARM64_TPM_SOLIBS),lib/aarch64-linux-gnu/$(l)=$(ARM64_TPM_LIBDIR)/$(l))
