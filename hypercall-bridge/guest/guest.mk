# The corporate VM's freestanding 64-bit guest, built into a flat binary that cleave-hv loads at
# RAM + 0x10000 and enters at its first byte. guest.c and workspace.c are shared; arch/x86/ and
# arch/arm64/ hold the start code, guest_io.h (console, doorbell) and the linker script. Only
# gcc, ld (through gcc) and objcopy; no libc.
GUEST_DIR    := hypercall-bridge/guest
GUEST_COMMON := $(wildcard $(GUEST_DIR)/*.c)
GUEST_WARN   := -std=c11 -O2 -g -ffreestanding -nostdlib -fno-pic -fno-pie -fno-stack-protector \
	-fno-asynchronous-unwind-tables -fno-builtin -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Wvla -Ihypercall-bridge/include -I$(GUEST_DIR) -MMD -MP

# x86: entered in long mode; no red zone, no SSE (CR4.OSFXSR is off), no CET endbr.
GUEST_BIN    := $(BUILD)/guest/guest.bin
GUEST_ELF    := $(BUILD)/guest/guest.elf
GUEST_SRC    := $(GUEST_COMMON) $(wildcard $(GUEST_DIR)/arch/x86/*.c $(GUEST_DIR)/arch/x86/*.S)
GUEST_OBJ    := $(patsubst $(GUEST_DIR)/%,$(BUILD)/guest/obj/%.o,$(GUEST_SRC))
GUEST_CFLAGS := $(GUEST_WARN) -I$(GUEST_DIR)/arch/x86 -mno-red-zone -mcmodel=small \
	-mgeneral-regs-only -fcf-protection=none

# The top Makefile expands `all`'s prerequisites before including this file, so add ours here.
all: $(GUEST_BIN)

$(BUILD)/guest/obj/%.c.o: $(GUEST_DIR)/%.c
	@mkdir -p $(@D)
	@echo "  CC      $< (guest)"
	@$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(BUILD)/guest/obj/%.S.o: $(GUEST_DIR)/%.S
	@mkdir -p $(@D)
	@echo "  AS      $< (guest)"
	@$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(GUEST_ELF): $(GUEST_OBJ) $(GUEST_DIR)/arch/x86/guest.ld
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-T,$(GUEST_DIR)/arch/x86/guest.ld \
		-o $@ $(GUEST_OBJ)

$(GUEST_BIN): $(GUEST_ELF)
	@echo "  OBJCOPY $@"
	@objcopy -O binary $< $@

-include $(GUEST_OBJ:.o=.d)

# arm64 (hypercall-bridge/ARM64.md): entered at EL1h with the MMU off, so every access is Device
# memory: strict alignment, and no FP/SIMD (CPACR_EL1 traps it at reset).
ARM64_GUEST_CC     ?= aarch64-linux-gnu-gcc
ARM64_GUEST_BIN    := $(BUILD)/arm64/guest/guest.bin
ARM64_GUEST_ELF    := $(BUILD)/arm64/guest/guest.elf
ARM64_GUEST_SRC    := $(GUEST_COMMON) $(wildcard $(GUEST_DIR)/arch/arm64/*.c $(GUEST_DIR)/arch/arm64/*.S)
ARM64_GUEST_OBJ    := $(patsubst $(GUEST_DIR)/%,$(BUILD)/arm64/guest/obj/%.o,$(ARM64_GUEST_SRC))
ARM64_GUEST_CFLAGS := $(GUEST_WARN) -I$(GUEST_DIR)/arch/arm64 -mgeneral-regs-only -mstrict-align \
	-mcmodel=small -mbranch-protection=none

.PHONY: arm64-guest
arm64-guest: $(ARM64_GUEST_BIN)
ifneq ($(shell command -v $(ARM64_GUEST_CC) 2>/dev/null),)
all: $(ARM64_GUEST_BIN)
endif

$(BUILD)/arm64/guest/obj/%.o: $(GUEST_DIR)/%
	@mkdir -p $(@D)
	@echo "  CC      $< (arm64 guest)"
	@$(ARM64_GUEST_CC) $(ARM64_GUEST_CFLAGS) -c $< -o $@

$(ARM64_GUEST_ELF): $(ARM64_GUEST_OBJ) $(GUEST_DIR)/arch/arm64/guest.ld
	@mkdir -p $(@D)
	@echo "  LD      $@ (arm64)"
	@$(ARM64_GUEST_CC) -nostdlib -static -no-pie -Wl,--build-id=none \
		-Wl,-T,$(GUEST_DIR)/arch/arm64/guest.ld -o $@ $(ARM64_GUEST_OBJ)

$(ARM64_GUEST_BIN): $(ARM64_GUEST_ELF)
	@echo "  OBJCOPY $@ (arm64)"
	@$(ARM64_GUEST_CC:gcc=objcopy) -O binary $< $@

-include $(ARM64_GUEST_OBJ:.o=.d)
