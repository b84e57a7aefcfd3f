/*
 * test_chaos.c - seeded fault storms on an E1 line between the simulated card (through its
 * driver) and a far-end framer: cable pulls, bit errors, bit slips, dropped and duplicated
 * frames, garbage, AIS, partial frames, timing and mode flips, loopbacks. After each storm
 * the line is left alone; the invariant is that both ends come back in sync without raw
 * alarms, that D-channel frames then cross intact both ways, and that nothing crashes (ASan).
 * Every random choice comes from the seed, so a failing seed replays exactly.
 *
 *   test_chaos [first_seed [nseeds]]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "e1drv.h"
#include "e1framer.h"
#include "e1regs.h"
#include "regio.h"
#include "sim_e1.h"

static uint64_t rs;
static uint32_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (uint32_t)(rs >> 11);
}

struct world {
	sim_e1_t *card;
	e1drv_t *drv;
	e1f_t *far;
	int cable;         /* 0: pulled */
	int bitshift;      /* pending bit shift of the far end's stream */
	uint8_t carry;
	int shift;
};

static void shift_stream(struct world *w, uint8_t *buf, int nframes)
{
	if (!w->shift)
		return;
	for (int i = 0; i < 32 * nframes; i++) {
		uint8_t o = buf[i];
		buf[i] = (uint8_t)((w->carry << (8 - w->shift)) | (o >> w->shift));
		w->carry = (uint8_t)(o & ((1u << w->shift) - 1));
	}
}

/* one 10 ms tick; with `chaos` the far end's signal is impaired at random */
static void tick(struct world *w, int chaos)
{
	uint8_t line[100 * 32];
	int n = 80;
	e1f_tx(w->far, NULL, line, n);
	if (chaos) {
		switch (rnd() % 12) {
		case 0:
			w->cable = !w->cable;
			break;
		case 1:
			for (int k = 0; k < 5; k++)
				line[rnd() % (32 * n)] ^= (uint8_t)(1u << (rnd() % 8));
			break;
		case 2:
			w->shift = (int)(rnd() % 8);
			break;
		case 3:
			n -= (int)(rnd() % 5);    /* frames lost */
			break;
		case 4:
			for (int k = 0; k < 3; k++)   /* frames duplicated */
				memcpy(line + 32 * (n + k), line + 32 * k, 32);
			n += 3;
			break;
		case 5:
			for (int k = 0; k < 32 * n; k++)
				line[k] = (uint8_t)rnd();
			break;
		case 6:
			memset(line, 0xFF, (size_t)(32 * n));
			break;
		case 7:
			e1f_inject(w->far, E1INJ_FAS | E1INJ_CRC | E1INJ_BIT);
			break;
		case 8: {
			struct e1_span_config cfg = { .crc4 = (uint8_t)(rnd() & 1), .line_timing = (uint8_t)(rnd() & 1),
						      .auto_rai = 1, .hdb3 = 1 };
			e1drv_span_config(w->drv, 0, &cfg);
			break;
		}
		case 9:
			e1drv_loopback(w->drv, 0, (unsigned[]){ 0, E1MAINT_LLB, E1MAINT_RLB, E1MAINT_PLB }[rnd() % 4]);
			break;
		case 10:
			memset(line, 0, (size_t)(32 * n));
			break;
		default:
			break;
		}
	}
	shift_stream(w, line, n);
	if (w->cable) {
		int octets = 32 * n - (chaos && (rnd() % 16 == 0) ? (int)(rnd() % 31) : 0);
		sim_e1_line_rx(w->card, 0, line, octets);
	}
	sim_e1_tick(w->card, 80);
	int got = sim_e1_line_tx(w->card, 0, line, 100);
	if (w->cable && got > 0)
		e1f_rx(w->far, line, NULL, got);
	else
		e1f_idle(w->far, 80);
	if (got < 80 && w->cable && got > 0)
		e1f_idle(w->far, 80 - got);
	uint8_t m[300];
	while (e1drv_dchan_recv(w->drv, 0, m, sizeof(m)) > 0)
		;
	while (e1f_hdlc_recv(w->far, m, sizeof(m)) > 0)
		;
}

static int run_seed(uint64_t seed)
{
	rs = seed * 0x9E3779B97F4A7C15ull + 1;
	int before = check_failures;
	struct world w = { 0 };
	w.card = sim_e1_new(1);
	int err;
	w.drv = e1drv_open(sim_e1_regio(w.card), &err);
	struct e1_span_config cfg = { .crc4 = 1, .hdb3 = 1, .line_timing = 1, .auto_rai = 1 };
	e1drv_span_config(w.drv, 0, &cfg);
	e1drv_span_enable(w.drv, 0, 1);
	e1drv_dma_start(w.drv, 640);
	w.far = e1f_new();
	w.cable = 1;
	for (int storm = 0; storm < 3; storm++) {
		int len = 20 + (int)(rnd() % 200);
		for (int t = 0; t < len; t++)
			tick(&w, 1);
		/* calm: plug in, no impairments, back to the configured mode */
		w.cable = 1;
		w.shift = 0;
		e1drv_loopback(w.drv, 0, 0);
		e1drv_span_config(w.drv, 0, &cfg);
		for (int t = 0; t < 30; t++)
			tick(&w, 0);
		struct e1_span_status st;
		CHECK_EQ(e1drv_span_status(w.drv, 0, &st), 0);
		CHECK_EQ(st.raw & (E1ST_LOS | E1ST_LOF | E1ST_LMFA | E1ST_AIS | E1ST_RAI), 0);
		CHECK_EQ(e1f_status_raw(w.far) & (E1ST_LOS | E1ST_LOF | E1ST_LMFA | E1ST_AIS | E1ST_RAI), 0);
		static const uint8_t msg[] = { 0x02, 0x01, 0x7E, 0x7D, 0xFF, 0x00, 0x7E };
		CHECK_EQ(e1drv_dchan_send(w.drv, 0, msg, sizeof(msg)), 0);
		CHECK_EQ(e1f_hdlc_send(w.far, msg, (int)sizeof(msg)), 0);
		uint8_t got[300];
		int n1 = 0, n2 = 0;
		for (int t = 0; t < 3 && (n1 <= 0 || n2 <= 0); t++) {
			uint8_t line[100 * 32];
			e1f_tx(w.far, NULL, line, 80);
			sim_e1_line_rx(w.card, 0, line, 80 * 32);
			sim_e1_tick(w.card, 80);
			int k = sim_e1_line_tx(w.card, 0, line, 100);
			e1f_rx(w.far, line, NULL, k);
			if (n1 <= 0)
				n1 = e1drv_dchan_recv(w.drv, 0, got, sizeof(got));
			if (n2 <= 0)
				n2 = e1f_hdlc_recv(w.far, got, sizeof(got));
		}
		CHECK_EQ(n1, (int)sizeof(msg));
		CHECK_EQ(n2, (int)sizeof(msg));
	}
	e1f_free(w.far);
	e1drv_close(w.drv);
	sim_e1_free(w.card);
	if (check_failures != before)
		fprintf(stderr, "seed %llu failed\n", (unsigned long long)seed);
	return check_failures == before;
}

int main(int argc, char **argv)
{
	uint64_t first = argc > 1 ? strtoull(argv[1], NULL, 0) : 1;
	int nseeds = argc > 2 ? atoi(argv[2]) : 12;
	int ok = 0;
	for (int i = 0; i < nseeds; i++)
		ok += run_seed(first + (uint64_t)i);
	printf("%s chaos: %d of %d seeds recovered\n", ok == nseeds ? "ok  " : "FAIL", ok, nseeds);
	return check_done();
}
