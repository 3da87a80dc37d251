/* SPDX-License-Identifier: MIT */
/* fleetctl's transfer progress bar (progress.h). */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "util.h"

#define REDRAW_MS 100
#define BAR_MAX 30

/* "12.3 MiB": @n bytes in the largest binary unit below 1024 of it. */
static void human(char *buf, size_t len, double n)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	size_t u = 0;

	while (n >= 1024 && u + 1 < FL_ARRAY_SIZE(units)) {
		n /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", n, units[u]);
}

size_t cli_progress_line(char *buf, size_t len, const char *label,
			 uint64_t done, uint64_t total, double bytes_per_s,
			 int width)
{
	char d[16], t[16], r[16], bar[BAR_MAX + 1], tail[96];
	int n, bar_w;

	human(d, sizeof(d), (double)done);
	human(t, sizeof(t), (double)total);
	human(r, sizeof(r), bytes_per_s);
	if (total)
		snprintf(tail, sizeof(tail), " %3d%%  %s of %s  %s/s",
			 (int)(done >= total ? 100 : done * 100 / total), d, t,
			 r);
	else
		snprintf(tail, sizeof(tail), "  %s  %s/s", d, r);
	bar_w = width - (int)strlen(label) - (int)strlen(tail) - 3;
	if (bar_w > BAR_MAX)
		bar_w = BAR_MAX;
	if (!total || bar_w < 5)
		n = snprintf(buf, len, "%s%s", label, tail);
	else {
		int fill = (int)((done >= total ? total : done) *
				 (uint64_t)bar_w / total);

		memset(bar, '#', (size_t)fill);
		memset(bar + fill, '-', (size_t)(bar_w - fill));
		bar[bar_w] = '\0';
		n = snprintf(buf, len, "%s [%s]%s", label, bar, tail);
	}
	if (n < 0)
		return 0;
	if ((size_t)n >= len)
		n = (int)len - 1;
	if (width > 1 &&
	    n > width - 1) /* never wrap: the \r would not undo it */
		n = width - 1;
	buf[n] = '\0';
	return (size_t)n;
}

static int stderr_width(void)
{
	struct winsize ws;

	if (!ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) && ws.ws_col)
		return ws.ws_col;
	return 80;
}

static void draw(void *arg, uint64_t done, uint64_t total)
{
	struct cli_progress *p = arg;
	int64_t now = fl_now_ms();
	double secs = (double)(now - p->start_ms) / 1000;
	bool finished = total && done >= total;
	char line[256];
	size_t n;

	if (!done && !total) /* not started */
		return;
	if (total && p->drawn_done >= total) /* 100 % is on the line */
		return;
	if (now - p->drawn_ms < REDRAW_MS && !finished)
		return;
	n = cli_progress_line(line, sizeof(line), p->label, done, total,
			      secs > 0 ? (double)done / secs : 0,
			      stderr_width());
	fprintf(stderr, "\r%s%*s", line,
		p->drawn_len > n ? (int)(p->drawn_len - n) : 0, "");
	fflush(stderr);
	p->drawn_len = n > p->drawn_len ? n : p->drawn_len;
	p->drawn_ms = now;
	p->drawn_done = done;
}

bool cli_progress_start(struct cli_ctx *ctx, struct cli_progress *p,
			const char *label)
{
	*p = (struct cli_progress){.label = label, .start_ms = fl_now_ms()};
	if (ctx->quiet || !isatty(STDERR_FILENO) || !ctx->http)
		return false;
	p->drawn_ms = p->start_ms - REDRAW_MS;
	fl_http_set_progress(ctx->http, draw, p);
	return true;
}

void cli_progress_end(struct cli_ctx *ctx, struct cli_progress *p)
{
	if (ctx->http)
		fl_http_set_progress(ctx->http, NULL, NULL);
	if (p->drawn_len)
		fprintf(stderr, "\r%*s\r", (int)p->drawn_len, "");
	p->drawn_len = 0;
}
