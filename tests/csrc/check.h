/* check.h - minimal assertion helpers for the C test programs (run under ASan/UBSan). */
#ifndef CALLBOX_CHECK_H
#define CALLBOX_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                   \
	do {                                                                          \
		check_count++;                                                        \
		if (!(cond)) {                                                        \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			check_failures++;                                             \
		}                                                                     \
	} while (0)

#define CHECK_EQ(a, b)                                                                \
	do {                                                                          \
		long long va_ = (long long)(a), vb_ = (long long)(b);                 \
		check_count++;                                                        \
		if (va_ != vb_) {                                                     \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s = %lld, %s = %lld\n", \
				__FILE__, __LINE__, #a, va_, #b, vb_);                \
			check_failures++;                                             \
		}                                                                     \
	} while (0)

#define RUN(test)                                                                     \
	do {                                                                          \
		int before_ = check_failures;                                         \
		test();                                                               \
		printf("%s %s\n", check_failures == before_ ? "ok  " : "FAIL", #test); \
	} while (0)

static inline int check_done(void)
{
	printf("%d checks, %d failed\n", check_count, check_failures);
	return check_failures ? 1 : 0;
}

#endif
