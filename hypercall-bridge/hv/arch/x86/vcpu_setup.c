/*
 * x86's boot state for the corporate VM (arch.h): the GDT with a TSS whose I/O bitmap opens the
 * doorbell to CPL 3, page tables identity-mapping the first 1 GiB, and a vCPU in 64-bit long mode
 * at the image's first byte. Memory map: hypercall-bridge/VMM.md. Moved unchanged from vmm.c.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "../../vmm_priv.h"

/* Guest physical layout of the boot structures (hypercall-bridge/VMM.md). */
#define GPA_GDT       0x1000u
#define GPA_PML4      0x2000u
#define GPA_PDPT      0x3000u
#define GPA_PD        0x4000u
#define GPA_TSS       0x5000u
#define TSS_RSP0      0x1f0000u /* kernel stack for events taken at CPL 3 (unused under kvm_pvm) */
#define TSS_IOMAP     0x68u     /* I/O bitmap offset inside the TSS */
#define TSS_IOMAP_LEN 0x100u    /* bitmap bytes: ports 0..0x7ff; the rest fault at CPL 3 */
#define TSS_LIMIT     (TSS_IOMAP + TSS_IOMAP_LEN) /* includes the 0xff terminator byte */

#define PTE_P    0x1ull
#define PTE_RW   0x2ull
#define PTE_US   0x4ull
#define PTE_PS   0x80ull
#define CR0_PE   0x1ull
#define CR0_ET   0x10ull
#define CR0_PG   0x80000000ull
#define CR4_PAE  0x20ull
#define EFER_SCE 0x1ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull

#define SEL_CODE 0x08
#define SEL_DATA 0x10
#define SEL_TSS  0x28
_Static_assert(CLV_DOORBELL_PORT % 8 == 0, "the TSS bitmap opens 4 ports from a byte boundary");
#define GDT_ENTRIES 7 /* null, kernel code/data, user data/code (sysret order), TSS (2) */

/*
 * GDT (null, 64-bit code and data at DPL 0 and 3, TSS) and page tables identity-mapping
 * 0..1 GiB with 2 MiB pages.
 */
int
arch_vm_setup(struct vmm *vm)
{
	uint64_t *gdt = (uint64_t *)(vm->ram + GPA_GDT);
	uint64_t *pml4 = (uint64_t *)(vm->ram + GPA_PML4);
	uint64_t *pdpt = (uint64_t *)(vm->ram + GPA_PDPT);
	uint64_t *pd = (uint64_t *)(vm->ram + GPA_PD);

	gdt[0] = 0;
	gdt[SEL_CODE / 8] = 0x00af9b000000ffffull; /* P, DPL 0, code exec/read accessed, L, G */
	gdt[SEL_DATA / 8] = 0x00cf93000000ffffull; /* P, DPL 0, data read/write accessed, D/B, G */
	gdt[3] = 0x00cff3000000ffffull;            /* the same data segment at DPL 3 */
	gdt[4] = 0x00affb000000ffffull;            /* the same code segment at DPL 3 */
	/*
	 * 64-bit TSS at GPA_TSS (base under 16 MiB): RSP0 for interrupts taken at CPL 3, and an
	 * I/O permission bitmap that lets CPL 3 reach the doorbell and nothing else.
	 */
	gdt[5] = 0x0000890000000000ull | TSS_LIMIT | ((uint64_t)GPA_TSS << 16);
	gdt[6] = 0;
	memcpy(vm->ram + GPA_TSS + 4, &(uint64_t){TSS_RSP0}, 8);
	memcpy(vm->ram + GPA_TSS + 0x66, &(uint16_t){TSS_IOMAP}, 2);
	memset(vm->ram + GPA_TSS + TSS_IOMAP, 0xff, TSS_IOMAP_LEN + 1);
	vm->ram[GPA_TSS + TSS_IOMAP + CLV_DOORBELL_PORT / 8] &= (uint8_t)~0x0f;
	/* User-accessible: the test guest runs its timing loop at CPL 3 in its own image. */
	pml4[0] = GPA_PDPT | PTE_P | PTE_RW | PTE_US;
	pdpt[0] = GPA_PD | PTE_P | PTE_RW | PTE_US;
	for (uint64_t i = 0; i < 512; i++)
		pd[i] = (i << 21) | PTE_P | PTE_RW | PTE_US | PTE_PS;
	return 0;
}

static void
seg_flat(struct kvm_segment *s, uint16_t sel, uint8_t type, int code)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = 0;
	s->s = 1;
	s->g = 1;
	s->l = code ? 1 : 0;
	s->db = code ? 0 : 1;
}

/* Puts the vCPU in 64-bit long mode at the image's first byte (reference section 4.1). */
static int
x86_long_mode(struct vmm *vm)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int rc;

	rc = vmm_kvm_ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	if (rc < 0)
		return rc;
	seg_flat(&sregs.cs, SEL_CODE, 0xb, 1);
	seg_flat(&sregs.ds, SEL_DATA, 0x3, 0);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.base = GPA_TSS;
	sregs.tr.limit = TSS_LIMIT;
	sregs.tr.selector = SEL_TSS;
	sregs.tr.type = 0xb; /* busy 64-bit TSS */
	sregs.tr.present = 1;
	sregs.gdt.base = GPA_GDT;
	sregs.gdt.limit = GDT_ENTRIES * 8 - 1;
	sregs.cr3 = GPA_PML4;
	sregs.cr4 = CR4_PAE;
	sregs.cr0 = CR0_PE | CR0_ET | CR0_PG;
	sregs.efer = EFER_LME | EFER_LMA | EFER_SCE;
	rc = vmm_kvm_ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
	if (rc < 0)
		return rc;
	memset(&regs, 0, sizeof(regs));
	regs.rip = VMM_GUEST_LOAD;
	regs.rsp = VMM_STACK_TOP;
	regs.rflags = 0x2;
	return vmm_kvm_ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs, "KVM_SET_REGS");
}

int
arch_vm_type(int kvm_fd)
{
	(void)kvm_fd;
	return 0;
}

uint64_t
arch_ram_base(void)
{
	return 0;
}

int
arch_vcpu_setup(struct vmm *vm)
{
	int sz = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);

	/* Saves two ioctls per hypercall (several microseconds each on this host). */
	vm->arch.sync_regs = sz > 0 && (sz & KVM_SYNC_X86_REGS) != 0;
	return x86_long_mode(vm);
}

void
arch_run_prepare(struct vmm *vm)
{
	vm->run->kvm_valid_regs = vm->arch.sync_regs ? KVM_SYNC_X86_REGS : 0;
}

const char *
arch_config_tag(void)
{
	/* Empty: x86 measurements (and the devices enrolled with them) predate the arm64 port. */
	return "";
}

/* x86 boots only the freestanding guest: a bzImage loader and an irqchip are not written. */
int
arch_linux_supported(void)
{
	return 0;
}

int
arch_linux_load(struct vmm *vm, const struct vmm_config *cfg)
{
	(void)vm;
	(void)cfg;
	return -EOPNOTSUPP;
}

int
arch_irq_line(struct vmm *vm, unsigned line, int level)
{
	(void)vm;
	(void)line;
	(void)level;
	return -ENOSYS; /* no irqchip */
}
