# Cleave: one Makefile for every binary, test and benchmark.
# Objects go out of tree under $(BUILD)/ (build/ by default, build-asan/ for `make asan`).
#
#   make            build everything into build/bin/
#   make run        install missing packages, build, start cleave-server on https://127.0.0.1:8443
#   make test       install missing packages, build, run every test suite
#   make asan       the whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench      benchmarks (results go to bench/RESULTS.md by hand, with the machine)
#   make format     reformat; make format-check fails on unformatted code

BUILD   ?= build
SAN     ?=
CC      ?= gcc
PKGS    := libmicrohttpd gnutls jansson libcurl sqlite3 libpq libcrypto libsodium zlib
DATA    ?= var
LISTEN  ?= 127.0.0.1:8443

# cleave-hv's VMM has one folder per architecture (hypercall-bridge/hv/arch/$(HV_ARCH)/, behind
# hypercall-bridge/hv/arch.h); ARCH names the target, the host's by default.
ARCH    ?= $(shell uname -m)
HV_ARCH := $(if $(filter aarch64 arm64,$(ARCH)),arm64,x86)

WARN := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wvla -Wpointer-arith -Wwrite-strings -Wundef -Wold-style-definition -Wimplicit-fallthrough \
	-Wno-format-truncation
CPPFLAGS := -D_GNU_SOURCE -I. -Icommon -Icrypto -Iserver -Ihypercall-bridge/include -Itests/lib -Ihypercall-bridge/hv -Ihypercall-bridge/hv/arch/$(HV_ARCH) -Ihypercall-bridge/lib -MMD -MP
CFLAGS   := -std=c11 -g $(WARN)
LDFLAGS  :=
ifeq ($(SAN),1)
CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
CFLAGS  += -O2 -fstack-protector-strong -fPIE
CPPFLAGS += -D_FORTIFY_SOURCE=2 -DNDEBUG
LDFLAGS += -pie -Wl,-z,relro,-z,now
endif

# pkg-config runs lazily so that `make deps` works before the packages exist.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS = $(shell pkg-config --libs cmocka 2>/dev/null)
LIBS = $(PKG_LIBS) -lpthread
# libqrencode: only cleave-server (enrollment QR codes, server/api/qr.c) and the unit tests that
# link the server library need it.
QR_CFLAGS = $(shell pkg-config --cflags libqrencode 2>/dev/null)
QR_LIBS   = $(shell pkg-config --libs libqrencode 2>/dev/null)
# tpm2-tss (ESAPI, marshalling, TCTI loader, error text): cleave-hv's TPM layer
# (hypercall-bridge/hv/tpm*.c) and everything that links libhv.a.
TSS2_LIBS = $(shell pkg-config --libs tss2-esys tss2-mu tss2-tctildr tss2-rc 2>/dev/null)

COMMON_SRC := $(wildcard common/*.c)
CRYPTO_SRC := $(wildcard crypto/*.c)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c server/*/*.c))
HV_SRC     := $(filter-out hypercall-bridge/hv/main.c hypercall-bridge/hv/hvctl.c,$(wildcard hypercall-bridge/hv/*.c hypercall-bridge/hv/arch/$(HV_ARCH)/*.c hypercall-bridge/lib/*.c))
AGENT_SRC  := $(filter-out agent/main.c,$(wildcard agent/*.c))
CLI_SRC    := $(wildcard cli/*.c)
TESTLIB_SRC := $(wildcard tests/lib/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
INTEG_SRC  := $(wildcard tests/integration/test_*.c)
# arm64_bench.c runs inside the emulated arm64 machine only (bench/arm64.mk cross-builds it).
BENCH_SRC  := $(filter-out bench/arm64_bench.c,$(wildcard bench/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBCOMMON := $(BUILD)/lib/libcommon.a
LIBCRYPTO := $(BUILD)/lib/libclvcrypto.a
LIBSERVER := $(BUILD)/lib/libserver.a
LIBTEST   := $(BUILD)/lib/libtestlib.a
LIBHV     := $(BUILD)/lib/libhv.a
LIBAGENT  := $(BUILD)/lib/libagent.a

SERVER_BIN := $(BUILD)/bin/cleave-server
DEVSIM_BIN := $(BUILD)/bin/cleave-devsim
TICKET_BIN := $(BUILD)/bin/cleave-ticket
AGENT_BIN  := $(BUILD)/bin/cleave-agent
CLI_BIN    := $(BUILD)/bin/cleavectl
# cleave-hv and its control tool exist once hypercall-bridge/hv/main.c and hvctl.c do.
HV_BIN    := $(if $(wildcard hypercall-bridge/hv/main.c),$(BUILD)/bin/cleave-hv)
HVCTL_BIN := $(if $(wildcard hypercall-bridge/hv/hvctl.c),$(BUILD)/bin/cleave-hvctl)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRC))
INTEG_BINS := $(patsubst tests/integration/%.c,$(BUILD)/tests/integration/%,$(INTEG_SRC))
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

# Test and bench objects are reached only through pattern rules; keep them, or every make
# test would relink every test binary.
.SECONDARY: $(call obj,$(UNIT_SRC) $(INTEG_SRC) $(BENCH_SRC))

.PHONY: phone demo all deps run test test-run asan bench bench-tpm fuzz format format-check clean
all: $(SERVER_BIN) $(DEVSIM_BIN) $(TICKET_BIN) $(AGENT_BIN) $(CLI_BIN) $(HV_BIN) $(HVCTL_BIN) $(GUEST_BIN) $(UNIT_BINS) $(INTEG_BINS) $(BENCH_BINS)

deps:
	@scripts/deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(QR_CFLAGS) $(CFLAGS) -c $< -o $@

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
$(LIBCRYPTO): $(call obj,$(CRYPTO_SRC))
MIGRATIONS := $(sort $(wildcard schema/migrations/*.sql))
$(BUILD)/gen/migrations.c: $(MIGRATIONS) scripts/embed-sql.sh
	@mkdir -p $(@D)
	@scripts/embed-sql.sh $@ $(MIGRATIONS)
$(BUILD)/obj/gen/migrations.o: $(BUILD)/gen/migrations.c
	@mkdir -p $(@D)
	@$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
PG_MIGRATIONS := $(sort $(wildcard schema/migrations/pg/*.sql))
$(BUILD)/gen/pg_migrations.c: $(PG_MIGRATIONS) scripts/embed-sql.sh
	@mkdir -p $(@D)
	@EMBED_SYMBOL=pg_migrations scripts/embed-sql.sh $@ $(PG_MIGRATIONS)
$(BUILD)/obj/gen/pg_migrations.o: $(BUILD)/gen/pg_migrations.c
	@mkdir -p $(@D)
	@$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
# The OpenAPI document, served as is at GET /api/v1/openapi.json (server/api/openapi.c).
$(BUILD)/gen/openapi.c: schema/openapi.json scripts/embed-text.sh
	@mkdir -p $(@D)
	@scripts/embed-text.sh $@ openapi_json schema/openapi.json
$(BUILD)/obj/gen/openapi.o: $(BUILD)/gen/openapi.c
	@mkdir -p $(@D)
	@$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
MIGRATION_OBJ := $(BUILD)/obj/gen/migrations.o $(BUILD)/obj/gen/pg_migrations.o \
	$(BUILD)/obj/gen/openapi.o

$(LIBSERVER): $(call obj,$(SERVER_SRC)) $(MIGRATION_OBJ)
# Unit tests link a copy of the server library whose store is built with its test hooks
# (server/store/store_fault.h); cleave-server itself never contains them.
STORE_SRC := $(wildcard server/store/*.c)
HOOK_OBJ  := $(patsubst %.c,$(BUILD)/obj-hooks/%.o,$(STORE_SRC))
LIBSERVER_T := $(BUILD)/lib/libserver-hooks.a
$(BUILD)/obj-hooks/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC      $< (test hooks)"
	@$(CC) $(CPPFLAGS) -DCLEAVE_TEST_HOOKS $(PKG_CFLAGS) $(CFLAGS) -c $< -o $@
$(LIBSERVER_T): $(call obj,$(filter-out $(STORE_SRC),$(SERVER_SRC))) $(HOOK_OBJ) $(MIGRATION_OBJ)
$(LIBTEST): $(call obj,$(TESTLIB_SRC))
$(LIBHV): $(call obj,$(HV_SRC)) $(BUILD)/obj/empty.o
$(LIBAGENT): $(call obj,$(AGENT_SRC))
$(BUILD)/lib/%.a:
	@mkdir -p $(@D)
	@rm -f $@
	@ar rcs $@ $^

$(SERVER_BIN): $(call obj,server/main.c) $(LIBSERVER) $(LIBCRYPTO) $(LIBCOMMON)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(QR_LIBS) $(LIBS)

$(DEVSIM_BIN): $(call obj,tools/devsim.c) $(LIBTEST) $(LIBCRYPTO) $(LIBCOMMON)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(TICKET_BIN): $(call obj,tools/ticket.c) $(LIBHV) $(LIBCRYPTO) $(LIBCOMMON)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(TSS2_LIBS)

$(BUILD)/obj/empty.o:
	@mkdir -p $(@D)
	@echo 'typedef int cleave_empty_unit;' | $(CC) -x c -c - -o $@

$(BUILD)/bin/cleave-hv: $(call obj,hypercall-bridge/hv/main.c) $(LIBHV) $(LIBCRYPTO) $(LIBCOMMON)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(TSS2_LIBS)
$(BUILD)/bin/cleave-hvctl: $(call obj,hypercall-bridge/hv/hvctl.c) $(LIBHV) $(LIBCRYPTO) $(LIBCOMMON)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(TSS2_LIBS)
# The agent's objects live only in libagent.a (its unit tests link it too), never in other libs.
$(AGENT_BIN): $(call obj,agent/main.c) $(LIBAGENT) $(LIBHV) $(LIBCRYPTO) $(LIBCOMMON)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(TSS2_LIBS)

# cleavectl, the admin CLI: libcurl, Jansson, OpenSSL (receipts verify), libqrencode (the
# enrollment QR code in the terminal); common/wire.c decodes receipts and tickets.
$(CLI_BIN): $(call obj,$(CLI_SRC)) $(LIBCOMMON)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(QR_LIBS) $(LIBS)

# The corporate guest (freestanding) has its own rules, owned by hypercall-bridge/guest/.
-include hypercall-bridge/guest/guest.mk
# The arm64 nested-KVM test image and kernels (`make arm64`), owned by tests/arm64/.
-include tests/arm64/arm64.mk

# cleave-hv's VMM for arm64 (hv/arch/arm64/ with the shared VMM files), cross-compiled into a
# library so the port's half keeps building (`make arm64-hv`; with `make` where the cross
# compiler exists). The rest of cleave-hv needs the arm64 libcrypto/libsodium sysroot
# (hypercall-bridge/ARM64.md §1).
ARM64_AR          ?= $(ARM64_CC:gcc=ar)
ARM64_VMM_SRC     := $(addprefix hypercall-bridge/hv/,vmm.c vcpu.c bus_pio.c serial_16550.c virtio_blk.c) \
	$(wildcard hypercall-bridge/hv/arch/arm64/*.c) common/log.c
ARM64_VMM_LIB     := $(ARM64_OUT)/lib/libvmm.a
ARM64_SYSROOT     := $(ARM64_OUT)/sysroot
ARM64_HV_CPPFLAGS  = $(subst hv/arch/$(HV_ARCH),hv/arch/arm64,$(CPPFLAGS)) \
	-I$(ARM64_SYSROOT)/usr/include -I$(ARM64_SYSROOT)/usr/include/aarch64-linux-gnu \
	-DCLEAVE_NO_TPM
# Never the sanitizers (`make asan`): the cross toolchain has no static runtime for them.
ARM64_HV_CFLAGS   := -std=c11 -O2 -g -fstack-protector-strong $(WARN)
.PHONY: arm64-hv
arm64-hv: $(ARM64_VMM_LIB)
ifneq ($(shell command -v $(ARM64_CC) 2>/dev/null),)
all: $(ARM64_VMM_LIB)
endif
$(ARM64_OUT)/obj/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC      $< (arm64)"
	@$(ARM64_CC) $(ARM64_HV_CPPFLAGS) $(ARM64_HV_CFLAGS) -c $< -o $@
$(ARM64_VMM_LIB): $(patsubst %.c,$(ARM64_OUT)/obj/%.o,$(ARM64_VMM_SRC))
	@mkdir -p $(@D)
	@rm -f $@
	@$(ARM64_AR) rcs $@ $^
# hv_smoke: that library and a tiny guest, packed into the arm64 test image (test_arm64_kvm
# runs it after kvm_probe) until the arm64 suite drives the whole cleave-hv.
arm64-hv: $(ARM64_OUT)/bin/hv_smoke $(ARM64_OUT)/bin/hv_smoke_guest.bin $(ARM64_OUT)/bin/hv_fault_guest.bin
$(ARM64_OUT)/bin/hv_smoke: tests/arm64/hv_smoke.c $(ARM64_VMM_LIB)
	@mkdir -p $(@D)
	@echo "  LD      $@ (arm64)"
	@$(ARM64_CC) $(ARM64_HV_CPPFLAGS) $(ARM64_HV_CFLAGS) -static -o $@ $^ -lpthread
# The whole cleave-hv and cleave-hvctl for arm64, static, against Debian's arm64 libcrypto and
# libsodium (scripts/arm64-sysroot.sh fetches them with apt: network, so not part of `all`).
# The TPM layer (hv/tpm*.c) is left out: Debian has no static tpm2-tss (TPM.md §6); the dynamic
# arm64 cleave-hv with it is tests/arm64/tpm.mk's.
ARM64_HV_ALL := $(filter-out hypercall-bridge/hv/main.c hypercall-bridge/hv/hvctl.c \
	$(wildcard hypercall-bridge/hv/tpm*.c),\
	$(wildcard hypercall-bridge/hv/*.c hypercall-bridge/hv/arch/arm64/*.c \
	hypercall-bridge/lib/*.c)) $(COMMON_SRC) $(CRYPTO_SRC)
ARM64_HV_LIBS := -L$(ARM64_SYSROOT)/usr/lib/aarch64-linux-gnu -lcrypto -lsodium -lpthread
.PHONY: arm64-hv-full
arm64-hv-full: $(ARM64_OUT)/hv/cleave-hv $(ARM64_OUT)/hv/cleave-hvctl $(ARM64_OUT)/hv/cleave-ticket \
	$(ARM64_OUT)/initramfs-hv.cpio.gz
# The image test_arm64_hv boots: init runs hv_steps, which drives cleave-hv and its arm64 guest.
$(ARM64_OUT)/initramfs-hv.cpio.gz: $(ARM64_OUT)/bin/init $(ARM64_OUT)/bin/hv_steps \
		$(ARM64_OUT)/hv/cleave-hv $(ARM64_OUT)/hv/cleave-hvctl $(ARM64_OUT)/hv/cleave-ticket \
		$(ARM64_GUEST_BIN) \
		scripts/arm64-initramfs.sh
	@echo "  CPIO    $@"
	@scripts/arm64-initramfs.sh $@ $(filter-out %.sh,$^)
$(ARM64_SYSROOT)/.done:
	@scripts/arm64-sysroot.sh $(ARM64_OUT)
# Only the files that include OpenSSL or libsodium headers wait for the sysroot; the VMM's
# objects (`all`) never fetch anything.
$(patsubst %.c,$(ARM64_OUT)/obj/%.o,$(filter-out $(ARM64_VMM_SRC),$(ARM64_HV_ALL)) \
	$(addprefix hypercall-bridge/hv/,main.c hvctl.c) tools/ticket.c): | $(ARM64_SYSROOT)/.done
$(ARM64_OUT)/lib/libhv-all.a: $(patsubst %.c,$(ARM64_OUT)/obj/%.o,$(ARM64_HV_ALL))
	@mkdir -p $(@D)
	@rm -f $@
	@$(ARM64_AR) rcs $@ $^
$(ARM64_OUT)/hv/cleave-hv: $(ARM64_OUT)/obj/hypercall-bridge/hv/main.o $(ARM64_OUT)/lib/libhv-all.a
	@mkdir -p $(@D)
	@echo "  LD      $@ (arm64)"
	@$(ARM64_CC) -static -o $@ $^ $(ARM64_HV_LIBS)
$(ARM64_OUT)/hv/cleave-hvctl: $(ARM64_OUT)/obj/hypercall-bridge/hv/hvctl.o $(ARM64_OUT)/lib/libhv-all.a
	@mkdir -p $(@D)
	@echo "  LD      $@ (arm64)"
	@$(ARM64_CC) -static -o $@ $^ $(ARM64_HV_LIBS)
# cleave-ticket plays the server's signer inside the emulated machine (tests/arm64/hv_steps.c).
$(ARM64_OUT)/hv/cleave-ticket: $(ARM64_OUT)/obj/tools/ticket.o $(ARM64_OUT)/lib/libhv-all.a
	@mkdir -p $(@D)
	@echo "  LD      $@ (arm64)"
	@$(ARM64_CC) -static -o $@ $^ $(ARM64_HV_LIBS)
# The x86 hypervisor suites, cross-built for arm64 and run in the emulated machine.
-include tests/arm64/suites.mk
# cleave-hv --tpm for arm64 (dynamic, tpm2-tss) and its image with the machine's TPM driver.
-include tests/arm64/tpm.mk
# hv_smoke's second guest faults on purpose, with the corporate guest's own vectors.
$(ARM64_OUT)/bin/hv_fault_guest.bin: tests/arm64/hv_fault_guest.S \
		hypercall-bridge/guest/arch/arm64/vectors.S hypercall-bridge/guest/arch/arm64/guest.ld
	@mkdir -p $(@D)
	@echo "  LD      $@ (arm64)"
	@$(ARM64_CC) -nostdlib -static -no-pie -Wl,--build-id=none \
		-Wl,-T,hypercall-bridge/guest/arch/arm64/guest.ld -o $@.elf $(filter %.S,$^)
	@$(ARM64_CC:gcc=objcopy) -O binary $@.elf $@
	@rm -f $@.elf
$(ARM64_OUT)/bin/hv_smoke_guest.bin: tests/arm64/hv_smoke_guest.S
	@mkdir -p $(@D)
	@echo "  AS      $< (arm64)"
	@$(ARM64_CC) -c -o $@.o $<
	@$(ARM64_CC:gcc=objcopy) -O binary $@.o $@
	@rm -f $@.o

# arm64's pure exit decoder, built for this host too, replaces the host's own in this test only.
$(BUILD)/tests/unit/test_exit_arm64: $(BUILD)/obj/tests/unit/test_exit_arm64.o \
		$(BUILD)/obj/hypercall-bridge/hv/arch/arm64/exit_decode.o $(LIBHV) $(LIBCOMMON)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LIBS) $(TSS2_LIBS)

# arm64's pure register mapping, likewise, for the ABI's arm64 table.
$(BUILD)/tests/unit/test_abi_arm64: $(BUILD)/obj/tests/unit/test_abi_arm64.o \
		$(BUILD)/obj/hypercall-bridge/hv/arch/arm64/call_map.o
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LIBS)

# The arm64 Linux guest's device tree and FDT writer, pure C, tested on this host too.
$(BUILD)/tests/unit/test_fdt: $(BUILD)/obj/tests/unit/test_fdt.o \
		$(BUILD)/obj/hypercall-bridge/hv/arch/arm64/dtb.o \
		$(BUILD)/obj/hypercall-bridge/hv/arch/arm64/fdt.o
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS)

$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(LIBTEST) $(LIBSERVER_T) $(LIBAGENT) $(LIBHV) $(LIBCRYPTO) $(LIBCOMMON)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(QR_LIBS) $(LIBS) $(TSS2_LIBS)

$(BUILD)/tests/integration/%: $(BUILD)/obj/tests/integration/%.o $(LIBTEST) $(LIBHV) $(LIBCRYPTO) $(LIBCOMMON)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(TSS2_LIBS)

# The audit bench hashes and signs its imported chain with the server's own audit code.
$(BUILD)/bench/audit_bench: $(BUILD)/obj/bench/audit_bench.o $(LIBTEST) $(LIBSERVER) $(LIBHV) $(LIBCRYPTO) $(LIBCOMMON)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(QR_LIBS) $(LIBS) $(shell pkg-config --libs libssl 2>/dev/null) $(TSS2_LIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIBTEST) $(LIBHV) $(LIBCRYPTO) $(LIBCOMMON)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(shell pkg-config --libs libssl 2>/dev/null) $(TSS2_LIBS)

# Starts the server, then says where the console is and, until the first console admin exists,
# prints the one-time setup link (the server wrote it to $(DATA)/admin-setup). Ctrl-C stops it.
run:
	@scripts/deps.sh --run
	@$(MAKE) --no-print-directory $(SERVER_BIN)
	@mkdir -p $(DATA) && chmod 700 $(DATA) && rm -f $(DATA)/server.url
	@$(SERVER_BIN) --data $(DATA) --listen $(LISTEN) & pid=$$!; \
	trap 'kill -TERM $$pid 2>/dev/null' INT TERM; \
	for i in $$(seq 300); do [ -s $(DATA)/server.url ] || ! kill -0 $$pid 2>/dev/null && break; sleep 0.1; done; \
	if [ -s $(DATA)/server.url ]; then \
	  url=$$(cat $(DATA)/server.url); echo; \
	  echo "== Cleave console: $$url/  (self-signed certificate $(DATA)/tls/cert.pem: accept it once)"; \
	  if [ -s $(DATA)/admin-setup ]; then \
	    echo "== First start: open this one-time link to create the first admin account"; \
	    echo "   (it is also in $(DATA)/admin-setup until it is used):"; \
	    echo "   $$(sed -n 2p $(DATA)/admin-setup)"; \
	  else \
	    echo "== Sign in there with your console account. Scripts: the API token in $(DATA)/admin-token"; \
	  fi; \
	  echo "== No phone at hand? In another terminal, \`make phone\` runs one here (cleave-hv + agent)"; \
	  echo "== Ctrl-C stops the server; data stays in $(DATA)/"; echo; \
	fi; \
	wait $$pid; st=$$?; [ $$st -gt 128 ] && { wait $$pid; st=$$?; }; exit $$st

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory arm64-kernel || echo "arm64 kernels unavailable: test_arm64_kvm will skip"
	@$(MAKE) --no-print-directory arm64-hv-full || echo "arm64 cleave-hv unavailable: test_arm64_kvm's hv and suites cases will skip"
	@$(MAKE) --no-print-directory arm64-linux || echo "arm64 Linux guest unavailable: test_arm64_kvm's linux cases will skip"
	@$(MAKE) --no-print-directory arm64-tpm || echo "arm64 cleave-hv --tpm unavailable: test_arm64_tpm will skip"
	@$(MAKE) --no-print-directory test-run

test-run:
	@BUILD=$(BUILD) tests/run.sh

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 all
	@mkdir -p build-asan/arm64 && cp -n build/arm64/vmlinuz-* build-asan/arm64/ 2>/dev/null || true
	@$(MAKE) --no-print-directory BUILD=build-asan arm64-kernel || echo "arm64 kernels unavailable: test_arm64_kvm will skip"
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 test-run

# The whole selective wipe on this machine: server, cleave-hv and agent, then a wipe by curl.
# A phone on this machine for `make run`: cleave-hv plus the agent, enrolled with the command
# the employee page shows (scripts/phone.sh asks for it). Ctrl-C stops it.
phone: deps
	@$(MAKE) --no-print-directory all
	@scripts/phone.sh $(BUILD)

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh $(BUILD)

bench: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) bench/run.sh

# The TPM's cost (issue 13 §4): the file keystore against swtpm, side by side (bench/tpm_bench.c;
# BENCH_TPM_ROUNDS rounds, default 20). Not part of `make bench` or `make test`.
bench-tpm: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p $(BUILD)/bench-tpm
	@CLEAVE_BIN=$(abspath $(BUILD))/bin CLEAVE_TEST_OUT=$(abspath $(BUILD))/bench-tpm \
		$(BUILD)/bench/tpm_bench $(or $(BENCH_TPM_ROUNDS),20)

# The arm64 exit-cost bench in the emulated machine (`make bench-arm64`), owned by bench/ (after
# the arm64-hv-full rules, whose variables it uses).
-include bench/arm64.mk

# libFuzzer targets for every parser of outside input; `make fuzz` runs each for FUZZ_SECONDS
# from its seed corpus in tests/fuzz/corpus/<target>/ (new findings go to build/fuzz/).
FUZZ_SECONDS ?= 20
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_LIBSRC := $(COMMON_SRC) $(CRYPTO_SRC) hypercall-bridge/lib/bridge_msg.c \
	hypercall-bridge/hv/volume_hdr.c agent/proto.c agent/journal.c agent/kvfile.c agent/keystore.c
fuzz: deps
	@scripts/deps.sh --fuzz
	@mkdir -p build/fuzz
	@for f in $(FUZZ_SRC); do \
		n=$$(basename $$f .c); echo "  FUZZ    $$n ($(FUZZ_SECONDS) s)"; \
		clang -g -O1 -fsanitize=fuzzer,address,undefined $(CPPFLAGS:-MMD=) -Wno-unused-command-line-argument \
			$(PKG_CFLAGS) -o build/fuzz/$$n $$f $(FUZZ_LIBSRC) $(PKG_LIBS) -lpthread || exit 1; \
		mkdir -p build/fuzz/$$n-new; \
		TMPDIR=$(CURDIR)/build/fuzz build/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 \
			build/fuzz/$$n-new tests/fuzz/corpus/$$n 2>build/fuzz/$$n.log \
			|| { tail -30 build/fuzz/$$n.log; exit 1; }; \
		grep -E "^Done [0-9]+ runs" build/fuzz/$$n.log | sed "s/^/          /"; \
	done

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES) && echo "format-check: ok"

clean:
	rm -rf build build-asan

# Every object's dependency files, the cross-built arm64 ones too: a changed header rebuilds
# the arm64 cleave-hv as well.
-include $(shell find $(BUILD)/obj $(BUILD)/obj-hooks $(BUILD)/arm64/obj -name '*.d' 2>/dev/null)
