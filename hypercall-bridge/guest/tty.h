/*
 * The guest's console output helpers (guest.c) and the workspace commands (workspace.c), shared
 * by the two files of the guest. Freestanding: no libc.
 */
#ifndef CLEAVE_GUEST_TTY_H
#define CLEAVE_GUEST_TTY_H

#include <stddef.h>
#include <stdint.h>

void put_char(char c);
void put_str(const char *s);
void put_dec(uint64_t v);
int str_eq(const char *a, const char *b);
int mem_eq(const void *a, const void *b, size_t n);

/* The corporate workspace (workspace.c): ws_init reads the index from the disk at boot. */
void ws_init(void);
void cmd_put(char *arg);
void cmd_get(char *arg);
void cmd_list(char *arg);
void cmd_del(char *arg);

#endif
