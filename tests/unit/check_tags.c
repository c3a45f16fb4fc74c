/*
 * Unit tests of tags: the tag and sandbox character sets, and canonical
 * tag-set keys (sorted, de-duplicated, '+'-joined) with their inverse.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tags.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(test_tag_valid)
{
	static const char *const good[] = { "a", "x86_64", "arch=x86_64",
		"Fedora:39", "copr.builder", "a-b", "_x", "0", "memory=64" };
	static const char *const bad[] = { "", ".hidden", "-flag", "a b",
		"a+b", "a/b", "a*", "a#", "$HOME", "a'b", "a\"b", "a;b",
		"tag\n", "\xc3\xa9t\xc3\xa9", "a,b" };
	char longest[TAG_MAX_LEN + 2];
	size_t i;

	for (i = 0; i < NELEM(good); i++)
		ck_assert_msg(tag_valid(good[i]), "\"%s\" refused", good[i]);
	for (i = 0; i < NELEM(bad); i++)
		ck_assert_msg(!tag_valid(bad[i]), "\"%s\" accepted", bad[i]);
	ck_assert(!tag_valid(NULL));

	memset(longest, 'a', sizeof(longest));
	longest[TAG_MAX_LEN] = '\0';
	ck_assert(tag_valid(longest));
	longest[TAG_MAX_LEN] = 'a';
	longest[TAG_MAX_LEN + 1] = '\0';
	ck_assert(!tag_valid(longest));
}
END_TEST

START_TEST(test_sandbox_valid)
{
	static const char *const good[] = { "a", "user/project--chroot",
		"copr:alice/proj:pr:12", "a+b=c", "x@y.z", "~", "{}" };
	static const char *const bad[] = { "", "a b", "a\tb", "a'b",
		"a\"b", "a\\b", "a`b", "$x", "a\nb", "\x7f", "\xc3\xa9" };
	char sandbox[130];
	size_t i;

	for (i = 0; i < NELEM(good); i++)
		ck_assert_msg(sandbox_valid(good[i]), "\"%s\" refused",
		    good[i]);
	for (i = 0; i < NELEM(bad); i++)
		ck_assert_msg(!sandbox_valid(bad[i]), "\"%s\" accepted",
		    bad[i]);
	ck_assert(!sandbox_valid(NULL));

	memset(sandbox, 'x', sizeof(sandbox));
	sandbox[128] = '\0';
	ck_assert(sandbox_valid(sandbox));
	sandbox[128] = 'x';
	sandbox[129] = '\0';
	ck_assert(!sandbox_valid(sandbox));
}
END_TEST

/* The key of TAGS, or NULL; *bad as tagset_key leaves it. */
static char *
key_of(const char *const *tags, size_t n, const char **bad)
{
	return tagset_key((char *const *)tags, n, bad);
}

START_TEST(test_tagset_key_sorted)
{
	const char *tags[] = { "x86_64", "beefy", "arch=x86_64", "Zed" };
	const char *bad = "unset";
	char *key;

	key = key_of(tags, NELEM(tags), &bad);
	ck_assert_ptr_nonnull(key);
	ck_assert_ptr_null(bad);
	/* byte order: upper case before '=' ... before lower case */
	ck_assert_str_eq(key, "Zed+arch=x86_64+beefy+x86_64");
	free(key);

	/* The same set in any order has the same key. */
	{
		const char *again[] = { "beefy", "Zed", "x86_64",
			"arch=x86_64" };

		key = key_of(again, NELEM(again), &bad);
		ck_assert_str_eq(key, "Zed+arch=x86_64+beefy+x86_64");
		free(key);
	}

	/* one tag */
	{
		const char *one[] = { "solo" };

		key = key_of(one, 1, &bad);
		ck_assert_str_eq(key, "solo");
		free(key);
	}
}
END_TEST

START_TEST(test_tagset_key_dedup)
{
	const char *tags[] = { "b", "a", "b", "c", "a", "b" };
	const char *same[] = { "dup", "dup", "dup" };
	const char *bad;
	char *key;

	key = key_of(tags, NELEM(tags), &bad);
	ck_assert_str_eq(key, "a+b+c");
	free(key);
	key = key_of(same, NELEM(same), &bad);
	ck_assert_str_eq(key, "dup");
	free(key);
}
END_TEST

START_TEST(test_tagset_key_invalid)
{
	const char *tags[] = { "good", "not good", "also bad/" };
	const char *bad = NULL;

	ck_assert_ptr_null(key_of(tags, NELEM(tags), &bad));
	/* the first invalid one, borrowed from the caller's array */
	ck_assert_ptr_eq(bad, tags[1]);

	{
		const char *plus[] = { "a+b" };

		ck_assert_ptr_null(key_of(plus, 1, &bad));
		ck_assert_ptr_eq(bad, plus[0]);
	}
}
END_TEST

START_TEST(test_tagset_key_empty)
{
	const char *bad = "unset";

	ck_assert_ptr_null(tagset_key(NULL, 0, &bad));
	ck_assert_ptr_null(bad);
}
END_TEST

START_TEST(test_tagset_key_too_many)
{
	char names[TAGSET_MAX_TAGS + 1][8];
	const char *tags[TAGSET_MAX_TAGS + 1];
	const char *bad = "unset";
	char *key, **split;
	size_t i, n;

	for (i = 0; i < NELEM(tags); i++) {
		snprintf(names[i], sizeof(names[i]), "t%02zu", i);
		tags[i] = names[i];
	}
	ck_assert_ptr_null(key_of(tags, TAGSET_MAX_TAGS + 1, &bad));
	ck_assert_ptr_null(bad);

	/* exactly the maximum is fine */
	key = key_of(tags, TAGSET_MAX_TAGS, &bad);
	ck_assert_ptr_nonnull(key);
	ck_assert_int_eq(tagset_split(key, &split, &n), 0);
	ck_assert_uint_eq(n, TAGSET_MAX_TAGS);
	tagset_free_list(split, n);
	free(key);
}
END_TEST

/* Numeric requirements have one form: leading zeros do not make a new
 * tag set (nor a key past what a queue name can hold). */
START_TEST(test_tagset_key_numeric_canonical)
{
	const char *a[] = { "memory>=0032", "x86_64" };
	const char *b[] = { "x86_64", "memory>=32" };
	const char *zero[] = { "disk<=-000" };
	const char *bad;
	char *ka, *kb, *kz;

	ka = key_of(a, NELEM(a), &bad);
	kb = key_of(b, NELEM(b), &bad);
	ck_assert_ptr_nonnull(ka);
	ck_assert_str_eq(ka, "memory>=32+x86_64");
	ck_assert_str_eq(ka, kb);
	kz = key_of(zero, NELEM(zero), &bad);
	ck_assert_str_eq(kz, "disk<=0");
	free(ka);
	free(kb);
	free(kz);

	/* a requirement is NAME OP INTEGER, and the integer fits */
	ck_assert(tag_valid("memory>=000000000000000000000000000000000001"));
	ck_assert(!tag_valid("memory>=1234567890123456789"));
	ck_assert(!tag_valid("memory>=32x"));
	ck_assert(!tag_valid(">=32"));
	ck_assert(!tag_valid("a=b>=3"));
	ck_assert(!tag_valid("memory>="));
	ck_assert(!tag_valid("memory>=-"));
	ck_assert(tag_valid("memory<-5"));
}
END_TEST

/* Zero-padded requirements once made a key longer than an AMQP queue
 * name may be; every key now stays within TAGSET_KEY_MAX. */
START_TEST(test_tagset_key_bounded)
{
	char names[TAGSET_MAX_TAGS][TAG_MAX_LEN + 1];
	const char *tags[TAGSET_MAX_TAGS];
	const char *bad = "unset";
	char *key;
	size_t i;

	for (i = 0; i < NELEM(tags); i++) {
		snprintf(names[i], sizeof(names[i]), "m%02zu>=%053d", i, 1);
		ck_assert(tag_valid(names[i]));
		tags[i] = names[i];
	}
	/* canonical, 32 tags of "mNN>=1" make a key of 223 bytes: refused */
	ck_assert_ptr_null(key_of(tags, NELEM(tags), &bad));
	ck_assert_ptr_null(bad);
	/* 28 of them (195 bytes) are fine */
	key = key_of(tags, 28, &bad);
	ck_assert_ptr_nonnull(key);
	ck_assert_uint_le(strlen(key), TAGSET_KEY_MAX);
	free(key);

	for (i = 0; i < 4; i++) {
		memset(names[i], 'a' + (int)i, TAG_MAX_LEN);
		names[i][TAG_MAX_LEN] = '\0';
		tags[i] = names[i];
	}
	ck_assert_ptr_null(key_of(tags, 4, &bad));
	ck_assert_ptr_nonnull(key = key_of(tags, 3, &bad));
	free(key);
}
END_TEST

START_TEST(test_tagset_split_round_trip)
{
	const char *tags[] = { "x86_64", "beefy", "x86_64", "arch=x86_64",
		"os:fedora-39" };
	const char *bad;
	char *key, *again, **split;
	size_t n;

	key = key_of(tags, NELEM(tags), &bad);
	ck_assert_ptr_nonnull(key);
	ck_assert_int_eq(tagset_split(key, &split, &n), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_str_eq(split[0], "arch=x86_64");
	ck_assert_str_eq(split[1], "beefy");
	ck_assert_str_eq(split[2], "os:fedora-39");
	ck_assert_str_eq(split[3], "x86_64");
	/* the split tags give back the same key */
	again = tagset_key(split, n, &bad);
	ck_assert_str_eq(again, key);
	free(again);
	tagset_free_list(split, n);
	free(key);

	ck_assert_int_eq(tagset_split("single", &split, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(split[0], "single");
	tagset_free_list(split, n);
}
END_TEST

START_TEST(test_tagset_split_bad)
{
	static const char *const bad[] = { "", "+", "a+", "+a", "a++b",
		"a+b c", "a+.b", "a/b" };
	char **split = (char **)&split;
	size_t i, n = 99;

	for (i = 0; i < NELEM(bad); i++) {
		ck_assert_msg(tagset_split(bad[i], &split, &n) == -1,
		    "\"%s\" split", bad[i]);
		ck_assert_ptr_null(split);
		ck_assert_uint_eq(n, 0);
	}
	ck_assert_int_eq(tagset_split(NULL, &split, &n), -1);
}
END_TEST

START_TEST(test_tagset_split_too_many)
{
	char key[(TAGSET_MAX_TAGS + 1) * 4 + 1];
	char **split;
	size_t i, n, len = 0;

	for (i = 0; i <= TAGSET_MAX_TAGS; i++)
		len += (size_t)snprintf(key + len, sizeof(key) - len, "%s%02zu",
		    i > 0 ? "+" : "", i);
	ck_assert_int_eq(tagset_split(key, &split, &n), -1);
}
END_TEST

static Suite *
tags_suite(void)
{
	Suite *s = suite_create("tags");
	TCase *tc = tcase_create("tags");

	tcase_add_test(tc, test_tag_valid);
	tcase_add_test(tc, test_sandbox_valid);
	tcase_add_test(tc, test_tagset_key_sorted);
	tcase_add_test(tc, test_tagset_key_dedup);
	tcase_add_test(tc, test_tagset_key_invalid);
	tcase_add_test(tc, test_tagset_key_empty);
	tcase_add_test(tc, test_tagset_key_too_many);
	tcase_add_test(tc, test_tagset_key_numeric_canonical);
	tcase_add_test(tc, test_tagset_key_bounded);
	tcase_add_test(tc, test_tagset_split_round_trip);
	tcase_add_test(tc, test_tagset_split_bad);
	tcase_add_test(tc, test_tagset_split_too_many);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(tags_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
