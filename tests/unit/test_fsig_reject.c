/* SPDX-License-Identifier: MIT */
/*
 * One test per rejection of DESIGN §4.  Bundles are crafted entry by
 * entry with libarchive's tar writer and signed with real keys; each
 * must fail with FL_EVERIFY (exit 6), the expected reason, a message
 * starting with that reason's name, and nothing in the extraction
 * directory (where the payload would go).
 */
#include "fsig_fixture.h"

#define LEN_A (300 * 1024 + 7)
#define LEN_B 4000

struct ctx {
	char *dir, *out, *bundle;
	struct fsig_key *rk, *tk, *tk2, *stranger;
	struct fsig_root *root, *root2;
	unsigned char *pa, *pb;
};

/* A payload as the manifest declares it. */
struct pl {
	const char *name;
	const unsigned char *data;
	size_t declared; /* size in the manifest; hash over that many bytes */
};

static int setup(void **state)
{
	struct ctx *c = fl_xcalloc(1, sizeof(*c));
	struct fsig_key *tks[2];

	c->dir = tmpdir_new();
	c->out = tpath(c->dir, "out");
	c->bundle = tpath(c->dir, "b.fwb");
	assert_int_equal(mkdir(c->out, 0755), 0);
	c->rk = new_key(FSIG_ALG_ED25519);
	c->tk = new_key(FSIG_ALG_ED25519);
	c->tk2 = new_key(FSIG_ALG_P256);
	c->stranger = new_key(FSIG_ALG_ED25519);
	tks[0] = c->tk;
	tks[1] = c->tk2;
	c->root = make_root(&c->rk, 1, 1, tks, 2, 1);
	c->root2 = make_root(&c->rk, 1, 1, tks, 2, 2);
	c->pa = pattern(LEN_A, 11);
	c->pb = pattern(LEN_B, 22);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	tmpdir_free(c->dir);
	free(c->out);
	free(c->bundle);
	fsig_key_free(c->rk);
	fsig_key_free(c->tk);
	fsig_key_free(c->tk2);
	fsig_key_free(c->stranger);
	fsig_root_free(c->root);
	fsig_root_free(c->root2);
	free(c->pa);
	free(c->pb);
	free(c);
	return 0;
}

/* Manifest text; @top adds top-level fields (", \"expires\": ..."). */
static char *manifest(const char *version, int sv, const char *top,
		      const struct pl *p, size_t n)
{
	char *pls = fl_xstrdup(""), *m;

	for (size_t i = 0; i < n; i++) {
		char hash[65], *next;

		sha_hex(p[i].data, p[i].declared, hash);
		next = fl_xasprintf(
		    "%s%s{\"name\": \"%s\", \"type\": \"image\", "
		    "\"compression\": \"none\", \"size\": %zu, "
		    "\"sha256\": \"%s\"}",
		    pls, i ? ", " : "", p[i].name, p[i].declared, hash);
		free(pls);
		pls = next;
	}
	m = fl_xasprintf(
	    "{\"format\": 1, \"name\": \"fw\", \"version\": \"%s\","
	    " \"security_version\": %d, \"hardware\": [\"gw\"],"
	    " \"created\": \"2026-01-01T00:00:00Z\"%s,"
	    " \"payloads\": [%s]}\n",
	    version, sv, top ? top : "", pls);
	free(pls);
	return m;
}

static char *std_manifest(struct ctx *c)
{
	struct pl p[] = {{.name = "a", .data = c->pa, .declared = LEN_A},
			 {.name = "b", .data = c->pb, .declared = LEN_B}};

	return manifest("1.0.0", 3, NULL, p, 2);
}

/* Entries: manifest, sig by @key, payload/a, payload/b. */
static void std_entries(struct ctx *c, struct craft e[4], char **m, char **sig,
			struct fsig_key *key)
{
	*m = std_manifest(c);
	*sig = sign_text(*m, strlen(*m), &key, 1);
	e[0] = (struct craft){
	    .name = "manifest.json", .data = *m, .len = strlen(*m)};
	e[1] = (struct craft){
	    .name = "manifest.sig", .data = *sig, .len = strlen(*sig)};
	e[2] = (struct craft){.name = "payload/a", .data = c->pa, .len = LEN_A};
	e[3] = (struct craft){.name = "payload/b", .data = c->pb, .len = LEN_B};
}

static void empty_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char *p = tpath(dir, e->d_name);

		if (e->d_name[0] != '.' || strlen(e->d_name) > 2)
			assert_int_equal(unlink(p), 0);
		free(p);
	}
	closedir(d);
}

/*
 * Verify c->bundle into c->out.  For rejections (@want != NONE) check
 * the code, exit status, reason, message and the empty directory.
 */
static void expect(struct ctx *c, const struct fsig_root *root,
		   const struct fsig_policy *pol, enum fsig_reason want)
{
	struct fl_error err = {0};
	enum fsig_reason why = FSIG_R_NONE;
	int rc;

	rc = fsig_bundle_verify_file(c->bundle, root ? root : c->root, pol,
				     c->out, NULL, &why, &err);
	if (want == FSIG_R_NONE) {
		if (rc)
			fail_msg("rejected: %s", err.msg);
		empty_dir(c->out);
		return;
	}
	if (rc != FL_EVERIFY)
		fail_msg("want '%s', got code %d: %s", fsig_reason_name(want),
			 rc, err.msg);
	assert_int_equal(fl_exit_code(rc), 6);
	assert_int_equal(err.code, FL_EVERIFY);
	if (why != want)
		fail_msg("want reason '%s', got '%s': %s",
			 fsig_reason_name(want), fsig_reason_name(why),
			 err.msg);
	assert_non_null(strstr(err.msg, fsig_reason_name(want)));
	assert_int_equal(dir_count(c->out), 0);
}

static void craft_and_expect(struct ctx *c, const struct craft *e, size_t n,
			     enum fsig_reason want)
{
	craft_tar(c->bundle, e, n);
	expect(c, NULL, NULL, want);
}

static void test_good_bundle(void **state)
{
	struct ctx *c = *state;
	struct fsig_manifest *m2 = NULL;
	struct craft e[4];
	char *m, *sig, *a, *path;
	size_t len;

	std_entries(c, e, &m, &sig, c->tk);
	craft_tar(c->bundle, e, 4);
	assert_int_equal(fsig_bundle_verify_file(c->bundle, c->root, NULL,
						 c->out, &m2, NULL, NULL),
			 0);
	assert_string_equal(m2->version, "1.0.0");
	assert_int_equal(dir_count(c->out), 2);
	path = tpath(c->out, "a");
	a = read_whole(path, &len);
	assert_int_equal(len, LEN_A);
	assert_memory_equal(a, c->pa, LEN_A);
	empty_dir(c->out);
	fsig_manifest_free(m2);
	free(path);
	free(a);
	free(m);
	free(sig);
}

/* Flip one byte in the middle of payload a in the file itself. */
static void test_tampered_payload_byte(void **state)
{
	struct ctx *c = *state;
	struct craft e[4];
	char *m, *sig, *buf, *at;
	size_t len;

	std_entries(c, e, &m, &sig, c->tk);
	craft_tar(c->bundle, e, 4);
	buf = read_whole(c->bundle, &len);
	at = memmem(buf, len, c->pa, 64);
	assert_non_null(at);
	at[LEN_A / 2] ^= 0x01;
	write_file(c->bundle, buf, len);
	expect(c, NULL, NULL, FSIG_R_PAYLOAD_HASH);
	free(buf);
	free(m);
	free(sig);
}

static void test_tampered_manifest(void **state)
{
	struct ctx *c = *state;
	struct craft e[4];
	char *m, *sig;

	std_entries(c, e, &m, &sig, c->tk);
	m[strstr(m, "1.0.0") - m + 4] = '9'; /* same length, valid JSON */
	craft_and_expect(c, e, 4, FSIG_R_BAD_SIGNATURE);
	free(m);
	free(sig);
}

static void test_unknown_key(void **state)
{
	struct ctx *c = *state;
	struct craft e[4];
	char *m, *sig;

	std_entries(c, e, &m, &sig, c->stranger);
	craft_and_expect(c, e, 4, FSIG_R_UNKNOWN_KEY);
	free(m);
	free(sig);
}

/* root2 needs two targets signatures; one valid one is too few. */
static void test_too_few_signatures(void **state)
{
	struct ctx *c = *state;
	struct craft e[4];
	struct fsig_key *both[2] = {c->tk, c->tk2};
	char *m, *sig;

	char *one, *twice;

	std_entries(c, e, &m, &sig, c->tk);
	craft_tar(c->bundle, e, 4);
	expect(c, c->root2, NULL, FSIG_R_THRESHOLD);
	/* the same signature listed twice still counts once */
	one = fl_xstrndup(strchr(sig, '{'),
			  (size_t)(strrchr(sig, '}') - strchr(sig, '{')) + 1);
	twice = fl_xasprintf("[%s, %s]", one, one);
	e[1] = (struct craft){
	    .name = "manifest.sig", .data = twice, .len = strlen(twice)};
	craft_tar(c->bundle, e, 4);
	expect(c, c->root2, NULL, FSIG_R_THRESHOLD);
	free(one);
	free(twice);
	free(sig);
	sig = sign_text(m, strlen(m), both, 2);
	e[1] = (struct craft){
	    .name = "manifest.sig", .data = sig, .len = strlen(sig)};
	craft_tar(c->bundle, e, 4);
	expect(c, c->root2, NULL, FSIG_R_NONE);
	free(m);
	free(sig);
}

static void test_wrong_hardware(void **state)
{
	struct ctx *c = *state;
	struct fsig_policy pol = {.hardware = "not-gw"};
	struct craft e[4];
	char *m, *sig;

	std_entries(c, e, &m, &sig, c->tk);
	craft_tar(c->bundle, e, 4);
	expect(c, NULL, &pol, FSIG_R_HARDWARE);
	free(m);
	free(sig);
}

static void test_security_version_below_floor(void **state)
{
	struct ctx *c = *state;
	struct fsig_policy pol = {.min_security_version = 4};
	struct craft e[4];
	char *m, *sig;

	std_entries(c, e, &m, &sig, c->tk);
	craft_tar(c->bundle, e, 4);
	expect(c, NULL, &pol, FSIG_R_SECURITY_VERSION);
	pol.min_security_version = 3; /* equal to the floor is fine */
	expect(c, NULL, &pol, FSIG_R_NONE);
	free(m);
	free(sig);
}

static void test_expired(void **state)
{
	struct ctx *c = *state;
	struct pl p[] = {{.name = "a", .data = c->pa, .declared = LEN_A},
			 {.name = "b", .data = c->pb, .declared = LEN_B}};
	struct fsig_policy pol = {.now = time(NULL) + 200};
	char when[21], *top, *m, *sig;
	struct craft e[4];

	fl_time_rfc3339(time(NULL) + 100, when);
	top = fl_xasprintf(", \"expires\": \"%s\"", when);
	m = manifest("1.0.0", 3, top, p, 2);
	sig = sign_text(m, strlen(m), &c->tk, 1);
	e[0] = (struct craft){
	    .name = "manifest.json", .data = m, .len = strlen(m)};
	e[1] = (struct craft){
	    .name = "manifest.sig", .data = sig, .len = strlen(sig)};
	e[2] = (struct craft){.name = "payload/a", .data = c->pa, .len = LEN_A};
	e[3] = (struct craft){.name = "payload/b", .data = c->pb, .len = LEN_B};
	craft_tar(c->bundle, e, 4);
	expect(c, NULL, NULL, FSIG_R_NONE); /* still valid today */
	expect(c, NULL, &pol, FSIG_R_EXPIRED);
	free(top);
	free(m);
	free(sig);
}

static void test_path_traversal_name(void **state)
{
	struct ctx *c = *state;
	struct pl p[] = {{.name = "../evil", .data = c->pb, .declared = LEN_B}};
	static const char *const names[] = {"payload/../../evil", "/etc/evil",
					    "../manifest.json",
					    "payload/a/../b"};
	struct craft e[4];
	char *m, *sig;

	std_entries(c, e, &m, &sig, c->tk);
	for (size_t i = 0; i < FL_ARRAY_SIZE(names); i++) {
		e[2].name = names[i];
		craft_and_expect(c, e, 4, FSIG_R_BAD_NAME);
	}
	free(m);
	free(sig);
	/* a signed manifest naming "../evil" is refused too */
	m = manifest("1.0.0", 3, NULL, p, 1);
	sig = sign_text(m, strlen(m), &c->tk, 1);
	e[0] = (struct craft){
	    .name = "manifest.json", .data = m, .len = strlen(m)};
	e[1] = (struct craft){
	    .name = "manifest.sig", .data = sig, .len = strlen(sig)};
	e[2] = (struct craft){
	    .name = "payload/../evil", .data = c->pb, .len = LEN_B};
	craft_and_expect(c, e, 3, FSIG_R_BAD_NAME);
	free(m);
	free(sig);
}

static void test_symlink_or_hardlink_entry(void **state)
{
	struct ctx *c = *state;
	struct craft e[4];
	char *m, *sig;

	std_entries(c, e, &m, &sig, c->tk);
	e[2] = (struct craft){
	    .name = "payload/a", .type = CRAFT_SYMLINK, .link = "/etc/shadow"};
	craft_and_expect(c, e, 4, FSIG_R_ENTRY_TYPE);
	e[2] = (struct craft){.name = "payload/a", .data = c->pa, .len = LEN_A};
	e[3] = (struct craft){
	    .name = "payload/b", .type = CRAFT_HARDLINK, .link = "payload/a"};
	craft_and_expect(c, e, 4, FSIG_R_ENTRY_TYPE);
	/* a directory comes out as "payload/b/": refused by its name */
	e[3] = (struct craft){.name = "payload/b", .type = CRAFT_DIR};
	craft_and_expect(c, e, 4, FSIG_R_BAD_NAME);
	free(m);
	free(sig);
}

static void test_duplicate_entry(void **state)
{
	struct ctx *c = *state;
	struct craft e[5];
	char *m, *sig;

	std_entries(c, e, &m, &sig, c->tk);
	e[4] = e[2]; /* payload/a again after the last payload */
	craft_and_expect(c, e, 5, FSIG_R_DUPLICATE);
	e[4] = e[1];
	e[1] = e[0]; /* manifest.json twice */
	craft_and_expect(c, e, 5, FSIG_R_DUPLICATE);
	free(m);
	free(sig);
}

static void test_unlisted_extra_entry(void **state)
{
	struct ctx *c = *state;
	struct craft e[5];
	char *m, *sig;

	std_entries(c, e, &m, &sig, c->tk);
	e[4] = (struct craft){.name = "payload/c", .data = "x", .len = 1};
	craft_and_expect(c, e, 5, FSIG_R_EXTRA);
	e[4] = (struct craft){.name = "README", .data = "x", .len = 1};
	craft_and_expect(c, e, 5, FSIG_R_EXTRA);
	e[4] = e[3];
	e[3] = (struct craft){
	    .name = "payload/c", .data = "x", .len = 1}; /* between a and b */
	craft_and_expect(c, e, 5, FSIG_R_EXTRA);
	free(m);
	free(sig);
}

static void test_reordered_entries(void **state)
{
	struct ctx *c = *state;
	struct craft e[4], t;
	char *m, *sig;

	std_entries(c, e, &m, &sig, c->tk);
	t = e[2];
	e[2] = e[3];
	e[3] = t; /* b before a */
	craft_and_expect(c, e, 4, FSIG_R_ORDER);
	e[3] = e[2];
	e[2] = t;
	t = e[0];
	e[0] = e[1];
	e[1] = t; /* signature before manifest */
	craft_and_expect(c, e, 4, FSIG_R_ORDER);
	free(m);
	free(sig);
}

static void test_truncated_file(void **state)
{
	struct ctx *c = *state;
	struct craft e[4];
	char *m, *sig;
	struct stat st;

	std_entries(c, e, &m, &sig, c->tk);
	craft_tar(c->bundle, e, 4);
	assert_int_equal(stat(c->bundle, &st), 0);
	/* in the middle of payload b, then inside the manifest */
	assert_int_equal(truncate(c->bundle, st.st_size - 1024 - 2000), 0);
	expect(c, NULL, NULL, FSIG_R_TRUNCATED);
	assert_int_equal(truncate(c->bundle, 700), 0);
	expect(c, NULL, NULL, FSIG_R_TRUNCATED);
	free(m);
	free(sig);
}

static void test_oversized_manifest(void **state)
{
	struct ctx *c = *state;
	size_t big = FSIG_MANIFEST_MAX + 1;
	struct craft e[4];
	char *m, *sig, *huge;

	std_entries(c, e, &m, &sig, c->tk);
	huge = fl_xmalloc(big);
	memset(huge, ' ', big);
	memcpy(huge, m, strlen(m));
	free(sig);
	sig = sign_text(huge, big, &c->tk, 1);
	e[0] =
	    (struct craft){.name = "manifest.json", .data = huge, .len = big};
	e[1] = (struct craft){
	    .name = "manifest.sig", .data = sig, .len = strlen(sig)};
	craft_and_expect(c, e, 4, FSIG_R_TOO_LARGE);
	free(huge);
	free(m);
	free(sig);
}

static int count_write(void *ctx, const void *buf, size_t len,
		       struct fl_error *err)
{
	(void)buf;
	(void)err;
	*(size_t *)ctx += len;
	return 0;
}

/* The entry holds more bytes than the manifest declares: refused from
 * the header, before the sink sees a single byte. */
static void test_payload_longer_than_declared(void **state)
{
	struct ctx *c = *state;
	struct pl p[] = {{.name = "a", .data = c->pa, .declared = LEN_A - 10},
			 {.name = "b", .data = c->pb, .declared = LEN_B}};
	char *m = manifest("1.0.0", 3, NULL, p, 2);
	char *sig = sign_text(m, strlen(m), &c->tk, 1);
	struct craft e[4] = {
	    {.name = "manifest.json", .data = m, .len = strlen(m)},
	    {.name = "manifest.sig", .data = sig, .len = strlen(sig)},
	    {.name = "payload/a", .data = c->pa, .len = LEN_A},
	    {.name = "payload/b", .data = c->pb, .len = LEN_B},
	};
	struct fsig_reader *r = NULL;
	size_t written = 0;
	struct fsig_sink sink = {NULL, count_write, NULL, &written};
	int fd;

	craft_and_expect(c, e, 4, FSIG_R_PAYLOAD_SIZE);
	fd = open(c->bundle, O_RDONLY);
	assert_int_equal(fsig_reader_open_fd(fd, &r, NULL), 0);
	assert_int_equal(fsig_reader_verify(r, c->root, NULL, NULL), 0);
	assert_int_equal(fsig_reader_stream(r, &sink, NULL), FL_EVERIFY);
	assert_int_equal(fsig_reader_reason(r), FSIG_R_PAYLOAD_SIZE);
	assert_int_equal(written, 0);
	fsig_reader_free(r);
	close(fd);
	free(m);
	free(sig);
}

static void test_signature_from_another_bundle(void **state)
{
	struct ctx *c = *state;
	struct pl p[] = {{.name = "a", .data = c->pa, .declared = LEN_A},
			 {.name = "b", .data = c->pb, .declared = LEN_B}};
	char *other = manifest("2.0.0", 3, NULL, p, 2);
	char *other_sig = sign_text(other, strlen(other), &c->tk, 1);
	struct craft e[4];
	char *m, *sig;

	std_entries(c, e, &m, &sig, c->tk);
	e[1] = (struct craft){.name = "manifest.sig",
			      .data = other_sig,
			      .len = strlen(other_sig)};
	craft_and_expect(c, e, 4, FSIG_R_BAD_SIGNATURE);
	free(other);
	free(other_sig);
	free(m);
	free(sig);
}

/* ------------------------------------------------------------------ */
/* Beyond the list: more ways a bundle can be wrong                    */

static void test_not_a_bundle(void **state)
{
	struct ctx *c = *state;
	unsigned char *junk = pattern(10000, 5);
	struct craft e[4];
	char *m, *sig, *gz, *cmd;

	write_file(c->bundle, junk, 10000);
	expect(c, NULL, NULL, FSIG_R_NOT_BUNDLE);
	write_file(c->bundle, "", 0);
	expect(c, NULL, NULL, FSIG_R_NOT_BUNDLE);
	/* a compressed tar is not a bundle: no filters are enabled */
	std_entries(c, e, &m, &sig, c->tk);
	craft_tar(c->bundle, e, 4);
	gz = fl_xasprintf("%s.gz", c->bundle);
	cmd = fl_xasprintf("gzip -c '%s' > '%s' && mv '%s' '%s'", c->bundle, gz,
			   gz, c->bundle);
	assert_int_equal(system(cmd), 0);
	expect(c, NULL, NULL, FSIG_R_NOT_BUNDLE);
	free(cmd);
	free(gz);
	free(junk);
	free(m);
	free(sig);
}

/*
 * Tar constructs a bundle never holds: an extension header (libarchive's
 * pax writer adds one for a name too long for ustar) and damaged headers,
 * first
 * (not a bundle at all) and later (a malformed bundle).
 */
static void test_tar_extensions_and_damage(void **state)
{
	struct ctx *c = *state;
	struct craft e[4];
	char *m, *sig, longname[140];
	FILE *f;

	memset(longname, 'b', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	memcpy(longname, "payload/", 8);
	std_entries(c, e, &m, &sig, c->tk);
	e[3].name = longname;
	craft_and_expect(c, e, 4, FSIG_R_ENTRY_TYPE);
	e[3].name = "payload/b";
	craft_tar(c->bundle, e, 4);
	f = fopen(c->bundle, "r+b");
	assert_int_equal(fseek(f, 0, SEEK_SET), 0);
	assert_int_equal(fputc('X', f), 'X'); /* manifest header checksum */
	fclose(f);
	expect(c, NULL, NULL, FSIG_R_NOT_BUNDLE);
	craft_tar(c->bundle, e, 4);
	f = fopen(c->bundle, "r+b");
	assert_int_equal(fseek(f, (long)(512 + (strlen(m) + 511) / 512 * 512),
			       SEEK_SET),
			 0);
	assert_int_equal(fputc('X', f), 'X'); /* manifest.sig's header */
	fclose(f);
	expect(c, NULL, NULL, FSIG_R_MALFORMED);
	free(m);
	free(sig);
}

static void test_signed_but_malformed(void **state)
{
	struct ctx *c = *state;
	const char *bad = "{\"format\": 1, \"name\": \"fw\"}";
	char *sig = sign_text(bad, strlen(bad), &c->tk, 1);
	struct craft e[3] = {
	    {.name = "manifest.json", .data = bad, .len = strlen(bad)},
	    {.name = "manifest.sig", .data = sig, .len = strlen(sig)},
	    {.name = "payload/a", .data = c->pa, .len = LEN_A},
	};

	craft_and_expect(c, e, 3, FSIG_R_MALFORMED);
	e[1] = (struct craft){
	    .name = "manifest.sig", .data = "[{\"keyid\": 5}]", .len = 14};
	craft_and_expect(c, e, 3, FSIG_R_MALFORMED);
	free(sig);
}

static void test_root_expired(void **state)
{
	struct ctx *c = *state;
	struct fsig_policy pol = {.now = time(NULL) + 400 * 86400};
	struct craft e[4];
	char *m, *sig;

	std_entries(c, e, &m, &sig, c->tk);
	craft_tar(c->bundle, e, 4);
	expect(c, NULL, &pol, FSIG_R_ROOT_EXPIRED);
	free(m);
	free(sig);
}

/* A read callback that counts what the reader pulled. */
struct counted {
	int fd;
	size_t pulled;
};

static int counted_read(void *ctx, void *buf, size_t cap, size_t *ret_len,
			struct fl_error *err)
{
	struct counted *cr = ctx;
	ssize_t n = read(cr->fd, buf, cap);

	(void)err;
	if (n < 0)
		return FL_EIO;
	cr->pulled += (size_t)n;
	*ret_len = (size_t)n;
	return 0;
}

/* Step 1 refuses a wrong bundle before the payload is downloaded. */
static void test_refused_before_payload(void **state)
{
	struct ctx *c = *state;
	struct fsig_policy pol = {.hardware = "not-gw"};
	struct counted cr = {-1, 0};
	struct fsig_reader *r = NULL;
	struct craft e[4];
	char *m, *sig;

	std_entries(c, e, &m, &sig, c->tk);
	craft_tar(c->bundle, e, 4);
	cr.fd = open(c->bundle, O_RDONLY);
	assert_int_equal(fsig_reader_open_cb(counted_read, &cr, &r, NULL), 0);
	assert_int_equal(fsig_reader_verify(r, c->root, &pol, NULL),
			 FL_EVERIFY);
	assert_int_equal(fsig_reader_reason(r), FSIG_R_HARDWARE);
	assert_null(fsig_reader_manifest(r));
	assert_true(cr.pulled <= 64 * 1024);
	assert_true(cr.pulled < LEN_A);
	/* a failed reader refuses to go on */
	assert_int_equal(fsig_reader_stream(r, NULL, NULL), FL_EINVAL);
	fsig_reader_free(r);
	close(cr.fd);
	free(m);
	free(sig);
}

/*
 * A source that fails, after @limit bytes, with @code: an I/O error of
 * the source is not a verification failure, and keeps its own code (a
 * download's timeout stays a timeout).
 */
struct cut {
	int fd;
	size_t limit, pulled;
	int code;
};

static int cut_read(void *ctx, void *buf, size_t cap, size_t *ret_len,
		    struct fl_error *err)
{
	struct cut *c = ctx;
	ssize_t n;

	if (c->pulled >= c->limit)
		return fl_fail(err, c->code, "network: %s",
			       c->code == FL_ETIMEOUT ? "timed out" : "down");
	n = read(c->fd, buf, cap < c->limit - c->pulled ? cap
							: c->limit - c->pulled);
	if (n < 0)
		return FL_EIO;
	c->pulled += (size_t)n;
	*ret_len = (size_t)n;
	return 0;
}

static void source_fails(struct ctx *c, size_t limit, int code)
{
	struct cut cut = {-1, limit, 0, code};
	struct fsig_reader *r = NULL;
	struct fl_error err = {0};
	struct craft e[4];
	char *m, *sig;
	int rc;

	std_entries(c, e, &m, &sig, c->tk);
	craft_tar(c->bundle, e, 4);
	cut.fd = open(c->bundle, O_RDONLY);
	assert_int_equal(fsig_reader_open_cb(cut_read, &cut, &r, NULL), 0);
	rc = fsig_reader_verify(r, c->root, NULL, &err);
	if (limit > 64 * 1024) {
		/* the manifest and signatures came through: the payload not */
		assert_int_equal(rc, 0);
		rc = fsig_reader_stream(r, NULL, &err);
	}
	assert_int_equal(rc, code);
	assert_int_equal(err.code, code);
	assert_int_equal(fsig_reader_reason(r), FSIG_R_NONE);
	fsig_reader_free(r);
	close(cut.fd);
	free(m);
	free(sig);
}

static void test_source_error_is_io(void **state)
{
	source_fails(*state, 0, FL_EIO);
	source_fails(*state, 0, FL_ETIMEOUT);
	source_fails(*state, 100, FL_EUNREACH);
	source_fails(*state, LEN_A / 2, FL_ETIMEOUT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_bundle),
	    cmocka_unit_test(test_tampered_payload_byte),
	    cmocka_unit_test(test_tampered_manifest),
	    cmocka_unit_test(test_unknown_key),
	    cmocka_unit_test(test_too_few_signatures),
	    cmocka_unit_test(test_wrong_hardware),
	    cmocka_unit_test(test_security_version_below_floor),
	    cmocka_unit_test(test_expired),
	    cmocka_unit_test(test_path_traversal_name),
	    cmocka_unit_test(test_symlink_or_hardlink_entry),
	    cmocka_unit_test(test_duplicate_entry),
	    cmocka_unit_test(test_unlisted_extra_entry),
	    cmocka_unit_test(test_reordered_entries),
	    cmocka_unit_test(test_truncated_file),
	    cmocka_unit_test(test_oversized_manifest),
	    cmocka_unit_test(test_payload_longer_than_declared),
	    cmocka_unit_test(test_signature_from_another_bundle),
	    cmocka_unit_test(test_not_a_bundle),
	    cmocka_unit_test(test_tar_extensions_and_damage),
	    cmocka_unit_test(test_signed_but_malformed),
	    cmocka_unit_test(test_root_expired),
	    cmocka_unit_test(test_refused_before_payload),
	    cmocka_unit_test(test_source_error_is_io),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
