/*
 * The host's end of the bridge link into the emulated arm64 machine (relaylink.h): a Unix
 * SOCK_SEQPACKET socket that looks to cleave-agent and cleave-hvctl like cleave-hv's own bridge
 * socket, relayed in frames over QEMU's virtio-serial chardev (a Unix stream socket QEMU
 * listens on) to tests/arm64/enroll_relay.c, which holds the real connections to cleave-hv.
 * Runs as a child process of the test (tracked: a failing case never leaves it behind).
 * Whoever can connect to the socket reaches cleave-hv as the machine's relay does (root, so the
 * agent's privileges): the socket is created 0600 in the caller's directory.
 */
#ifndef CLEAVE_BRELAY_H
#define CLEAVE_BRELAY_H

#include <limits.h>
#include <sys/types.h>

struct brelay {
	char sock[PATH_MAX]; /* the bridge socket the agent is given (--hv-socket) */
	char link[PATH_MAX]; /* QEMU's chardev socket (server=on) */
	pid_t pid;
};

/*
 * Listens on r->sock, connects to r->link (waiting for QEMU to create it, at most 20 s) and
 * starts relaying in a child process. 0 or -1 (with the reason printed).
 */
int brelay_start(struct brelay *r);
/*
 * Sends the machine's relay its stop frame and ends the child (SIGTERM). The child's exit code:
 * 0 when it stopped as asked, 2 when the link had broken or ended before, -1 when it had to be
 * killed.
 */
int brelay_stop(struct brelay *r);

#endif
