/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "http.h"
#include "util.h"

#define MAX_COLS 16
#define MAX_CELL 256
#define MIN_COL 8 /* a column cut to fit the terminal keeps this much */
#define ELLIPSIS "\u2026"

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
		json_array_foreach(v, i, e)
		{
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

/*
 * The columns a table may take: the terminal's width when stdout is a
 * terminal (COLUMNS, else TIOCGWINSZ), else 0 for no limit (a pipe or a
 * file gets every cell whole).
 */
static int term_width(void)
{
	const char *env = getenv("COLUMNS");
	struct winsize ws;

	if (!isatty(STDOUT_FILENO))
		return 0;
	if (env && atoi(env) > 0)
		return atoi(env);
	if (!ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) && ws.ws_col)
		return ws.ws_col;
	return 0;
}

/*
 * Cut the widest column so the table fits @term columns (0: no limit),
 * keeping MIN_COL of it.  Returns its index, or -1 when nothing is cut.
 */
static int fit(int *width, int ncols, int term)
{
	int total = 2 * (ncols - 1), widest = 0;

	for (int c = 0; c < ncols; c++) {
		total += width[c];
		if (width[c] > width[widest])
			widest = c;
	}
	if (!term || total <= term || width[widest] <= MIN_COL)
		return -1;
	width[widest] -= total - term;
	if (width[widest] < MIN_COL)
		width[widest] = MIN_COL;
	return widest;
}

/* Cells never carry control characters to the terminal; one longer than
 * @cut (>= 1; 0 for no cut) ends in an ellipsis at @cut columns. */
static void put_cell(const char *s, int width, bool last, int cut)
{
	int n = 0, len = (int)strlen(s);

	if (cut && len > cut) {
		len = cut - 1;
		while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--; /* not inside a UTF-8 sequence */
	}
	for (; n < len; s++, n++)
		putchar((unsigned char)*s < 0x20 ? '?' : *s);
	if (*s) {
		fputs(ELLIPSIS, stdout);
		n++;
	}
	if (!last)
		printf("%*s", width - n + 2, "");
}

/* A row's cells: @cut is the column fit() cut (-1: none). */
static void put_row(const json_t *row, const struct cli_col *cols,
		    const int *width, int ncols, int cut)
{
	char buf[MAX_CELL];

	for (int c = 0; c < ncols; c++)
		put_cell(row ? cli_cell(json_object_get(row, cols[c].key), buf,
					sizeof(buf))
			     : cols[c].header,
			 width[c], c == ncols - 1, c == cut ? width[c] : 0);
	putchar('\n');
}

void cli_print_rows(struct cli_ctx *ctx, const json_t *rows,
		    const struct cli_col *cols)
{
	int width[MAX_COLS] = {0}, ncols = 0, cut;
	char buf[MAX_CELL];
	json_t *row;
	size_t i;

	if (ctx->output == CLI_OUT_JSON) {
		cli_print_json(rows);
		return;
	}
	for (; cols[ncols].header && ncols < MAX_COLS; ncols++)
		width[ncols] = (int)strlen(cols[ncols].header);
	json_array_foreach(rows, i, row) for (int c = 0; c < ncols; c++)
	{
		int w = (int)strlen(cli_cell(json_object_get(row, cols[c].key),
					     buf, sizeof(buf)));

		if (w > width[c])
			width[c] = w;
	}
	cut = fit(width, ncols, term_width());
	put_row(NULL, cols, width, ncols, cut);
	json_array_foreach(rows, i, row) put_row(row, cols, width, ncols, cut);
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
		put_cell(
		    cli_cell(json_object_get(obj, f->key), buf, sizeof(buf)), 0,
		    true, 0);
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
