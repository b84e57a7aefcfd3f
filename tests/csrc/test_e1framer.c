/* test_e1framer.c - the E1 framer model against itself and against hand-made bit streams. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "e1framer.h"
#include "e1framer_int.h"
#include "e1regs.h"

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* n frames both ways between a and b (a -> b and b -> a), optional payloads out of b */
static void link_run(e1f_t *a, e1f_t *b, int n)
{
	uint8_t fa[32], fb[32];
	for (int i = 0; i < n; i++) {
		e1f_tx(a, NULL, fa, 1);
		e1f_tx(b, NULL, fb, 1);
		e1f_rx(b, fa, NULL, 1);
		e1f_rx(a, fb, NULL, 1);
	}
}

static void pair(e1f_t **a, e1f_t **b, int cas, int crc4)
{
	struct e1f_config cfg = { .cas = (uint8_t)cas, .crc4 = (uint8_t)crc4, .hdb3 = 1, .auto_rai = 1 };
	*a = e1f_new();
	*b = e1f_new();
	e1f_configure(*a, &cfg);
	e1f_configure(*b, &cfg);
}

static void test_crc_tables(void)
{
	/* CRC-4 table against the bitwise definition on random data */
	for (int t = 0; t < 50; t++) {
		uint8_t d[64];
		for (int i = 0; i < 64; i++)
			d[i] = (uint8_t)rnd();
		unsigned crc_bit = 0;
		for (int i = 0; i < 64; i++)
			for (int b = 7; b >= 0; b--) {
				unsigned fb = ((crc_bit >> 3) ^ (d[i] >> b)) & 1u;
				crc_bit = (crc_bit << 1) & 0xF;
				if (fb)
					crc_bit ^= 3;
			}
		/* through the framer: the CRC-4 of a frame stream, via a pair, is checked
		 * end-to-end below; here: bitwise vs an independent polynomial division */
		unsigned rem = 0;
		for (int i = 0; i < 64; i++)
			for (int b = 7; b >= 0; b--) {
				rem = (rem << 1) | ((d[i] >> b) & 1u);
				if (rem & 0x10)
					rem ^= 0x13;
			}
		for (int k = 0; k < 4; k++) {   /* times x^4 */
			rem <<= 1;
			if (rem & 0x10)
				rem ^= 0x13;
		}
		CHECK_EQ(crc_bit, rem);
	}
}

static void test_crc4_fast_vs_serial(void)
{
	for (int t = 0; t < 2000; t++) {
		uint8_t fr[32];
		for (int i = 0; i < 32; i++)
			fr[i] = (uint8_t)rnd();
		uint8_t crc = (uint8_t)(rnd() & 0xF);
		int fas = (int)(rnd() & 1);
		CHECK_EQ(e1f_crc4_frame_fast(crc, fr, fas), e1f_crc4_frame_serial(crc, fr, fas));
	}
}

/* G.704 2.3.3.5 by hand: the C bits of each sub-multiframe are the remainder of the previous
 * sub-multiframe (C bits as 0) times x^4 divided by x^4 + x + 1 - independent of the framer. */
static void test_crc4_c_bits_independent(void)
{
	e1f_t *a = e1f_new();
	uint8_t fr[48][32];
	uint8_t pl[32];
	for (int f = 0; f < 48; f++) {
		for (int i = 0; i < 32; i++)
			pl[i] = (uint8_t)rnd();
		e1f_tx(a, pl, fr[f], 1);
	}
	int checked = 0;
	for (int smf = 0; smf + 1 < 6; smf++) {
		unsigned rem = 0;
		for (int f = 8 * smf; f < 8 * smf + 8; f++)
			for (int i = 0; i < 32; i++) {
				uint8_t o = fr[f][i];
				if (i == 0 && !(f & 1))
					o &= 0x7F;
				for (int b = 7; b >= 0; b--) {
					rem = (rem << 1) | ((o >> b) & 1u);
					if (rem & 0x10)
						rem ^= 0x13;
				}
			}
		for (int k = 0; k < 4; k++) {
			rem <<= 1;
			if (rem & 0x10)
				rem ^= 0x13;
		}
		unsigned c = 0;
		for (int k = 0; k < 4; k++)
			c = (c << 1) | (fr[8 * (smf + 1) + 2 * k][0] >> 7);
		CHECK_EQ(c, rem);
		checked++;
	}
	CHECK_EQ(checked, 5);
	/* the multiframe alignment signal and E bits as G.704 table 5B has them */
	for (int m = 0; m < 3; m++) {
		unsigned si = 0;
		for (int f = 1; f < 16; f += 2)
			si = (si << 1) | (fr[16 * m + f][0] >> 7);
		CHECK_EQ(si, 0x2F);   /* 001011 E1 E2 with E = 1 */
		CHECK_EQ(fr[16 * m][0] & 0x7F, 0x1B);
		CHECK_EQ(fr[16 * m + 1][0] & 0x40, 0x40);
	}
	e1f_free(a);
}

/* An independent HDLC decoder on the TS16 octets: first bit = MSB, zero deletion, octets
 * LSB first; the FCS of "123456789" must be 0x906E (CRC-16/X-25 check value), low octet first. */
static void test_hdlc_bits_independent(void)
{
	e1f_t *a = e1f_new();
	struct e1f_config cfg = { .crc4 = 1 };
	e1f_configure(a, &cfg);
	CHECK_EQ(e1f_hdlc_send(a, (const uint8_t *)"123456789", 9), 0);
	uint8_t out[32];
	uint8_t dec[64];
	int n = 0, ones = 0, acc = 0, accn = 0, inframe = 0, done = 0;
	for (int f = 0; f < 64 && !done; f++) {
		e1f_tx(a, NULL, out, 1);
		for (int b = 7; b >= 0 && !done; b--) {
			int bit = (out[16] >> b) & 1;
			if (bit) {
				ones++;
			} else {
				if (ones == 6) {           /* flag */
					if (inframe && n > 0) {
						done = 1;
						break;
					}
					inframe = 1;
					n = acc = accn = ones = 0;
					continue;
				}
				if (ones == 5) {           /* stuffed */
					ones = 0;
					continue;
				}
				ones = 0;
			}
			if (!inframe)
				continue;
			acc |= bit << accn;
			if (++accn == 8) {
				if (n < 64)
					dec[n++] = (uint8_t)acc;
				acc = accn = 0;
			}
		}
	}
	CHECK(done);
	CHECK_EQ(n, 11);
	CHECK(memcmp(dec, "123456789", 9) == 0);
	CHECK_EQ(dec[9], 0x6E);
	CHECK_EQ(dec[10], 0x90);
	e1f_free(a);
}

static void test_cold_start_alignment(void)
{
	e1f_t *a, *b;
	pair(&a, &b, 0, 1);
	link_run(a, b, 3);
	CHECK(e1f_status_raw(b) & E1ST_LOF);        /* needs FAS, NFAS, FAS + an octet */
	link_run(a, b, 2);
	CHECK(b->aligned);                           /* frame alignment found ... */
	CHECK(e1f_status_raw(b) & E1ST_LOF);        /* ... confirmed by the CRC-4 multiframe (G.706 4.2) */
	link_run(a, b, 40);
	CHECK(!(e1f_status_raw(b) & E1ST_LOF));
	link_run(a, b, 24);
	CHECK_EQ(e1f_status_raw(b) & (E1ST_LOF | E1ST_LMFA | E1ST_LOS | E1ST_AIS | E1ST_RAI), 0);
	link_run(a, b, 8000);
	struct e1_counters c;
	e1f_counters(b, &c);
	CHECK_EQ(c.crc_errors, 0);
	CHECK_EQ(c.fas_errors, 0);
	CHECK_EQ(c.febe, 0);
	e1f_counters(a, &c);
	CHECK_EQ(c.crc_errors, 0);
	CHECK_EQ(c.febe, 0);
	CHECK_EQ(e1f_status(b), 0);
	e1f_free(a);
	e1f_free(b);
}

/* a -> b through a bit shifter that can slip the stream by k bits at any time */
struct shifter {
	uint8_t carry;
	int k;
};

static void shift_frame(struct shifter *s, const uint8_t *in, uint8_t *out)
{
	if (s->k == 0) {
		memcpy(out, in, 32);
		return;
	}
	for (int i = 0; i < 32; i++) {
		out[i] = (uint8_t)((s->carry << (8 - s->k)) | (in[i] >> s->k));
		s->carry = (uint8_t)(in[i] & ((1u << s->k) - 1));
	}
}

static void test_shift_realignment(void)
{
	for (int k = 1; k < 8; k++) {
		for (int octets = 0; octets < 3; octets++) {
			e1f_t *a, *b;
			pair(&a, &b, 0, 1);
			struct shifter sh = { 0, 0 };
			uint8_t fa[32], fs[32];
			for (int i = 0; i < 200; i++) {
				e1f_tx(a, NULL, fa, 1);
				e1f_rx(b, fa, NULL, 1);
			}
			CHECK_EQ(e1f_status_raw(b) & (E1ST_LOF | E1ST_LMFA), 0);
			/* drop `octets` octets and shift by k bits from now on */
			sh.k = k;
			uint8_t hold[64];
			int hn = 0;
			for (int i = 0; i < 200; i++) {
				e1f_tx(a, NULL, fa, 1);
				memcpy(hold + hn, fa, 32);
				hn += 32;
				if (i == 0) {
					memmove(hold, hold + octets, (size_t)(hn - octets));
					hn -= octets;
				}
				if (hn >= 32) {
					shift_frame(&sh, hold, fs);
					memmove(hold, hold + 32, (size_t)(hn - 32));
					hn -= 32;
					e1f_rx(b, fs, NULL, 1);
				}
			}
			struct e1_counters c;
			e1f_counters(b, &c);
			CHECK(c.fas_errors >= 3);
			CHECK_EQ(e1f_status_raw(b) & (E1ST_LOF | E1ST_LMFA), 0);
			uint32_t crc_before = c.crc_errors;
			for (int i = 0; i < 4000; i++) {
				e1f_tx(a, NULL, fa, 1);
				memcpy(hold + hn, fa, 32);
				hn += 32;
				shift_frame(&sh, hold, fs);
				memmove(hold, hold + 32, (size_t)(hn - 32));
				hn -= 32;
				e1f_rx(b, fs, NULL, 1);
			}
			e1f_counters(b, &c);
			CHECK_EQ(c.crc_errors, crc_before);
			e1f_free(a);
			e1f_free(b);
		}
	}
}

static void test_lof_and_recovery(void)
{
	e1f_t *a, *b;
	pair(&a, &b, 0, 1);
	link_run(a, b, 100);
	/* two consecutive errored FAS words: still aligned */
	e1f_inject(a, E1INJ_FAS);
	link_run(a, b, 2);
	e1f_inject(a, E1INJ_FAS);
	link_run(a, b, 2);
	CHECK(!(e1f_status_raw(b) & E1ST_LOF));
	link_run(a, b, 10);
	/* three consecutive: LOF */
	for (int i = 0; i < 3; i++) {
		e1f_inject(a, E1INJ_FAS);
		link_run(a, b, 2);
	}
	CHECK(e1f_status_raw(b) & E1ST_LOF);
	/* b reports RAI back to a automatically */
	link_run(a, b, 4);
	CHECK(e1f_status_raw(a) & E1ST_RAI);
	link_run(a, b, 40);
	CHECK(!(e1f_status_raw(b) & E1ST_LOF));
	struct e1_counters c;
	e1f_counters(b, &c);
	CHECK_EQ(c.fas_errors, 5);
	/* LOF for longer than 2.5 s: red; then 5 s to clear */
	e1f_tx_alarms(a, 0);
	uint8_t fa[32], fb[32];
	int red_at = -1, clear_at = -1;
	for (int i = 0; i < 8000 * 9; i++) {
		e1f_tx(a, NULL, fa, 1);
		if (i < 8000 * 3)
			fa[0] ^= 0x02;          /* every FAS and NFAS errored: no alignment */
		e1f_rx(b, fa, NULL, 1);
		e1f_tx(b, NULL, fb, 1);
		e1f_rx(a, fb, NULL, 1);
		if (red_at < 0 && (e1f_status(b) & E1DB_RED))
			red_at = i;
		if (red_at >= 0 && clear_at < 0 && !(e1f_status(b) & E1DB_RED))
			clear_at = i;
	}
	CHECK(red_at >= 20000 && red_at <= 20010);
	CHECK(clear_at >= 24000 + 40000 && clear_at <= 24000 + 40100);
	CHECK(e1f_status(b) == 0);
	e1f_free(a);
	e1f_free(b);
}

static void test_crc_errors_and_ebits(void)
{
	e1f_t *a, *b;
	pair(&a, &b, 0, 1);
	link_run(a, b, 200);
	struct e1_counters ca, cb;
	for (int i = 0; i < 7; i++) {
		e1f_inject(a, E1INJ_CRC);
		link_run(a, b, 40);
	}
	link_run(a, b, 200);
	e1f_counters(b, &cb);
	e1f_counters(a, &ca);
	CHECK_EQ(cb.crc_errors, 7);
	CHECK_EQ(ca.febe, 7);
	CHECK_EQ(ca.crc_errors, 0);
	/* bit errors in the payload are CRC errors too */
	for (int i = 0; i < 5; i++) {
		e1f_inject(a, E1INJ_BIT);
		link_run(a, b, 40);
	}
	link_run(a, b, 100);
	e1f_counters(b, &cb);
	e1f_counters(a, &ca);
	CHECK_EQ(cb.crc_errors, 12);
	CHECK_EQ(ca.febe, 12);
	CHECK_EQ(cb.errored_seconds, 0);
	link_run(a, b, 8000);
	e1f_counters(b, &cb);
	CHECK_EQ(cb.errored_seconds, 1);
	e1f_free(a);
	e1f_free(b);
}

static void test_ais_rai_los(void)
{
	e1f_t *a, *b;
	pair(&a, &b, 0, 1);
	link_run(a, b, 200);
	/* AIS */
	e1f_tx_alarms(a, E1TXA_AIS);
	link_run(a, b, 8);
	CHECK(e1f_status_raw(b) & E1ST_AIS);
	link_run(a, b, 20000);
	CHECK(e1f_status(b) & E1DB_BLUE);
	CHECK(!(e1f_status(b) & E1DB_RED));
	CHECK(e1f_status(a) & E1DB_YELLOW);          /* b sends RAI while in AIS */
	e1f_tx_alarms(a, 0);
	link_run(a, b, 8);
	CHECK(!(e1f_status_raw(b) & E1ST_AIS));
	link_run(a, b, 39990);
	CHECK(e1f_status(b) & E1DB_BLUE);
	link_run(a, b, 20);
	CHECK(!(e1f_status(b) & E1DB_BLUE));
	/* RAI */
	link_run(a, b, 40000);
	CHECK_EQ(e1f_status(a), 0);
	e1f_tx_alarms(a, E1TXA_RAI);
	link_run(a, b, 5);
	CHECK(e1f_status_raw(b) & E1ST_RAI);
	link_run(a, b, 3990);
	CHECK(!(e1f_status(b) & E1DB_YELLOW));
	link_run(a, b, 20);
	CHECK(e1f_status(b) & E1DB_YELLOW);
	e1f_tx_alarms(a, 0);
	link_run(a, b, 40010);
	CHECK(!(e1f_status(b) & E1DB_YELLOW));
	/* LOS: cable pulled */
	e1f_idle(b, 199);
	CHECK(!(e1f_status_raw(b) & E1ST_LOS));
	e1f_idle(b, 1);
	CHECK(e1f_status_raw(b) & E1ST_LOS);
	CHECK(e1f_status_raw(b) & E1ST_LOF);
	e1f_idle(b, 20000 - 2);
	CHECK(!(e1f_status(b) & E1DB_RED));
	e1f_idle(b, 2);
	CHECK(e1f_status(b) & E1DB_LOS);
	CHECK(e1f_status(b) & E1DB_RED);
	link_run(a, b, 40);
	CHECK(!(e1f_status_raw(b) & (E1ST_LOS | E1ST_LOF)));
	link_run(a, b, 40000);
	CHECK_EQ(e1f_status(b), 0);
	/* LOS clears on a signal whose payload is all zero (HDB3: pulses on the line) */
	e1f_idle(b, 300);
	CHECK(e1f_status_raw(b) & E1ST_LOS);
	{
		uint8_t zp[32 * 40], fz[32 * 40];
		memset(zp, 0, sizeof(zp));
		e1f_tx(a, zp, fz, 40);
		e1f_rx(b, fz, NULL, 40);
		CHECK(!(e1f_status_raw(b) & (E1ST_LOS | E1ST_LOF)));
	}
	link_run(a, b, 40000);
	/* LOS from all-zero frames */
	uint8_t z[32] = { 0 };
	for (int i = 0; i < 200; i++)
		e1f_rx(b, z, NULL, 1);
	CHECK(e1f_status_raw(b) & E1ST_LOS);
	link_run(a, b, 5);
	CHECK(!(e1f_status_raw(b) & E1ST_LOS));
	e1f_free(a);
	e1f_free(b);
}

static void test_hdlc(void)
{
	e1f_t *a, *b;
	pair(&a, &b, 0, 1);
	link_run(a, b, 100);
	static const uint8_t pat[4] = { 0x7E, 0x7D, 0xFF, 0x00 };
	uint8_t msg[8][E1F_HDLC_MAX];
	int len[8];
	for (int m = 0; m < 8; m++) {
		len[m] = m == 7 ? E1F_HDLC_MAX : 3 + m * 37;
		for (int i = 0; i < len[m]; i++)
			msg[m][i] = m < 4 ? pat[m] : (uint8_t)rnd();
		CHECK_EQ(e1f_hdlc_send(a, msg[m], len[m]), 0);   /* back to back */
	}
	link_run(a, b, 3000);
	for (int m = 0; m < 8; m++) {
		uint8_t got[E1F_HDLC_MAX];
		int n = e1f_hdlc_recv(b, got, sizeof(got));
		CHECK_EQ(n, len[m]);
		CHECK(n == len[m] && memcmp(got, msg[m], (size_t)n) == 0);
	}
	CHECK_EQ(e1f_hdlc_recv(b, msg[0], 10), 0);
	struct e1_counters c;
	e1f_counters(b, &c);
	CHECK_EQ(c.hdlc_rx, 8);
	CHECK_EQ(c.hdlc_fcs_errors, 0);
	CHECK_EQ(c.hdlc_bad, 0);
	/* a payload bit error breaks the FCS */
	e1f_hdlc_send(a, msg[5], 40);
	link_run(a, b, 3);
	/* flip a TS16 bit on the way */
	uint8_t fa[32];
	for (int i = 0; i < 60; i++) {
		e1f_tx(a, NULL, fa, 1);
		if (i == 10)
			fa[16] ^= 0x10;
		e1f_rx(b, fa, NULL, 1);
	}
	e1f_counters(b, &c);
	CHECK(c.hdlc_fcs_errors + c.hdlc_bad + c.hdlc_aborts >= 1);
	CHECK_EQ(c.hdlc_rx, 8);
	CHECK_EQ(e1f_hdlc_send(a, msg[0], 0), -1);
	CHECK_EQ(e1f_hdlc_send(a, msg[0], E1F_HDLC_MAX + 1), -1);
	e1f_free(a);
	e1f_free(b);
}

static void test_cas(void)
{
	e1f_t *a, *b;
	pair(&a, &b, 1, 1);
	link_run(a, b, 100);
	CHECK_EQ(e1f_status_raw(b) & (E1ST_LCASMFA | E1ST_LOF | E1ST_LMFA), 0);
	e1f_cas_changed(b);
	for (int ch = 1; ch <= 30; ch++)
		e1f_cas_tx(a, ch, (unsigned)(ch * 7 + 1) & 0xF ? (unsigned)(ch * 7 + 1) & 0xF : 1);
	link_run(a, b, 16);
	int early = 0;
	for (int ch = 1; ch <= 30; ch++)
		early += e1f_cas_rx(b, ch) == e1f_cas_tx_get(a, ch);
	CHECK(early < 30);       /* debounce: two equal multiframes needed */
	link_run(a, b, 48);
	for (int ch = 1; ch <= 30; ch++)
		CHECK_EQ(e1f_cas_rx(b, ch), e1f_cas_tx_get(a, ch));
	uint32_t chg = e1f_cas_changed(b);
	CHECK(chg != 0);
	CHECK_EQ(chg & 1u, 0);
	/* a one-multiframe glitch on channel 5 is filtered */
	uint8_t fa[32];
	for (int i = 0; i < 16; i++) {
		unsigned pos = a->tx_pos;
		e1f_tx(a, NULL, fa, 1);
		if (pos == 5)
			fa[16] ^= 0xF0;
		e1f_rx(b, fa, NULL, 1);
		e1f_tx(b, NULL, fa, 1);
		e1f_rx(a, fa, NULL, 1);
	}
	link_run(a, b, 32);
	CHECK_EQ(e1f_cas_rx(b, 5), e1f_cas_tx_get(a, 5));
	CHECK_EQ(e1f_cas_changed(b), 0);
	/* distant MF alarm */
	e1f_tx_alarms(a, E1TXA_DMFA);
	link_run(a, b, 40);
	CHECK(e1f_status_raw(b) & E1ST_DMFA);
	e1f_tx_alarms(a, 0);
	link_run(a, b, 40);
	CHECK(!(e1f_status_raw(b) & E1ST_DMFA));
	/* corrupt MFAS twice: loss of CAS MF alignment, then regained */
	int bad = 0;
	for (int i = 0; i < 64 && bad < 2; i++) {
		unsigned pos = a->tx_pos;
		e1f_tx(a, NULL, fa, 1);
		if (pos == 0) {
			fa[16] |= 0x80;
			bad++;
		}
		e1f_rx(b, fa, NULL, 1);
	}
	CHECK(e1f_status_raw(b) & E1ST_LCASMFA);
	link_run(a, b, 40);
	CHECK(!(e1f_status_raw(b) & E1ST_LCASMFA));
	e1f_free(a);
	e1f_free(b);
}

static void test_prbs(void)
{
	e1f_t *a, *b;
	pair(&a, &b, 0, 1);
	link_run(a, b, 100);
	e1f_prbs(a, 1, 0, 0);
	e1f_prbs(b, 0, 1, 0);
	link_run(a, b, 50);
	CHECK(e1f_prbs_sync(b));
	CHECK_EQ(e1f_prbs_errors(b), 0);
	for (int i = 0; i < 37; i++) {
		e1f_inject(a, E1INJ_BIT);
		link_run(a, b, 3);
	}
	link_run(a, b, 100);
	CHECK(e1f_prbs_sync(b));
	CHECK_EQ(e1f_prbs_errors(b), 37);
	e1f_free(a);
	e1f_free(b);
}

/* G.706 4.2: random line data aligns on spurious FAS now and then, but never on a CRC-4
 * multiframe: LOF stays raised and RED comes after 2.5 s */
static void test_garbage_is_lof(void)
{
	e1f_t *b = e1f_new();
	uint8_t fr[32];
	int lof_frames = 0, spurious = 0, was_aligned = 0;
	for (int i = 0; i < 24000; i++) {
		for (int k = 0; k < 32; k++)
			fr[k] = (uint8_t)rnd();
		e1f_rx(b, fr, NULL, 1);
		lof_frames += (e1f_status_raw(b) & E1ST_LOF) != 0;
		spurious += b->aligned && !was_aligned;
		was_aligned = b->aligned;
	}
	CHECK_EQ(lof_frames, 24000);
	CHECK(spurious > 10);                /* it did find spurious FAS, and dropped them */
	CHECK(e1f_status(b) & E1DB_RED);
	e1f_free(b);
}

/* G.706 Annex B: a far end without CRC-4: after 400 ms the frame alignment is accepted
 * alone (LOF clears, LMFA stays); a far end that turns CRC-4 on is found again */
static void test_crc4_interworking(void)
{
	e1f_t *a = e1f_new(), *b = e1f_new();
	struct e1f_config nocrc = { .crc4 = 0, .auto_rai = 1 };
	e1f_configure(a, &nocrc);
	link_run(a, b, 1600);
	CHECK(e1f_status_raw(b) & E1ST_LOF);
	link_run(a, b, 2000);
	CHECK_EQ(e1f_status_raw(b) & (E1ST_LOF | E1ST_LMFA), E1ST_LMFA);
	link_run(a, b, 8000);
	CHECK_EQ(e1f_status(b) & E1DB_RED, 0);
	CHECK(b->interwork);
	struct e1f_config crc = { .crc4 = 1, .auto_rai = 1 };
	e1f_configure(a, &crc);
	link_run(a, b, 64);
	CHECK_EQ(e1f_status_raw(b) & (E1ST_LOF | E1ST_LMFA), 0);
	CHECK(!b->interwork);
	e1f_free(a);
	e1f_free(b);
}

/* AMI: runs of 16+ zeros are excessive zeros, counted with the code violations; HDB3: none */
static void test_ami_excessive_zeros(void)
{
	e1f_t *b = e1f_new();
	struct e1f_config ami = { .crc4 = 0, .hdb3 = 0 };
	e1f_configure(b, &ami);
	uint8_t fr[32];
	memset(fr, 0x55, 32);
	fr[3] = 0x80;   /* ...0101 | 1000 0000 | 0000 0000 | 0000 0001: a run of 22 zeros */
	fr[4] = 0x00;
	fr[5] = 0x01;
	fr[10] = 0x00;  /* 0101 0101 | 0 x8 | 0101: a run of 9 zeros, fine */
	fr[31] = 0x00;  /* a run across the frame boundary: 1 + 8 + 1 = 10 zeros, fine */
	fr[20] = 0xF0;  /* 1111 0000 | 0 x8 | 0000 1111: 16 zeros: one EXZ */
	fr[21] = 0x00;
	fr[22] = 0x0F;
	e1f_rx(b, fr, NULL, 1);
	e1f_rx(b, fr, NULL, 1);
	struct e1_counters c;
	e1f_counters(b, &c);
	CHECK_EQ(c.code_violations, 4);
	struct e1f_config hdb3 = { .crc4 = 0, .hdb3 = 1 };
	e1f_configure(b, &hdb3);
	e1f_rx(b, fr, NULL, 1);
	e1f_counters(b, &c);
	CHECK_EQ(c.code_violations, 4);
	e1f_free(b);
}

static void test_fuzz(void)
{
	e1f_t *b = e1f_new();
	uint8_t fr[32 * 4], pl[32 * 4];
	for (int i = 0; i < 5000; i++) {
		int n = 1 + (int)(rnd() % 4);
		for (int k = 0; k < 32 * n; k++)
			fr[k] = (uint8_t)rnd();
		if (i % 7 == 0)
			fr[0] = 0x1B;
		if (i % 500 == 0) {
			struct e1f_config cfg = { .cas = (uint8_t)(rnd() & 1), .crc4 = (uint8_t)(rnd() & 1) };
			e1f_configure(b, &cfg);
		}
		e1f_rx(b, fr, pl, n);
		if (i % 100 == 0)
			e1f_idle(b, (int)(rnd() % 300));
		uint8_t buf[16];
		e1f_hdlc_recv(b, buf, sizeof(buf));
	}
	CHECK(1);
	e1f_free(b);
}

int main(void)
{
	RUN(test_crc_tables);
	RUN(test_crc4_fast_vs_serial);
	RUN(test_crc4_c_bits_independent);
	RUN(test_hdlc_bits_independent);
	RUN(test_cold_start_alignment);
	RUN(test_shift_realignment);
	RUN(test_lof_and_recovery);
	RUN(test_crc_errors_and_ebits);
	RUN(test_ais_rai_los);
	RUN(test_hdlc);
	RUN(test_cas);
	RUN(test_prbs);
	RUN(test_garbage_is_lof);
	RUN(test_crc4_interworking);
	RUN(test_ami_excessive_zeros);
	RUN(test_fuzz);
	return check_done();
}
