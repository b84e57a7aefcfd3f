/* g711.c - G.711 A-law (segment/mantissa coding of the 13-bit magnitude, even bits inverted). */
#include "g711.h"

static int16_t dec_tab[256];
static uint8_t enc_tab[8192];   /* indexed by the 13-bit linear value + 4096 */
static int ready;

static uint8_t encode13(int pcm)
{
	int mask;
	if (pcm >= 0) {
		mask = 0xD5;
	} else {
		mask = 0x55;
		pcm = -pcm - 1;
	}
	int seg = 0;
	while (seg < 8 && pcm > (0x20 << seg) - 1)
		seg++;
	if (seg >= 8)
		return (uint8_t)(0x7F ^ mask);
	int aval = seg << 4;
	aval |= seg < 2 ? (pcm >> 1) & 0xF : (pcm >> seg) & 0xF;
	return (uint8_t)(aval ^ mask);
}

static int16_t decode(uint8_t a)
{
	a ^= 0x55;
	int t = (a & 0xF) << 4;
	int seg = (a & 0x70) >> 4;
	if (seg == 0)
		t += 8;
	else if (seg == 1)
		t += 0x108;
	else
		t = (t + 0x108) << (seg - 1);
	return (int16_t)((a & 0x80) ? t : -t);
}

void cb_g711_init(void)
{
	if (ready)
		return;
	for (int i = 0; i < 256; i++)
		dec_tab[i] = decode((uint8_t)i);
	for (int i = 0; i < 8192; i++)
		enc_tab[i] = encode13(i - 4096);
	ready = 1;
}

uint8_t cb_alaw_encode(int16_t s)
{
	return enc_tab[(s >> 3) + 4096];
}

int16_t cb_alaw_decode(uint8_t a)
{
	return dec_tab[a];
}
