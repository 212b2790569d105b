/* Simulated agent behaviour for tests and benchmarks: see agentsim.h. */
#include "agentsim.h"

#include <stdio.h>
#include <string.h>

#include "b64.h"
#include "util.h"
#include "wire.h"

int
sim_run_command(struct device_sim *d, struct client *c, json_t *cmd, struct sim_applied *ap)
{
	const char *id = json_string_value(json_object_get(cmd, "id"));
	const char *type = json_string_value(json_object_get(cmd, "type"));
	const char *tb = json_string_value(json_object_get(cmd, "ticket"));
	uint8_t raw[TICKET_LEN + 8];
	struct ticket t;
	char path[128];
	struct resp r;

	if (id == NULL || type == NULL || tb == NULL)
		return -1;
	snprintf(path, sizeof(path), "/device/v1/commands/%s/ack", id);
	if (dev_req(d, c, "POST", path, "{}", 0, &r) != 0)
		return -1;
	resp_free(&r);
	if (strcmp(type, "policy") == 0) {
		if (b64_decode(raw, sizeof(raw), tb, strlen(tb)) != TICKET_LEN ||
		    ticket_decode(raw, TICKET_LEN, &t) != 0)
			return -1;
		str_copy(ap->name, sizeof(ap->name),
			 json_string_value(json_object_get(cmd, "reason")));
		ap->version = (int64_t)t.args[3];
	}
	snprintf(path, sizeof(path), "/device/v1/commands/%s/result", id);
	if (dev_req(d, c, "POST", path, "{\"status\":\"completed\"}", 0, &r) != 0)
		return -1;
	resp_free(&r);
	return 0;
}

void
sim_checkin_body(const struct sim_applied *ap, int wait_s, char *out, size_t cap)
{
	snprintf(out, cap,
		 "{\"wait\":%d,\"state\":{\"policy_name\":\"%s\",\"policy_version\":%lld}}", wait_s,
		 ap->name, (long long)ap->version);
}

int
sim_settle(struct device_sim *d, struct client *c, struct sim_applied *ap)
{
	for (int round = 0; round < 32; round++) {
		char body[256];
		struct resp r;
		json_t *j, *cmds, *v;
		size_t i;
		int bad = 0;

		sim_checkin_body(ap, 0, body, sizeof(body));
		if (dev_req(d, c, "POST", "/device/v1/checkin", body, 0, &r) != 0)
			return -1;
		if (r.status == 204) {
			resp_free(&r);
			return 0;
		}
		j = r.status == 200 ? resp_json(&r) : NULL;
		resp_free(&r);
		if (j == NULL)
			return -1;
		cmds = json_object_get(j, "commands");
		if (json_array_size(cmds) == 0) {
			json_decref(j);
			return 1;
		}
		json_array_foreach(cmds, i, v) bad |= sim_run_command(d, c, v, ap) != 0;
		json_decref(j);
		if (bad)
			return -1;
	}
	return -1;
}
