// module: common
// Fuzz target for the wire decoder: any bytes must decode or be refused
// without a crash, leak or sanitizer report; what decodes must re-encode
// to a message that decodes equal (and encodes to the same bytes).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"
#include "tests/unit/common/wire_samples.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wf_msg a, b;
	char err[256];
	wf_err pre = wf_wire_precheck(data, size);
	wf_err e = wf_wire_decode(data, size, &a, err, sizeof(err));
	// The decoder never accepts what the pre-check refuses.
	if (pre != WF_EOK && e == WF_EOK)
		abort();
	if (e != WF_EOK) {
		if (err[0] == '\0')
			abort();
		return 0;
	}
	msgpack_sbuffer sb1, sb2;
	msgpack_sbuffer_init(&sb1);
	sample_encode(&sb1, &a);
	if (wf_wire_decode(sb1.data, sb1.size, &b, err, sizeof(err)) != WF_EOK)
		abort();
	if (!sample_msg_equal(&a, &b))
		abort();
	msgpack_sbuffer_init(&sb2);
	sample_encode(&sb2, &b);
	if (sb1.size != sb2.size || memcmp(sb1.data, sb2.data, sb1.size) != 0)
		abort();
	wf_msg_free(&a);
	wf_msg_free(&b);
	msgpack_sbuffer_destroy(&sb1);
	msgpack_sbuffer_destroy(&sb2);
	return 0;
}
