/* Technicians' access on the broker (see techacl.h, docs/broker.md). */
#include "techacl.h"

#include <string.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define LEVELS_MAX 5
#define TOPIC_MAX 512 /* longer than any topic a technician may use */

bool fr_tech_user(const char *user)
{
	return user && !strncmp(user, FR_TECH_PREFIX, strlen(FR_TECH_PREFIX));
}

/* A device's id as a topic level: ^[a-z0-9][a-z0-9._-]{0,62}$ (as
 * common/validate.c), and never fleetd's or a technician's. */
static bool device_level(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 ||
	    !strchr("abcdefghijklmnopqrstuvwxyz0123456789", s[0]))
		return false;
	if (strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._-") != n)
		return false;
	return strcmp(s, "fleetd") != 0 && !fr_tech_user(s) &&
	       !fr_replica_user(s);
}

/* Split @topic into @buf's levels; their count, or -1 when over
 * LEVELS_MAX levels or TOPIC_MAX bytes. */
static int split(const char *topic, char buf[TOPIC_MAX], char *lv[LEVELS_MAX])
{
	size_t len = strnlen(topic, TOPIC_MAX);
	int n = 0;
	char *p = buf;

	if (len == TOPIC_MAX)
		return -1;
	memcpy(buf, topic, len + 1);
	for (char *s; (s = strsep(&p, "/"));) {
		if (n == LEVELS_MAX)
			return -1;
		lv[n++] = s;
	}
	return n;
}

bool fr_tech_allowed(const char *prefix, const char *user, const char *topic,
		     int access, bool retain)
{
	char buf[TOPIC_MAX], *lv[LEVELS_MAX];
	int n;

	if (access == MOSQ_ACL_UNSUBSCRIBE)
		return true;
	if (!topic || !prefix || (n = split(topic, buf, lv)) < 0 ||
	    strcmp(lv[0], prefix) != 0)
		return false;
	if (access == MOSQ_ACL_WRITE)
		return n == 4 && !retain && device_level(lv[1]) &&
		       !strcmp(lv[2], "diag") && !strcmp(lv[3], "req");
	if (access != MOSQ_ACL_READ && access != MOSQ_ACL_SUBSCRIBE)
		return false;
	return n == 5 &&
	       (device_level(lv[1]) ||
		(access == MOSQ_ACL_SUBSCRIBE && !strcmp(lv[1], "+"))) &&
	       !strcmp(lv[2], "diag") && !strcmp(lv[3], "resp") &&
	       !strcmp(lv[4], user);
}

bool fr_replica_user(const char *user)
{
	return user &&
	       !strncmp(user, FR_REPLICA_PREFIX, strlen(FR_REPLICA_PREFIX)) &&
	       user[strlen(FR_REPLICA_PREFIX)] != '\0';
}

/* @topic without a shared subscription's "$share/GROUP/" (a filter
 * only), or NULL when it is one with no GROUP or no topic after it. */
static const char *unshare(const char *topic, int access)
{
	const char *group;

	if (strncmp(topic, "$share/", 7) != 0)
		return topic;
	if (access != MOSQ_ACL_SUBSCRIBE && access != MOSQ_ACL_UNSUBSCRIBE)
		return NULL;
	group = strchr(topic + 7, '/');
	return group && group > topic + 7 && group[1] ? group + 1 : NULL;
}

bool fr_replica_allowed(const char *prefix, const char *topic, int access)
{
	size_t n = prefix ? strlen(prefix) : 0;
	bool reading = access == MOSQ_ACL_READ || access == MOSQ_ACL_SUBSCRIBE;

	if (!topic || !prefix || !(topic = unshare(topic, access)))
		return false;
	if (!strncmp(topic, prefix, n) && topic[n] == '/')
		return true;
	if (!strncmp(topic, "$CONTROL/dynamic-security/", 26))
		return true;
	return reading &&
	       !strcmp(topic, "$SYS/broker/publish/messages/dropped");
}
