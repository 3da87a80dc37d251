/* SPDX-License-Identifier: MIT */
/*
 * dynsec.json: fleetd's default ACL policy for mosquitto's dynamic-
 * security plugin, and the migration of files written by older fleetd
 * versions (docs/broker.md, issue 8 item 1).
 */
#include <stdlib.h>

#include "dynsec.h"
#include "fsutil.h"
#include "json.h"

/* Every default access defers to the acl_file, except unsubscribing,
 * which can only ever reduce what a client gets. */
static const struct {
	const char *type;
	bool allow;
} policy[] = {
	{"publishClientSend", false},
	{"publishClientReceive", false},
	{"subscribe", false},
	{"unsubscribe", true},
};

static const char fresh_text[] =
	"{\"clients\": [], \"groups\": [], \"roles\": []}";

bool srv_dynsec_apply_policy(json_t *root)
{
	json_t *acl = json_object_get(root, "defaultACLAccess");
	bool changed = false;

	if (!json_is_object(acl)) {
		acl = json_object();
		json_object_set_new(root, "defaultACLAccess", acl);
		changed = true;
	}
	for (size_t i = 0; i < sizeof(policy) / sizeof(policy[0]); i++) {
		json_t *v = json_object_get(acl, policy[i].type);

		if (json_is_boolean(v) && json_is_true(v) == policy[i].allow)
			continue;
		json_object_set_new(acl, policy[i].type,
				    json_boolean(policy[i].allow));
		changed = true;
	}
	return changed;
}

int srv_dynsec_write(const char *path, bool *ret_migrated,
		     struct fl_error *err)
{
	bool exists = fl_path_exists(path), changed;
	json_t *root = NULL;
	int rc;

	if (exists)
		rc = fl_json_load_file(path, SRV_DYNSEC_MAX_FILE, &root, err);
	else
		rc = fl_json_parse(fresh_text, sizeof(fresh_text) - 1,
				   sizeof(fresh_text), &root, err);
	if (!rc && !json_is_object(root))
		rc = fl_fail(err, FL_EPARSE, "%s is not a JSON object", path);
	if (rc)
		goto out;
	changed = srv_dynsec_apply_policy(root);
	if (changed)
		rc = fl_json_save_file(root, path, 0600, err);
	if (!rc && ret_migrated)
		*ret_migrated = exists && changed;
out:
	json_decref(root);
	return rc;
}

json_t *srv_dynsec_policy_cmd(void)
{
	json_t *acls = json_array();

	for (size_t i = 0; i < sizeof(policy) / sizeof(policy[0]); i++)
		json_array_append_new(acls,
				      json_pack("{s:s, s:b}", "acltype",
						policy[i].type, "allow",
						policy[i].allow));
	return json_pack("{s:s, s:o}", "command", "setDefaultACLAccess",
			 "acls", acls);
}
