/* SPDX-License-Identifier: MIT */
/* Undoing a factory provision whose archive could not be written
 * (issue 8 item 12): the CLI asks, right after the failure. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "store_sql.h"
#include "util.h"

/* Inside a transaction: the device may be undone, or why not. */
static int undo_allowed(struct srv_store_be *s, const char *id,
			const char *serial, struct fl_error *err)
{
	struct db_first dev, cert = {0};
	int rc;

	/* dev: 0 state, 1 online, 2 last_seen; cert: 0 issued, 1 live */
	rc = db_query_first(s, &dev, NULL,
			    "SELECT state, online, last_seen FROM devices"
			    " WHERE id = ?",
			    "s", id);
	if (rc) {
		rc = fl_fail(err, FL_ENOTFOUND, "no device '%s'", id);
		goto out;
	}
	rc =
	    db_query_first(s, &cert, NULL,
			   "SELECT issued, (SELECT count(*) FROM certs WHERE"
			   " device = ?1 AND revoked = 0) FROM certs"
			   " WHERE device = ?1 AND serial = ?2 AND revoked = 0",
			   "ss", id, serial);
	if (rc)
		rc = fl_fail(err, FL_ECONFLICT,
			     "'%s' is not device %s's live certificate", serial,
			     id);
	else if (!fl_streq(dev.t[0], "active") || dev.i[1] || dev.i[2] ||
		 cert.i[1] != 1)
		rc = fl_fail(err, FL_ECONFLICT,
			     "device %s has been used: decommission it instead",
			     id);
	else if (cert.i[0] < (int64_t)time(NULL) - SRV_PROVISION_UNDO_WINDOW)
		rc = fl_fail(err, FL_ECONFLICT,
			     "device %s was provisioned too long ago to undo",
			     id);
out:
	db_first_free(&dev);
	db_first_free(&cert);
	return rc;
}

/*
 * Inside a transaction: forget the device.  Only a new id can have been
 * provisioned (a decommissioned one stays retired), so nothing older is
 * lost; the revoked certificate row stays for the CRL.
 */
static int forget_device(struct srv_store_be *s, const char *id,
			 struct fl_error *err)
{
	int rc;

	rc = db_run(s, NULL, err, "DELETE FROM device_labels WHERE device = ?",
		    "s", id);
	if (!rc)
		rc = db_run(s, NULL, err, "DELETE FROM devices WHERE id = ?",
			    "s", id);
	return rc;
}

int sql_provision_undo(struct srv_store_be *s, const char *id,
		       const char *serial, struct fl_error *err)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc)
		rc = undo_allowed(s, id, serial, err);
	if (!rc)
		rc = db_run(s, NULL, err,
			    "UPDATE certs SET revoked = ?, reason ="
			    " 'provision-undone' WHERE serial = ?",
			    "is", (int64_t)time(NULL), serial);
	if (!rc)
		rc = forget_device(s, id, err);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}
