// wf_url_check: the addresses weft accepts from users, and the one-line
// reason for those it does not.
#include <string.h>

#include "common/url.h"
#include "tests/unit/wf_test.h"

static bool
ok(const char *url, bool listen)
{
	char why[256] = "";
	bool r = wf_url_check(url, listen, why, sizeof why);
	ck_assert_msg(r == (why[0] == '\0'), "%s: why '%s'", url, why);
	return r;
}

static void
refused(const char *url, bool listen, const char *says)
{
	char why[256] = "";
	ck_assert_msg(!wf_url_check(url, listen, why, sizeof why), "%s", url);
	ck_assert_msg(strstr(why, says) != NULL, "%s: '%s' lacks '%s'", url,
		why, says);
	ck_assert(strchr(why, '\n') == NULL);
}

START_TEST(accepted)
{
	const char *both[] = {
		"tcp://127.0.0.1:7070", "tcp://sched.example:1",
		"tcp4://10.0.0.1:65535", "tcp6://[::1]:7070",
		"tcp://[fe80::1%eth0]:7070", "tls+tcp://host:7443",
		"tls+tcp6://[::1]:7443", "ipc:///tmp/weft.sock",
		"ipc://relative.sock", "abstract://weft", "inproc://x",
	};
	for (size_t i = 0; i < sizeof both / sizeof both[0]; i++) {
		ck_assert_msg(ok(both[i], false), "%s", both[i]);
		ck_assert_msg(ok(both[i], true), "%s", both[i]);
	}
	// Only a listener may ask for any port, or every address.
	ck_assert(ok("tcp://127.0.0.1:0", true));
	ck_assert(ok("tcp://:7070", true));
	ck_assert(ok("tcp://*:7070", true));
}
END_TEST

START_TEST(refused_with_a_reason)
{
	refused("bogus", false, "not an address");
	refused("127.0.0.1:7070", false, "not an address");
	refused("http://host:80", false, "unknown transport 'http://'");
	refused("tls://host:80", true, "unknown transport 'tls://'");
	refused("tcp://127.0.0.1", false, "no port");
	refused("tcp://[::1]", false, "no port");
	refused("tcp://[::1", false, "no port");
	refused("tcp://127.0.0.1:notaport", false, "port 'notaport'");
	refused("tcp://127.0.0.1:70000", true, "from 0 to 65535");
	refused("tcp://127.0.0.1:7070/", false, "port '7070/'");
	refused("tcp://127.0.0.1:", false, "port ''");
	refused("tcp://127.0.0.1:0", false, "from 1 to 65535");
	refused("tcp://:7070", false, "no host");
	refused("tcp://*:7070", false, "no host");
	refused("ipc://", false, "no path after ipc://");
	refused("", false, "not an address");
}
END_TEST

static Suite *
url_suite(void)
{
	Suite *s = suite_create("url");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, accepted);
	tcase_add_test(tc, refused_with_a_reason);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(url_suite)
