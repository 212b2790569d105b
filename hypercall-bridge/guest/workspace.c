/*
 * The corporate workspace: named text records on the VM's disk, reached only through the
 * hypercall block calls (cleave-hv encrypts every sector into the corporate volume).
 *
 * Disk layout (4 KiB sectors): sector 0 is the index, "CLVWS1" then WS_SLOTS entries of
 * {name[24] NUL-padded, u32 length, u32 reserved}; the text of entry i is in sector 1 + i.
 * A put writes the record before the index, and a del clears the index before the record, so
 * a crash between the two writes never lists a record whose text is missing.
 *
 * This code runs at CPL 0, where this host emulates every instruction: the index stays in
 * memory, scans are short, and the disk pages are filled in place (SHARED_PAGE is pointed at
 * whichever page is being moved, so nothing is copied).
 */
#include <stddef.h>
#include <stdint.h>

#include "cleave_abi.h"
#include "tty.h"
#include "guest_io.h"

#define SECTOR       4096u
#define WS_SLOTS     64u
#define WS_NAME_MAX  23u
#define WS_MAGIC     "CLVWS1"
#define WS_ENTRY_OFF 64u

struct ws_entry {
	char name[WS_NAME_MAX + 1];
	uint32_t len;
	uint32_t reserved;
};

_Static_assert(sizeof(struct ws_entry) == 32, "index entry is 32 bytes");
_Static_assert(WS_ENTRY_OFF + WS_SLOTS * sizeof(struct ws_entry) <= SECTOR, "index fits");

static uint8_t index_page[SECTOR] __attribute__((aligned(SECTOR)));
static uint8_t record_page[SECTOR] __attribute__((aligned(SECTOR)));
static int ws_ready; /* 1 once the index was read (or found empty) */

static struct ws_entry *
entry(unsigned i)
{
	return (struct ws_entry *)(void *)(index_page + WS_ENTRY_OFF) + i;
}

static void
zero(uint8_t *p, size_t n)
{
	uint64_t *q = (uint64_t *)(void *)p;

	for (size_t i = 0; i < n / 8; i++)
		q[i] = 0;
}

/* Moves page to or from one disk sector; prints why on failure. */
static int
disk_io(uint32_t fid, uint64_t sector, uint8_t *page)
{
	uint64_t res[3];
	int64_t r = hv_call(CLV_FN_SHARED_PAGE, (uint64_t)(uintptr_t)page, 0, 0, 0, res);

	if (r == CLV_OK)
		r = hv_call(fid, sector, 1, 0, 0, res);
	if (r != CLV_OK) {
		put_str("disk error ");
		put_str(r == CLV_E_INVALID_STATE ? "(corporate half locked) " : "");
		put_dec((uint64_t)-r);
		put_char('\n');
		return -1;
	}
	return 0;
}

void
ws_init(void)
{
	uint64_t res[3];
	unsigned n = 0;

	if (hv_call(CLV_FN_STATUS, 0, 0, 0, 0, res) != CLV_OK || res[2] < 1 + WS_SLOTS) {
		put_str("workspace: no usable disk\n");
		return;
	}
	if (disk_io(CLV_FN_BLOCK_READ, 0, index_page) != 0)
		return;
	if (!mem_eq(index_page, WS_MAGIC, sizeof(WS_MAGIC) - 1)) {
		zero(index_page, SECTOR); /* a fresh (or freshly wiped) disk */
		for (unsigned i = 0; i < sizeof(WS_MAGIC) - 1; i++)
			index_page[i] = (uint8_t)WS_MAGIC[i];
	}
	for (unsigned i = 0; i < WS_SLOTS; i++)
		n += entry(i)->name[0] != '\0';
	ws_ready = 1;
	put_str("workspace: ");
	put_dec(n);
	put_str(" records\n");
}

/* Index of the record called name, or -1. */
static int
find(const char *name)
{
	for (unsigned i = 0; i < WS_SLOTS; i++)
		if (entry(i)->name[0] != '\0' && str_eq(entry(i)->name, name))
			return (int)i;
	return -1;
}

/* Splits "NAME REST" in place; returns REST (may be "") or NULL when NAME is not valid. */
static char *
take_name(char *arg)
{
	size_t n = 0;

	while (arg[n] != '\0' && arg[n] != ' ') {
		char c = arg[n];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return NULL;
		n++;
	}
	if (n == 0 || n > WS_NAME_MAX)
		return NULL;
	if (arg[n] == ' ')
		arg[n++] = '\0';
	return &arg[n];
}

static int
ready(void)
{
	if (!ws_ready)
		put_str("workspace unavailable\n");
	return ws_ready;
}

void
cmd_put(char *arg)
{
	char *text = take_name(arg);
	int i;
	uint32_t len = 0;

	if (text == NULL || *text == '\0') {
		put_str("usage: put NAME TEXT (NAME: 1-23 of A-Z a-z 0-9 . _ -)\n");
		return;
	}
	if (!ready())
		return;
	i = find(arg);
	for (unsigned s = 0; i < 0 && s < WS_SLOTS; s++)
		if (entry(s)->name[0] == '\0')
			i = (int)s;
	if (i < 0) {
		put_str("workspace full (64 records)\n");
		return;
	}
	zero(record_page, SECTOR);
	while (text[len] != '\0' && len < SECTOR) {
		record_page[len] = (uint8_t)text[len];
		len++;
	}
	if (disk_io(CLV_FN_BLOCK_WRITE, 1u + (unsigned)i, record_page) != 0)
		return;
	zero((uint8_t *)entry((unsigned)i), sizeof(struct ws_entry));
	for (unsigned k = 0; arg[k] != '\0'; k++)
		entry((unsigned)i)->name[k] = arg[k];
	entry((unsigned)i)->len = len;
	if (disk_io(CLV_FN_BLOCK_WRITE, 0, index_page) != 0) {
		entry((unsigned)i)->name[0] = '\0'; /* keep memory in step with the disk */
		return;
	}
	put_str("saved ");
	put_str(arg);
	put_char('\n');
}

/* The record named by arg (printing usage or "no record" when there is none), or -1. */
static int
named(char *arg, const char *usage)
{
	int i;

	if (take_name(arg) == NULL) {
		put_str(usage);
		return -1;
	}
	if (!ready())
		return -1;
	i = find(arg);
	if (i < 0) {
		put_str("no record ");
		put_str(arg);
		put_char('\n');
	}
	return i;
}

void
cmd_get(char *arg)
{
	int i = named(arg, "usage: get NAME\n");

	if (i < 0)
		return;
	if (disk_io(CLV_FN_BLOCK_READ, 1u + (unsigned)i, record_page) != 0)
		return;
	for (uint32_t k = 0; k < entry((unsigned)i)->len && k < SECTOR; k++)
		put_char((char)record_page[k]);
	put_char('\n');
}

void
cmd_list(char *arg)
{
	unsigned n = 0;

	(void)arg;
	if (!ready())
		return;
	for (unsigned i = 0; i < WS_SLOTS; i++) {
		if (entry(i)->name[0] == '\0')
			continue;
		put_str(entry(i)->name);
		put_str(" (");
		put_dec(entry(i)->len);
		put_str(" bytes)\n");
		n++;
	}
	put_dec(n);
	put_str(" records\n");
}

void
cmd_del(char *arg)
{
	int i = named(arg, "usage: del NAME\n");
	char first;

	if (i < 0)
		return;
	first = entry((unsigned)i)->name[0];
	entry((unsigned)i)->name[0] = '\0'; /* free from here on */
	if (disk_io(CLV_FN_BLOCK_WRITE, 0, index_page) != 0) {
		entry((unsigned)i)->name[0] = first; /* still on the disk */
		return;
	}
	zero(record_page, SECTOR); /* the text's sector too, not only its index entry */
	if (disk_io(CLV_FN_BLOCK_WRITE, 1u + (unsigned)i, record_page) != 0)
		return;
	zero((uint8_t *)entry((unsigned)i), sizeof(struct ws_entry));
	put_str("deleted ");
	put_str(arg);
	put_char('\n');
}
