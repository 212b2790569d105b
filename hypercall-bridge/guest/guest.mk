# The corporate VM's freestanding 64-bit test guest, built into a flat binary that cleave-hv
# loads at GUEST_LOAD_ADDR (0x10000) and enters in long mode at its first byte. Only gcc, ld
# (through gcc) and objcopy; no libc, no red zone, no SSE (CR4.OSFXSR is off), no CET endbr.
GUEST_DIR    := hypercall-bridge/guest
GUEST_BIN    := $(BUILD)/guest/guest.bin
GUEST_ELF    := $(BUILD)/guest/guest.elf
GUEST_SRC    := $(wildcard $(GUEST_DIR)/*.c $(GUEST_DIR)/*.S)
GUEST_OBJ    := $(patsubst $(GUEST_DIR)/%,$(BUILD)/guest/obj/%.o,$(GUEST_SRC))
GUEST_CFLAGS := -std=c11 -O2 -g -ffreestanding -nostdlib -fno-pic -fno-pie -mno-red-zone \
	-mcmodel=small -mgeneral-regs-only -fno-stack-protector -fcf-protection=none \
	-fno-asynchronous-unwind-tables -fno-builtin -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Wvla -Ihypercall-bridge/include -MMD -MP

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

$(GUEST_ELF): $(GUEST_OBJ) $(GUEST_DIR)/guest.ld
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-T,$(GUEST_DIR)/guest.ld \
		-o $@ $(GUEST_OBJ)

$(GUEST_BIN): $(GUEST_ELF)
	@echo "  OBJCOPY $@"
	@objcopy -O binary $< $@

-include $(GUEST_OBJ:.o=.d)
