/*
 * The one entry point for every hypercall, from the guest's doorbell and from the host bridge
 * socket alike. It decides who may call what (a fixed privilege mask per caller class), answers
 * discovery (VERSION, FEATURES) itself, and hands permitted calls to a handler table that
 * cleave-hv fills. It never touches KVM, files or keys.
 */
#ifndef CLEAVE_DISPATCH_H
#define CLEAVE_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "cleave_abi.h"

/* Who is calling; fixed by the transport, never by the caller's own claim. */
enum dispatch_caller {
	CALLER_AGENT = 0,        /* host bridge socket, peer uid == the configured agent uid */
	CALLER_HOST_OTHER = 1,   /* host bridge socket, any other uid */
	CALLER_GUEST_KERNEL = 2, /* guest doorbell at CPL 0 */
	CALLER_GUEST_USER = 3,   /* guest doorbell at CPL 3 */
};

struct dispatch_call {
	enum dispatch_caller caller;
	uint32_t fid;
	uint64_t args[4];  /* guest registers RBX, RCX, RSI, RDI; zero for host calls */
	const uint8_t *in; /* host request payload (borrowed), NULL for guest calls */
	size_t in_len;
	uint8_t *out; /* host reply payload buffer (borrowed) */
	size_t out_cap;
	size_t out_len;      /* set by the handler */
	uint64_t results[3]; /* guest result registers RBX, RCX, RDX */
};

/* A handler returns >= 0 (result) or a CLV_E_* code. ctx is the dispatcher's. */
typedef int64_t (*dispatch_fn)(void *ctx, struct dispatch_call *c);

struct dispatch {
	void *ctx;
	dispatch_fn handler[16][3]; /* [number][service]; NULL: not implemented */
};

void dispatch_init(struct dispatch *d, void *ctx);
/* Registers fn for fid; returns 0, or -EINVAL for a fid outside the ABI. */
int dispatch_register(struct dispatch *d, uint32_t fid, dispatch_fn fn);
/* Whether caller may call fid at all: CLV_OK, CLV_E_DENIED or CLV_E_NOT_SUPPORTED. */
int dispatch_allowed(enum dispatch_caller caller, uint32_t fid);
/* Runs one call: privilege check, discovery, then the handler. Returns its status. */
int64_t dispatch_call(struct dispatch *d, struct dispatch_call *c);

#endif
