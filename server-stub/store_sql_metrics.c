/* SPDX-License-Identifier: MIT */
/* The fleet's numbers for /metrics (store.h, srv_store_fleet_counts). */
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_sql.h"

static int count_row(struct db_row *st, void *ctx)
{
	struct srv_count *c = DB_PUSH((struct srv_count_list *)ctx);

	c->name = db_col_str(st, 0);
	c->n = db_col_int(st, 1);
	return 0;
}

/* Active devices not among the versions counted one by one. */
static int64_t firmware_other(const struct srv_fleet_counts *c)
{
	int64_t n = 0;

	for (size_t i = 0; i < c->devices.n; i++)
		if (c->devices.v[i].name &&
		    !strcmp(c->devices.v[i].name, "active"))
			n = c->devices.v[i].n;
	for (size_t i = 0; i < c->firmware.n; i++)
		n -= c->firmware.v[i].n;
	return n;
}

int sql_fleet_counts(struct srv_store_be *s, struct srv_fleet_counts *ret,
		     struct fl_error *err)
{
	struct srv_fleet_counts c = {0};
	struct db_first on = {0};
	int rc;

	rc = db_lquery_rows(s, count_row, &c.devices, err,
			    "SELECT state, count(*) FROM devices"
			    " GROUP BY state ORDER BY state",
			    "");
	if (!rc)
		rc = db_lquery_first(s, &on, err,
				     "SELECT count(*) FROM devices"
				     " WHERE state = 'active' AND online != 0",
				     "");
	if (!rc)
		rc = db_lquery_rows(s, count_row, &c.firmware, err,
				    "SELECT coalesce(firmware, ''), count(*)"
				    " FROM devices WHERE state = 'active'"
				    " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?",
				    "d", SRV_COUNT_VERSIONS_MAX);
	if (!rc)
		rc = db_lquery_rows(s, count_row, &c.rollouts, err,
				    "SELECT state, count(*) FROM rollouts"
				    " GROUP BY state ORDER BY state",
				    "");
	if (!rc)
		rc = db_lquery_rows(s, count_row, &c.jobs_final, err,
				    "SELECT state, count(*) FROM jobs"
				    " WHERE final = 1 GROUP BY state"
				    " ORDER BY state",
				    "");
	c.online = on.i[0];
	c.firmware_other = firmware_other(&c);
	db_first_free(&on);
	return DB_GIVE(rc, c, ret, srv_fleet_counts_free);
}
