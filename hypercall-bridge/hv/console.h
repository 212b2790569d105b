/*
 * The corporate half's screen: cleave-hv forwards the guest's serial console to one attached
 * client (`cleave-hvctl console`) over a stream socket and feeds the client's keystrokes back
 * to the guest. Console output lives only in memory: a small scrollback, locked and excluded
 * from core dumps, so that a client attaching later sees the current screen; it is erased when
 * the corporate half is locked or wiped. It never reaches a file or the log. Every function
 * but console_open ignores a NULL console.
 */
#ifndef CLEAVE_HV_CONSOLE_H
#define CLEAVE_HV_CONSOLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CONSOLE_SCROLLBACK 4096 /* bytes of recent output replayed to a client on attach */

struct console;

/* Delivers a client's keystrokes to the guest; returns the bytes taken. Console thread. */
typedef size_t (*console_input_fn)(void *ctx, const uint8_t *buf, size_t len);

/*
 * Listens on the AF_UNIX stream socket path (mode 0600; a stale socket file is replaced) and
 * serves it on a thread of its own. Only peers whose uid (SO_PEERCRED) is allowed_uid may
 * attach; one client at a time (a second is told the console is busy and closed). input and
 * ctx are borrowed and must outlive the console. *out is owned by the caller (console_close).
 * 0 or -errno.
 */
int console_open(const char *path, uid_t allowed_uid, console_input_fn input, void *ctx,
		 struct console **out);
/* Guest output: appended to the scrollback and sent to the client. Never blocks; any thread. */
void console_output(struct console *c, const uint8_t *buf, size_t len);
/* Erases the scrollback and output not yet sent to the client (lock, wipe). Any thread. */
void console_clear(struct console *c);
/*
 * A one-line message from cleave-hv to the attached client only ("[cleave-hv] ..."; msg
 * borrowed, at most 159 bytes sent), on a line of its own; not kept. Any thread.
 */
void console_notice(struct console *c, const char *msg);
/*
 * A one-line status (msg borrowed, copied, at most 159 bytes) sent to every client right after
 * the scrollback replay, e.g. that no corporate VM runs on this machine; NULL or "" removes it.
 * Any thread.
 */
void console_set_status(struct console *c, const char *msg);
/*
 * Stops the thread (the client gets a bounded 200 ms to take what is queued), disconnects it,
 * removes the socket file (only if it is still the one we created) and erases every buffer.
 * No other console call may run concurrently or afterwards: stop the VM first.
 */
void console_close(struct console *c);

#endif
