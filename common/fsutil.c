/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "util.h"

int fl_read_file(const char *path, size_t max, char **ret_buf,
		 size_t *ret_len, struct fl_error *err)
{
	size_t len = 0, cap = 4096;
	char *buf = NULL;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fl_fail_errno(err, errno == ENOENT ? FL_ENOTFOUND : FL_EIO,
				     "cannot open '%s'", path);
	buf = fl_xmalloc(cap + 1);
	for (;;) {
		ssize_t n;

		if (len == cap) {
			if (cap > max) {
				rc = fl_fail(err, FL_ELIMIT,
					     "'%s' is larger than %zu bytes",
					     path, max);
				goto out_free;
			}
			cap *= 2;
			buf = fl_xrealloc(buf, cap + 1);
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = fl_fail_errno(err, FL_EIO, "cannot read '%s'", path);
			goto out_free;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		rc = fl_fail(err, FL_ELIMIT, "'%s' is larger than %zu bytes",
			     path, max);
		goto out_free;
	}
	buf[len] = '\0';
	*ret_buf = buf;
	if (ret_len)
		*ret_len = len;
	close(fd);
	return 0;
out_free:
	free(buf);
	close(fd);
	return rc;
}

int fl_write_all(int fd, const void *buf, size_t len, struct fl_error *err)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fl_fail_errno(err, FL_EIO, "write failed");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fl_pwrite_all(int fd, const void *buf, size_t len, uint64_t off,
		  struct fl_error *err)
{
	const char *p = buf;
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pwrite(fd, p + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return fl_fail_errno(err, FL_EIO, "write failed");
		}
		done += (size_t)n;
	}
	return 0;
}

int fl_fsync_parent(const char *path, struct fl_error *err)
{
	char *copy = fl_xstrdup(path);
	struct stat st;
	const char *dir;
	int fd, rc = 0;

	dir = (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) ? copy
							      : dirname(copy);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot sync directory '%s'",
				   dir);
	if (fd >= 0)
		close(fd);
	free(copy);
	return rc;
}

int fl_write_atomic(const char *path, const void *buf, size_t len,
		    mode_t mode, struct fl_error *err)
{
	char *tmp = fl_xasprintf("%s.tmp.XXXXXX", path);
	int fd, rc;

	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = fl_fail_errno(err, FL_EIO, "cannot create '%s'", tmp);
		goto out_free;
	}
	if (fchmod(fd, mode) < 0) {
		rc = fl_fail_errno(err, FL_EIO, "cannot chmod '%s'", tmp);
		goto out_unlink;
	}
	rc = fl_write_all(fd, buf, len, err);
	if (rc)
		goto out_unlink;
	if (fsync(fd) < 0) {
		rc = fl_fail_errno(err, FL_EIO, "cannot sync '%s'", tmp);
		goto out_unlink;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, path) < 0) {
		rc = fl_fail_errno(err, FL_EIO, "cannot rename to '%s'", path);
		goto out_unlink;
	}
	rc = fl_fsync_parent(path, err);
	goto out_free;
out_unlink:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
out_free:
	if (rc)
		fl_error_prefix(err, "writing '%s'", path);
	free(tmp);
	return rc;
}

int fl_write_atomic_str(const char *path, const char *s, mode_t mode,
			struct fl_error *err)
{
	return fl_write_atomic(path, s, strlen(s), mode, err);
}

int fl_mkdir_p(const char *path, mode_t mode, struct fl_error *err)
{
	char *copy = fl_xstrdup(path);
	int rc = 0;

	/* skip a leading '/', but never past the end of "" */
	for (char *p = copy + (copy[0] != '\0');; p++) {
		char c = *p;

		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST) {
			rc = fl_fail_errno(err, FL_EIO,
					   "cannot create directory '%s'", copy);
			break;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	free(copy);
	return rc;
}

char *fl_path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir);

	if (n && dir[n - 1] == '/')
		return fl_xasprintf("%s%s", dir, name);
	return fl_xasprintf("%s/%s", dir, name);
}

bool fl_path_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/*
 * A token kept out of argv: the first line of @path ("-" is stdin),
 * without the line end.  Empty, multi-line or binary content is a usage
 * error, so a wrong file is not sent as a credential.
 */
int fl_read_secret(const char *path, char **ret, struct fl_error *err)
{
	const char *name = strcmp(path, "-") ? path : "/dev/stdin";
	char *buf = NULL;
	size_t len = 0;
	int rc = fl_read_file(name, 4096, &buf, &len, err);

	if (rc)
		return rc;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	for (size_t i = 0; i < len && !rc; i++)
		if ((unsigned char)buf[i] <= ' ' || buf[i] == 0x7f)
			rc = fl_fail(err, FL_EUSAGE,
				     "'%s' holds more than one token", path);
	if (!rc && !len)
		rc = fl_fail(err, FL_EUSAGE, "no token in '%s'", path);
	if (rc)
		fl_free_secret(buf);
	else
		*ret = buf;
	return rc;
}

/* The pid recorded in an open lock file, or 0 when unreadable. */
static long lock_holder(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	long pid;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, NULL, 10);
	return pid > 0 ? pid : 0;
}

/* Replace the lock file's content with our pid. */
static int lock_write_pid(int fd, const char *path, struct fl_error *err)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		return fl_fail_errno(err, FL_EIO, "cannot write '%s'", path);
	return 0;
}

int fl_lock_take(const char *path, int *ret_fd, struct fl_error *err)
{
	long pid;
	int fd, rc;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return fl_fail_errno(err, FL_EIO, "cannot open lock '%s'", path);
	while ((rc = flock(fd, LOCK_EX | LOCK_NB)) < 0 && errno == EINTR)
		;
	if (rc < 0 && errno == EWOULDBLOCK) {
		pid = lock_holder(fd);
		close(fd);
		if (pid)
			return fl_fail(err, FL_ECONFLICT,
				       "'%s' is locked by another instance "
				       "(pid %ld)", path, pid);
		return fl_fail(err, FL_ECONFLICT,
			       "'%s' is locked by another instance", path);
	}
	if (rc < 0) {
		rc = fl_fail_errno(err, FL_EIO, "cannot lock '%s'", path);
		close(fd);
		return rc;
	}
	rc = lock_write_pid(fd, path, err);
	if (rc) {
		close(fd);
		return rc;
	}
	*ret_fd = fd;
	return 0;
}

void fl_lock_release(int fd)
{
	if (fd >= 0)
		close(fd);
}
