/*
 * The Cleave hypercall ABI, version 1.0: one header shared by the corporate guest, cleave-hv and
 * the bridge client library. Function IDs follow ARM SMCCC's layout (so the same numbers could
 * serve an HVC-based phone port); error numbers are frozen and never renumbered; wire structs
 * use fixed-width fields only, no pointers and no C enums, and reserved fields must be zero.
 * hypercall-bridge/ABI.md is the normative description. This header is freestanding: it needs
 * only <stdint.h>.
 */
#ifndef CLEAVE_ABI_H
#define CLEAVE_ABI_H

#include <stdint.h>

#define CLV_ABI_MAJOR   1
#define CLV_ABI_MINOR   1
#define CLV_ABI_VERSION ((uint32_t)(CLV_ABI_MAJOR << 16 | CLV_ABI_MINOR))

/*
 * Function ID: bit 31 fast call (always 1), bit 30 64-bit convention (always 1), bits 29:24
 * owner (0x32: "vendor hypervisor service", our value), bits 23:16 service, bits 15:0 number.
 */
#define CLV_FID(service, number)                                                                   \
	((uint32_t)(0xC0000000u | (0x32u << 24) | ((uint32_t)(service) << 16) | (uint32_t)(number)))

#define CLV_SVC_CORE  0x00 /* both sides: discovery */
#define CLV_SVC_HOST  0x01 /* host (agent) side: management */
#define CLV_SVC_GUEST 0x02 /* guest side: block, heartbeat */

/* Core, callable by anyone. */
#define CLV_FN_VERSION  CLV_FID(CLV_SVC_CORE, 0x0000) /* -> major << 16 | minor */
#define CLV_FN_FEATURES CLV_FID(CLV_SVC_CORE, 0x0001) /* arg0 fid -> 0 or CLV_E_NOT_SUPPORTED */
#define CLV_FN_STATUS   CLV_FID(CLV_SVC_CORE, 0x0002) /* -> struct clv_status */

/* Host side: only the configured agent uid over the bridge socket. */
#define CLV_FN_ATTEST      CLV_FID(CLV_SVC_HOST, 0x0000) /* nonce -> signed attestation */
#define CLV_FN_PIN_OWNER   CLV_FID(CLV_SVC_HOST, 0x0001) /* server key + device id, once */
#define CLV_FN_LOCK        CLV_FID(CLV_SVC_HOST, 0x0002) /* ticket -> receipt */
#define CLV_FN_UNLOCK      CLV_FID(CLV_SVC_HOST, 0x0003) /* ticket -> receipt */
#define CLV_FN_REKEY       CLV_FID(CLV_SVC_HOST, 0x0004) /* ticket -> receipt */
#define CLV_FN_WIPE        CLV_FID(CLV_SVC_HOST, 0x0005) /* ticket -> receipt */
#define CLV_FN_RENEW_LEASE CLV_FID(CLV_SVC_HOST, 0x0006) /* lease ticket */
#define CLV_FN_SET_POLICY  CLV_FID(CLV_SVC_HOST, 0x0007) /* policy ticket */
#define CLV_FN_RECEIPTS    CLV_FID(CLV_SVC_HOST, 0x0008) /* pending receipts */
#define CLV_FN_RECEIPT_ACK CLV_FID(CLV_SVC_HOST, 0x0009) /* receipt seq the server has */
/* 1.1: VM counters (ABI.md §2): exits and guest calls by transport. */
#define CLV_FN_COUNTERS CLV_FID(CLV_SVC_HOST, 0x000a) /* -> struct clv_counters */
/* 1.1: with --tpm only (TPM.md §3); NOT_SUPPORTED with the file keystore. */
#define CLV_FN_TPM_IDENTITY CLV_FID(CLV_SVC_HOST, 0x000B) /* -> EK cert, EK/AK public, AK SPKI */
#define CLV_FN_TPM_ACTIVATE CLV_FID(CLV_SVC_HOST, 0x000C) /* credential -> attestation + quote */

/* Guest side: only the corporate VM, from guest kernel mode (CPL 0). */
#define CLV_FN_BLOCK_READ  CLV_FID(CLV_SVC_GUEST, 0x0000) /* sector, count -> shared page */
#define CLV_FN_BLOCK_WRITE CLV_FID(CLV_SVC_GUEST, 0x0001) /* shared page -> sector, count */
#define CLV_FN_HEARTBEAT   CLV_FID(CLV_SVC_GUEST, 0x0002)
#define CLV_FN_SHARED_PAGE CLV_FID(CLV_SVC_GUEST, 0x0003) /* register the 4 KiB shared page GPA */

/* Frozen error numbers (returned in the status register / reply). Never renumber. */
#define CLV_OK                  0
#define CLV_E_NOT_SUPPORTED     (-1)
#define CLV_E_NOT_REQUIRED      (-2)
#define CLV_E_INVALID_PARAMETER (-3)
#define CLV_E_DENIED            (-4)
#define CLV_E_BUSY              (-5)
#define CLV_E_INVALID_STATE     (-6)
#define CLV_E_FAULT             (-7)
#define CLV_E_BAD_TICKET        (-8) /* signature, binding, counter or expiry wrong */
#define CLV_E_IO                (-9)

/*
 * x86 guest transport: a 4-byte `out` to CLV_DOORBELL_PORT is the doorbell (the port number is
 * in DX, as `out` to a port above 0xff requires). RAX function ID, RBX/RCX/RSI/RDI arguments;
 * on return RAX holds the status (>= 0 result or a CLV_E_*), RBX/RCX/RDX results. Bulk data
 * goes through one 4 KiB shared page registered with CLV_FN_SHARED_PAGE.
 */
#define CLV_DOORBELL_PORT 0x0510
#define CLV_SERIAL_PORT   0x03f8 /* 16550 COM1: the corporate half's console */
#define CLV_SECTOR_SIZE   4096

/* Reply of CLV_FN_STATUS (also in the host STATUS reply). 64 bytes. */
struct clv_status {
	uint32_t abi_version;
	uint32_t
		state; /* HV_STATE_* of common/wire.h: 1 active, 2 locked, 3 wipe pending, 4 erased */
	uint64_t key_epoch;
	uint64_t ticket_counter;
	uint64_t receipt_seq;
	uint64_t lease_until;    /* unix seconds, 0: none */
	uint8_t measurement[16]; /* first 16 bytes of the SHA-256 measurement */
	uint64_t flags;          /* CLV_STATUS_* (1.1; reserved zero in 1.0) */
};
#define CLV_STATUS_TPM         1u /* the identity and keys are in a TPM (--tpm) */
#define CLV_STATUS_STALE_STATE 2u /* the trust state is an older copy: tickets are refused */
#define CLV_STATUS_FLAGS_KNOWN (CLV_STATUS_TPM | CLV_STATUS_STALE_STATE)
_Static_assert(sizeof(struct clv_status) == 64, "clv_status is 64 bytes on the wire");

/*
 * Reply of CLV_FN_COUNTERS, 64 bytes: since cleave-hv started, over every corporate VM it ran.
 * Guest calls by the transport that carried them: x86's `out` to the doorbell port, arm64's
 * store to the doorbell page or HVC (ABI.md §5, §6).
 */
struct clv_counters {
	uint64_t exits;       /* KVM exits the VMM handled */
	uint64_t calls_port;  /* guest calls by port I/O (x86) */
	uint64_t calls_mmio;  /* guest calls by a store to the doorbell page (arm64) */
	uint64_t calls_hvc;   /* guest calls by HVC (arm64, kernel 6.4+) */
	uint64_t reserved[4]; /* zero; a reader ignores them */
};
_Static_assert(sizeof(struct clv_counters) == 64, "clv_counters is 64 bytes on the wire");

/*
 * Host-side transport: one AF_UNIX SOCK_SEQPACKET message per request and per reply, a 32-byte
 * header followed by a payload whose size is fixed per function (see ABI.md). All integers are
 * little-endian.
 */
#define CLV_MSG_MAGIC        0x42564c43u /* "CLVB" read as little-endian bytes */
#define CLV_MSG_REQUEST      0
#define CLV_MSG_REPLY        1
#define CLV_MSG_HDR_LEN      32
#define CLV_MSG_PAYLOAD_MAX  (4096 - CLV_MSG_HDR_LEN)
#define CLV_RECEIPTS_PER_MSG 12

struct clv_msg_hdr {
	uint32_t magic;
	uint16_t abi_major; /* CLV_ABI_MAJOR of the sender */
	uint16_t kind;      /* CLV_MSG_REQUEST or CLV_MSG_REPLY */
	uint32_t fid;
	int32_t status; /* reply: CLV_OK or CLV_E_*; request: 0 */
	uint64_t request_id;
	uint32_t payload_len;
	uint32_t reserved; /* must be zero */
};
_Static_assert(sizeof(struct clv_msg_hdr) == CLV_MSG_HDR_LEN, "message header is 32 bytes");

#endif
