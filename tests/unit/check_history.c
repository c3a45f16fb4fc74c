/*
 * Unit tests of history, the status page's ring buffers, and of svg, the
 * charts drawn from them: samples wrap around at HISTORY_SAMPLES and are
 * read back oldest first, the series are bounded (the rest add up in an
 * "other" series) and free their place once the window forgot them, the
 * time to READY is counted, its median and maximum taken per interval,
 * and a chart draws its values as a path of steps with every string
 * escaped.
 */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "svg.h"

static size_t
count_str(const char *hay, const char *needle)
{
	size_t n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

START_TEST(test_empty)
{
	struct history *h = history_new(60.);

	ck_assert_uint_eq(history_samples(h), 0);
	ck_assert_uint_eq(history_tagsets(h), 0);
	ck_assert_uint_eq(history_pools(h), 0);
	ck_assert(history_interval_s(h) == 60.);
	/* Values before the first sample go nowhere. */
	history_add_waiting(h, "a", 3);
	ck_assert_uint_eq(history_tagsets(h), 0);
	history_free(h);
}
END_TEST

/* More samples than the ring holds: the oldest go, the order stays. */
START_TEST(test_wrap)
{
	struct history *h = history_new(1.);
	size_t i, extra = 5;

	for (i = 0; i < HISTORY_SAMPLES + extra; i++) {
		history_sample_begin(h, (int64_t)i * 1000);
		history_add_waiting(h, "web", i + 1);
		history_sample_end(h);
	}
	ck_assert_uint_eq(history_samples(h), HISTORY_SAMPLES);
	ck_assert_uint_eq(history_tagsets(h), 1);
	ck_assert_str_eq(history_tagset(h, 0), "web");
	for (i = 0; i < HISTORY_SAMPLES; i++) {
		ck_assert_int_eq(history_time_ms(h, i), (i + extra) * 1000);
		ck_assert_uint_eq(history_waiting(h, 0, i), i + extra + 1);
	}
	/* Out of range reads are zero, not a neighbour's memory. */
	ck_assert_uint_eq(history_waiting(h, 0, HISTORY_SAMPLES), 0);
	ck_assert_uint_eq(history_waiting(h, 1, 0), 0);
	history_free(h);
}
END_TEST

/* A series made later has zeros before; two lanes of a key add up. */
START_TEST(test_late_series_and_sum)
{
	struct history *h = history_new(60.);

	history_sample_begin(h, 1000);
	history_add_waiting(h, "b", 2);
	history_sample_end(h);
	history_sample_begin(h, 2000);
	history_add_waiting(h, "b", 1);
	history_add_waiting(h, "a", 4);
	history_add_waiting(h, "a", 3); /* the same tag set, another class */
	history_sample_end(h);
	ck_assert_uint_eq(history_tagsets(h), 2);
	ck_assert_str_eq(history_tagset(h, 0), "a"); /* by name */
	ck_assert_str_eq(history_tagset(h, 1), "b");
	ck_assert_uint_eq(history_waiting(h, 0, 0), 0);
	ck_assert_uint_eq(history_waiting(h, 0, 1), 7);
	ck_assert_uint_eq(history_waiting(h, 1, 0), 2);
	ck_assert_uint_eq(history_waiting(h, 1, 1), 1);
	history_free(h);
}
END_TEST

/* Past the cap, tag sets add up in "other" (name NULL, last). */
START_TEST(test_cap_other)
{
	struct history *h = history_new(60.);
	char key[16];
	size_t i, extra = 4;

	history_sample_begin(h, 1000);
	for (i = 0; i < HISTORY_MAX_TAGSETS + extra; i++) {
		snprintf(key, sizeof(key), "t%02zu", i);
		history_add_waiting(h, key, 10 + i);
	}
	history_sample_end(h);
	ck_assert_uint_eq(history_tagsets(h), HISTORY_MAX_TAGSETS + 1);
	for (i = 0; i < HISTORY_MAX_TAGSETS; i++) {
		snprintf(key, sizeof(key), "t%02zu", i);
		ck_assert_str_eq(history_tagset(h, i), key);
		ck_assert_uint_eq(history_waiting(h, i, 0), 10 + i);
	}
	ck_assert_ptr_null(history_tagset(h, HISTORY_MAX_TAGSETS));
	/* t16 .. t19: 26 + 27 + 28 + 29 */
	ck_assert_uint_eq(history_waiting(h, HISTORY_MAX_TAGSETS, 0),
	    26 + 27 + 28 + 29);
	history_free(h);
}
END_TEST

/*
 * A series no sample of the window named is dropped, and its place goes
 * to a newcomer that was counted in "other" until then.
 */
START_TEST(test_expire)
{
	struct history *h = history_new(60.);
	char key[16];
	size_t i, j;
	int64_t t = 0;

	history_sample_begin(h, t += 1000);
	for (i = 0; i < HISTORY_MAX_TAGSETS; i++) {
		snprintf(key, sizeof(key), "t%02zu", i);
		history_add_waiting(h, key, 1);
	}
	history_sample_end(h);
	/* t00 keeps waiting; the others stop; a newcomer finds no room. */
	for (j = 1; j < HISTORY_SAMPLES; j++) {
		history_sample_begin(h, t += 1000);
		history_add_waiting(h, "t00", 1);
		history_add_waiting(h, "zz", 5);
		history_sample_end(h);
		ck_assert_uint_eq(history_tagsets(h), HISTORY_MAX_TAGSETS + 1);
	}
	/* The first sample leaves the window: t01 .. t15 go. */
	history_sample_begin(h, t += 1000);
	history_add_waiting(h, "t00", 1);
	history_sample_end(h);
	ck_assert_uint_eq(history_tagsets(h), 2);
	ck_assert_str_eq(history_tagset(h, 0), "t00");
	ck_assert_ptr_null(history_tagset(h, 1));
	ck_assert_uint_eq(
	    history_waiting(h, 1, HISTORY_SAMPLES - 2), 5); /* other */
	/* Now zz has a series of its own. */
	history_sample_begin(h, t += 1000);
	history_add_waiting(h, "t00", 1);
	history_add_waiting(h, "zz", 6);
	history_sample_end(h);
	ck_assert_str_eq(history_tagset(h, 1), "zz");
	ck_assert_uint_eq(history_waiting(h, 1, HISTORY_SAMPLES - 1), 6);
	ck_assert_uint_eq(history_waiting(h, 1, HISTORY_SAMPLES - 2), 0);
	history_free(h);
}
END_TEST

START_TEST(test_pools)
{
	struct history *h = history_new(60.);
	size_t web[HISTORY_NSTATES] = {1, 2, 0, 3, 0, 1};
	size_t idle[HISTORY_NSTATES] = {0};
	size_t k;

	history_sample_begin(h, 1000);
	history_add_pool(h, "web", web);
	history_add_pool(h, "idle", idle);
	history_sample_end(h);
	ck_assert_uint_eq(history_pools(h), 2);
	ck_assert_str_eq(history_pool(h, 0), "idle");
	ck_assert_str_eq(history_pool(h, 1), "web");
	for (k = 0; k < HISTORY_NSTATES; k++) {
		ck_assert_uint_eq(history_resources(h, 1, k, 0), web[k]);
		ck_assert_uint_eq(history_resources(h, 0, k, 0), 0);
	}
	ck_assert_str_eq(history_state_names[HISTORY_TAKEN], "taken");
	history_free(h);
}
END_TEST

START_TEST(test_ready)
{
	struct history *h = history_new(60.);

	history_ready(h, 100);
	history_ready(h, 300);
	history_ready(h, 200);
	history_ready(h, -5); /* a clock step back counts as 0 */
	history_sample_begin(h, 1000);
	history_sample_end(h);
	history_sample_begin(h, 2000);
	history_sample_end(h);
	ck_assert_uint_eq(history_ready_at(h, HISTORY_READY_COUNT, 0), 4);
	ck_assert_uint_eq(history_ready_at(h, HISTORY_READY_P50_MS, 0), 100);
	ck_assert_uint_eq(history_ready_at(h, HISTORY_READY_MAX_MS, 0), 300);
	ck_assert_uint_eq(history_ready_at(h, HISTORY_READY_COUNT, 1), 0);
	ck_assert_uint_eq(history_ready_at(h, HISTORY_READY_MAX_MS, 1), 0);
	history_free(h);
}
END_TEST

/* A burst beyond HISTORY_READY_KEEP: count and max exact, median close. */
START_TEST(test_ready_burst)
{
	struct history *h = history_new(60.);
	uint32_t p50;
	int64_t i, n = 20 * HISTORY_READY_KEEP;

	for (i = 0; i < n; i++)
		history_ready(h, (i * 7919) % n); /* every value once */
	history_sample_begin(h, 1000);
	history_sample_end(h);
	ck_assert_uint_eq(history_ready_at(h, HISTORY_READY_COUNT, 0), n);
	ck_assert_uint_eq(history_ready_at(h, HISTORY_READY_MAX_MS, 0), n - 1);
	p50 = history_ready_at(h, HISTORY_READY_P50_MS, 0);
	ck_assert_uint_gt(p50, n * 4 / 10);
	ck_assert_uint_lt(p50, n * 6 / 10);
	history_free(h);
}
END_TEST

START_TEST(test_svg_steps)
{
	int64_t t[] = {1000, 2000, 3000, 4000, 5000, 6000};
	double a[] = {1, 1, 1, 1, 1, 1};
	double b[] = {0, 2, NAN, 4, 4, 3};
	struct svg_line lines[] = {
	    {"a&b", NULL, a, false},
	    {"<b>", "#123456", b, true},
	};
	struct svg_chart c = {"chart-x", "Title \"x\"", "", "nothing", t, 6,
	    1000, lines, 2};
	char *out = svg_chart(&c), *pa, *pb, *end;

	ck_assert_ptr_nonnull(strstr(out, "<figure class=\"chart\" "
					  "id=\"chart-x\">"));
	ck_assert_ptr_nonnull(strstr(out, "Title &quot;x&quot;"));
	ck_assert_ptr_null(strstr(out, "<b>"));
	/* Line a: one run of equal values, so one move and one segment. */
	pa = strstr(out, "data-series=\"a&amp;b\"");
	ck_assert_ptr_nonnull(pa);
	pa = strstr(pa, " d=\"");
	end = strchr(pa + 4, '"');
	*end = '\0';
	ck_assert_uint_eq(count_str(pa, "M"), 1);
	ck_assert_uint_eq(count_str(pa, "H"), 1);
	ck_assert_uint_eq(count_str(pa, "V"), 0);
	*end = '"';
	ck_assert_uint_eq(count_str(out, "stroke-dasharray"), 1);
	/* Line b: a gap, so two moves; the values change three times. */
	pb = strstr(out, "data-series=\"&lt;b&gt;\"");
	ck_assert_ptr_nonnull(pb);
	ck_assert_ptr_nonnull(strstr(pb, "stroke=\"#123456\""));
	ck_assert_ptr_nonnull(strstr(pb, "stroke-dasharray"));
	pb = strstr(pb, " d=\"");
	end = strchr(pb + 4, '"');
	*end = '\0';
	ck_assert_uint_eq(count_str(pb, "M"), 2);
	ck_assert_uint_eq(count_str(pb, "V"), 2);
	*end = '"';
	/* The top of the value axis: 4 rounded up is 5. */
	ck_assert_ptr_nonnull(strstr(out, ">5</text>"));
	ck_assert_ptr_nonnull(strstr(out, "<li><span class=\"swatch\" "
					  "style=\"background:#123456\">"
					  "</span>&lt;b&gt;</li>"));
	ck_assert_ptr_null(strstr(out, "nothing"));
	free(out);
}
END_TEST

START_TEST(test_svg_empty)
{
	struct svg_chart c = {"e", "Empty", "", "no ticket waited", NULL, 0,
	    60000, NULL, 0};
	char *out = svg_chart(&c);

	ck_assert_ptr_nonnull(strstr(out, "no ticket waited"));
	ck_assert_ptr_null(strstr(out, "class=\"series\""));
	ck_assert_ptr_nonnull(strstr(out, "</svg>"));
	free(out);
}
END_TEST

static Suite *
history_suite(void)
{
	Suite *s = suite_create("history");
	TCase *tc = tcase_create("history");

	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_wrap);
	tcase_add_test(tc, test_late_series_and_sum);
	tcase_add_test(tc, test_cap_other);
	tcase_add_test(tc, test_expire);
	tcase_add_test(tc, test_pools);
	tcase_add_test(tc, test_ready);
	tcase_add_test(tc, test_ready_burst);
	tcase_add_test(tc, test_svg_steps);
	tcase_add_test(tc, test_svg_empty);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(history_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
