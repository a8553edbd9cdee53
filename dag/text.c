// Small text helpers of dag/ (dag/text_int.h).
#include <string.h>

#include "dag/text_int.h"

const char *
wf_text_shown(char *buf, size_t cap, const char *s, size_t n)
{
	size_t max = cap - 4, o = 0, i = 0;
	for (; i < n && o < max; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (i < n) {
		// Cut on a character boundary, not inside a UTF-8 sequence.
		while (o > 0 && ((unsigned char)buf[o - 1] & 0xc0) == 0x80)
			o--;
		if (o > 0 && ((unsigned char)buf[o - 1] & 0xc0) == 0xc0)
			o--;
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}
