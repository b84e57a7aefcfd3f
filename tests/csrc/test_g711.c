/* test_g711.c - the FXO codec model's A-law against spandsp's G.711 (all 65536 inputs, all 256 codes). */
#include <spandsp.h>

#include "check.h"
#include "g711.h"

static void test_against_spandsp(void)
{
	cb_g711_init();
	int bad = 0;
	for (int s = -32768; s < 32768; s++)
		bad += cb_alaw_encode((int16_t)s) != linear_to_alaw(s);
	CHECK_EQ(bad, 0);
	bad = 0;
	for (int a = 0; a < 256; a++)
		bad += cb_alaw_decode((uint8_t)a) != alaw_to_linear((uint8_t)a);
	CHECK_EQ(bad, 0);
	CHECK_EQ(cb_alaw_encode(0), 0xD5);
}

int main(void)
{
	RUN(test_against_spandsp);
	return check_done();
}
