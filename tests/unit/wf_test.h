// Shared scaffolding for the C unit tests: Check runs each test in its own
// forked child with a timeout (CK_DEFAULT_TIMEOUT), so a crash or a hang
// fails one test, not the binary.
#ifndef WF_TEST_H
#define WF_TEST_H

#include <check.h>
#include <stdlib.h>

// WF_TEST_MAIN(make_suite) defines main(): runs the suite in fork mode and
// exits non-zero when any test failed. make_suite returns a Suite *.
#define WF_TEST_MAIN(make_suite)                                        \
	int main(void)                                                  \
	{                                                               \
		SRunner *sr = srunner_create(make_suite());             \
		srunner_set_fork_status(sr, CK_FORK);                   \
		srunner_run_all(sr, CK_NORMAL);                         \
		int nfail = srunner_ntests_failed(sr);                  \
		srunner_free(sr);                                       \
		return nfail == 0 ? EXIT_SUCCESS : EXIT_FAILURE;        \
	}

// WF_SHARED is the path of the shared/ folder beside the checkout (tests/run
// exports it); tests that read ../shared/workloads use it.
static inline const char *
wf_test_shared_dir(void)
{
	const char *s = getenv("WEFT_SHARED");
	return s != NULL ? s : "../shared";
}

#endif
