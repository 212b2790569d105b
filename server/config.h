/*
 * cleave-server's settings: struct config, the command line and the key = value config file
 * (set_option is the one place each setting is checked), the defaults and the help text.
 * main.c uses the result; nothing here touches the data directory or the network.
 */
#ifndef CLEAVE_SERVER_CONFIG_H
#define CLEAVE_SERVER_CONFIG_H

#include <limits.h>
#include <stdint.h>

#include "api/oidc.h"
#include "http/connlimit.h"
#include "log.h"
#include "siem/siem.h"

#define CLEAVE_VERSION "0.1.0"

struct config {
	const char *data;
	char host[64];
	unsigned port;
	char tls_cert[PATH_MAX];
	char tls_key[PATH_MAX];
	char public_url[256];
	unsigned threads;
	unsigned max_connections;
	unsigned pool_kib;
	unsigned max_wait_s;
	unsigned command_ttl_h;
	unsigned lease_s;
	unsigned refusal_limit;
	unsigned bulk_batch;
	unsigned webhook_workers, webhook_timeout_s, webhook_allow_http, webhook_time_divisor;
	char webhook_ca[PATH_MAX];
	unsigned session_idle_s, session_max_s; /* console sessions; 0: the service's defaults */
	unsigned require_totp;
	unsigned two_person, approval_bulk_size, approval_expiry_s; /* the two-person rule */
	/* TPM endorsement (hypercall-bridge/TPM.md): the manufacturer CAs, and whether required. */
	char tpm_ca_file[PATH_MAX];
	unsigned require_hw_identity;
	unsigned ckpt_entries;
	unsigned ckpt_s;
	char ckpt_file[PATH_MAX]; /* "" : DATA/audit-checkpoints.log */
	char web_root[PATH_MAX];  /* "" : web/ of the source tree the binary was built in */
	char database[1024];      /* "" : SQLite in DIR; else a postgresql:// URL */
	char keys_dir[PATH_MAX];  /* "" : DIR/keys; else the deployment's shared copy */
	int accept_new_keys;      /* record this server's keys as the deployment's */
	unsigned handshake_s;
	char tls_priorities[1024];
	struct cl_policy admit;   /* per_address, reserve, trusted networks */
	struct cl_policy proxies; /* whose X-Forwarded-For names the client (none by default) */
	struct siem_config siem;  /* the audit stream to a SIEM (siem_* settings; off by default) */
	struct api_oidc_config oidc; /* single sign-on (api/oidc.h); off without oidc_issuer */
	enum log_level log_level;
	int check_only;
	int public_url_set;
	int listen_fd; /* bound before the data directory is touched; -1 once handed on */
	uint16_t bound_port;
};

/*
 * Fills c with the defaults, then the config file (--config) and the command line over it.
 * Exits the process for --help, --version and --list-routes. 0, or -1 after a message on
 * stderr.
 */
int config_from_args(int argc, char **argv, struct config *c);

#endif
