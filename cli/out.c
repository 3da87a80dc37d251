/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "http.h"
#include "util.h"

#define MAX_COLS 16
#define MAX_CELL 256

void cli_print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);

	printf("%s\n", s ? s : "null");
	free(s);
}

/*
 * A row that lacks a column (the server omits it, or the command has not
 * filled it in yet) is a NULL value here: it prints as "-" like null.
 */
const char *cli_cell(const json_t *v, char *buf, size_t len)
{
	if (!v)
		return "-";
	switch (json_typeof(v)) {
	case JSON_STRING:
		return json_string_value(v);
	case JSON_INTEGER:
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		return buf;
	case JSON_REAL:
		snprintf(buf, len, "%g", json_real_value(v));
		return buf;
	case JSON_TRUE:
		return "yes";
	case JSON_FALSE:
		return "no";
	case JSON_ARRAY: {
		size_t i, o = 0;
		json_t *e;

		buf[0] = '\0';
		json_array_foreach(v, i, e) {
			char sub[64];
			const char *t = cli_cell(e, sub, sizeof(sub));

			o += (size_t)snprintf(buf + o, o < len ? len - o : 0,
					      "%s%s", i ? "," : "", t);
			if (o >= len)
				break;
		}
		return i ? buf : "-";
	}
	case JSON_OBJECT:
		return "(object)";
	default:
		return "-";
	}
}

void cli_print_result(struct cli_ctx *ctx, json_t *j)
{
	if (!j)
		j = json_object();
	if (ctx->output == CLI_OUT_JSON)
		cli_print_json(j);
	json_decref(j);
}

/* Cells never carry control characters to the terminal. */
static void put_cell(const char *s, int width, bool last)
{
	int n = 0;

	for (; *s; s++, n++)
		putchar((unsigned char)*s < 0x20 ? '?' : *s);
	if (!last)
		printf("%*s", width - n + 2, "");
}

void cli_print_rows(struct cli_ctx *ctx, const json_t *rows,
		    const struct cli_col *cols)
{
	int width[MAX_COLS] = {0}, ncols = 0;
	char buf[MAX_CELL];
	json_t *row;
	size_t i;

	if (ctx->output == CLI_OUT_JSON) {
		cli_print_json(rows);
		return;
	}
	for (; cols[ncols].header && ncols < MAX_COLS; ncols++)
		width[ncols] = (int)strlen(cols[ncols].header);
	json_array_foreach(rows, i, row)
		for (int c = 0; c < ncols; c++) {
			int w = (int)strlen(cli_cell(
				json_object_get(row, cols[c].key), buf,
				sizeof(buf)));

			if (w > width[c])
				width[c] = w;
		}
	for (int c = 0; c < ncols; c++)
		put_cell(cols[c].header, width[c], c == ncols - 1);
	putchar('\n');
	json_array_foreach(rows, i, row) {
		for (int c = 0; c < ncols; c++)
			put_cell(cli_cell(json_object_get(row, cols[c].key),
					  buf, sizeof(buf)),
				 width[c], c == ncols - 1);
		putchar('\n');
	}
}

void cli_print_object(struct cli_ctx *ctx, const json_t *obj,
		      const struct cli_col *fields)
{
	char buf[MAX_CELL];
	int width = 0;

	if (ctx->output == CLI_OUT_JSON) {
		cli_print_json(obj);
		return;
	}
	for (const struct cli_col *f = fields; f->header; f++)
		if ((int)strlen(f->header) > width)
			width = (int)strlen(f->header);
	for (const struct cli_col *f = fields; f->header; f++) {
		printf("%s:%*s ", f->header, width - (int)strlen(f->header),
		       "");
		put_cell(cli_cell(json_object_get(obj, f->key), buf,
				  sizeof(buf)),
			 0, true);
		putchar('\n');
	}
}

int cli_list_cmd(struct cli_ctx *ctx, int argc, char **argv, const char *path,
		 const struct cli_col *cols)
{
	json_t *rows;
	int rc;

	if ((rc = cli_args(ctx, argc, argv, 0, 0, "no arguments")))
		return rc;
	rc = fl_http_json(ctx->http, "GET", path, NULL, &rows, &ctx->err);
	if (rc)
		return rc;
	cli_print_rows(ctx, rows, cols);
	json_decref(rows);
	return 0;
}
