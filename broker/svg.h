/*
 * svg -- small line charts as inline SVG, drawn on the server.
 *
 * The status page shows the broker's history without JavaScript or any
 * asset of its own: each chart is a <figure> with a title, an <svg> of
 * fixed size and an HTML legend.  A series is drawn as steps, one per
 * sample, each as wide as the sampling interval and ending at the time
 * the sample was taken; a sample without a value (NAN) is a gap.  Runs
 * of equal values are one segment, so a chart's size grows with the
 * changes it shows, not with the samples.
 */
#ifndef RESBUS_SVG_H
#define RESBUS_SVG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct svg_line {
	const char *label; /* in the legend and in data-series */
	const char *color; /* "#rrggbb"; NULL: the next of the palette */
	const double *v;   /* one per sample; NAN: no value */
	bool dashed;	   /* drawn dashed, over the lines before it */
};

struct svg_chart {
	const char *id; /* the figure's id attribute */
	const char *title;
	const char *unit;    /* after the values on the axis: "", " s" */
	const char *empty;   /* shown in the frame when there is no line */
	const int64_t *t_ms; /* when each sample was taken, oldest first */
	size_t n;
	int64_t step_ms; /* the sampling interval */
	const struct svg_line *lines;
	size_t nlines;
};

/*
 * CHART as an HTML fragment: <figure id=...> with the title, the <svg>
 * and the legend; every string escaped.  Caller frees.
 */
char *svg_chart(const struct svg_chart *chart);

#endif
