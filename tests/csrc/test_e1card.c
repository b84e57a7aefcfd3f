/* test_e1card.c - the E1 driver over the simulated card, with far-end framers on the lines. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "e1drv.h"
#include "e1framer.h"
#include "e1regs.h"
#include "regio.h"
#include "sim_e1.h"

static uint32_t rng_state = 777;
static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

struct bench {
	sim_e1_t *card;
	e1drv_t *drv;
	e1f_t *far[8];
	int nspans;
	int connected[8];
	uint8_t far_payload[8][80 * 32];   /* what the far end sends in its payload */
	uint8_t far_rx[8][81 * 32];        /* what the far end received (payload) */
	int far_rx_n[8];
};

static void bench_init(struct bench *b, int nspans, int cas, int line_timing)
{
	memset(b, 0, sizeof(*b));
	b->nspans = nspans;
	b->card = sim_e1_new(nspans);
	int err = 1;
	b->drv = e1drv_open(sim_e1_regio(b->card), &err);
	CHECK(b->drv != NULL);
	CHECK_EQ(err, 0);
	CHECK_EQ(e1drv_nspans(b->drv), nspans);
	struct e1_span_config cfg = { .cas = (uint8_t)cas, .crc4 = 1, .hdb3 = 1,
				      .line_timing = (uint8_t)line_timing, .auto_rai = 1 };
	struct e1f_config fcfg = { .cas = (uint8_t)cas, .crc4 = 1, .hdb3 = 1, .auto_rai = 1 };
	for (int s = 0; s < nspans; s++) {
		CHECK_EQ(e1drv_span_config(b->drv, s, &cfg), 0);
		CHECK_EQ(e1drv_span_enable(b->drv, s, 1), 0);
		b->far[s] = e1f_new();
		e1f_configure(b->far[s], &fcfg);
		b->connected[s] = 1;
		memset(b->far_payload[s], 0xD5, sizeof(b->far_payload[s]));
	}
	CHECK_EQ(e1drv_dma_start(b->drv, 640), 0);
}

static void bench_free(struct bench *b)
{
	for (int s = 0; s < b->nspans; s++)
		e1f_free(b->far[s]);
	e1drv_close(b->drv);
	sim_e1_free(b->card);
}

/* one tick of n frames (n <= 80): far ends send n frames, the card runs n frames,
 * what the card sent goes to the far ends (who also run n frames of time) */
static void tick_n(struct bench *b, int n, int far_extra)
{
	uint8_t line[81 * 32];
	for (int s = 0; s < b->nspans; s++) {
		if (!b->connected[s])
			continue;
		int m = n + far_extra;
		e1f_tx(b->far[s], b->far_payload[s], line, m);
		CHECK_EQ(sim_e1_line_rx(b->card, s, line, 32 * m), m);
	}
	CHECK_EQ(sim_e1_tick(b->card, n), 0);
	for (int s = 0; s < b->nspans; s++) {
		int got = sim_e1_line_tx(b->card, s, line, 81);
		if (!b->connected[s])
			continue;
		if (got)
			e1f_rx(b->far[s], line, b->far_rx[s], got);
		b->far_rx_n[s] = got;
		if (got < n)
			e1f_idle(b->far[s], n - got);
	}
}

static void ticks(struct bench *b, int nticks)
{
	for (int i = 0; i < nticks; i++)
		tick_n(b, 80, 0);
}

static struct e1_span_status status(struct bench *b, int s)
{
	struct e1_span_status st;
	CHECK_EQ(e1drv_span_status(b->drv, s, &st), 0);
	return st;
}

static struct e1_counters counters(struct bench *b, int s)
{
	struct e1_counters c;
	CHECK_EQ(e1drv_span_counters(b->drv, s, &c), 0);
	return c;
}

/* a regio whose card answers with the wrong ID */
static int wrong_xfer(void *ctx, const uint8_t *tx, uint8_t *rx, uint32_t len)
{
	(void)ctx;
	(void)tx;
	memset(rx, 0x5A, len);
	return 0;
}
static const struct regio_ops wrong_ops = { .xfer = wrong_xfer };

static void test_probe(void)
{
	struct regio wrong = { &wrong_ops, NULL };
	int err = 0;
	CHECK(e1drv_open(&wrong, &err) == NULL);
	CHECK_EQ(err, -ENODEV);
	CHECK(sim_e1_new(0) == NULL);
	CHECK(sim_e1_new(9) == NULL);
	sim_e1_t *c = sim_e1_new(8);
	e1drv_t *d = e1drv_open(sim_e1_regio(c), &err);
	CHECK_EQ(e1drv_nspans(d), 8);
	CHECK_EQ(e1drv_span_enable(d, 8, 1), -EINVAL);
	CHECK_EQ(e1drv_cas_set(d, 0, 31, 1), -EINVAL);
	CHECK_EQ(e1drv_dma_start(d, 5000), -EINVAL);
	CHECK_EQ(regio_rd8(sim_e1_regio(c), E1G_REV), 1);
	e1drv_close(d);
	sim_e1_free(c);
}

static void test_sync_and_dma(int line_timing)
{
	struct bench b;
	bench_init(&b, 2, 0, line_timing);
	ticks(&b, 10);
	for (int s = 0; s < 2; s++) {
		struct e1_span_status st = status(&b, s);
		CHECK_EQ(st.raw & (E1ST_LOS | E1ST_LOF | E1ST_LMFA | E1ST_AIS | E1ST_RAI), 0);
		CHECK_EQ(e1f_status_raw(b.far[s]) & (E1ST_LOS | E1ST_LOF | E1ST_LMFA | E1ST_RAI), 0);
	}
	/* far end -> card: a counter in TS1 and the span number in TS31 */
	struct e1_dma_info di;
	CHECK_EQ(e1drv_dma_info(b.drv, &di), 0);
	CHECK_EQ(di.ring_frames, 640);
	for (int f = 0; f < 80; f++)
		for (int s = 0; s < 2; s++) {
			b.far_payload[s][32 * f + 1] = (uint8_t)f;
			b.far_payload[s][32 * f + 31] = (uint8_t)(0x40 + s);
		}
	ticks(&b, 20);
	uint32_t count = e1drv_dma_count(b.drv);
	CHECK_EQ(count, 30 * 80);
	uint32_t start = (count - 80) % di.ring_frames;
	for (int s = 0; s < 2; s++) {
		const uint8_t *ts1 = di.rx + s * di.span_stride + 1 * di.ts_stride + start;
		const uint8_t *ts31 = di.rx + s * di.span_stride + 31 * di.ts_stride + start;
		int ok_seq = 1;
		for (int f = 1; f < 80; f++)
			ok_seq &= ts1[f] == (uint8_t)(ts1[f - 1] + 1) || (ts1[f - 1] == 79 && ts1[f] == 0);
		CHECK(ok_seq);
		CHECK_EQ(ts31[0], 0x40 + s);
		CHECK_EQ(ts31[79], 0x40 + s);
	}
	/* card -> far end: write the tx ring for the next tick */
	for (int k = 0; k < 4; k++) {
		uint32_t cnt = e1drv_dma_count(b.drv);
		for (int s = 0; s < 2; s++)
			for (int f = 0; f < 80; f++) {
				uint32_t idx = (cnt + (uint32_t)f) % di.ring_frames;
				for (int ts = 1; ts < 32; ts++)
					di.tx[s * di.span_stride + ts * di.ts_stride + idx] = (uint8_t)(ts + 16 * s);
			}
		ticks(&b, 1);
	}
	for (int s = 0; s < 2; s++) {
		const uint8_t *last = b.far_rx[s] + 32 * (b.far_rx_n[s] - 1);
		CHECK_EQ(last[5], 5 + 16 * s);
		CHECK_EQ(last[31], 31 + 16 * s);
		CHECK_EQ(last[16] == 16 + 16 * s, 0);  /* TS16 is the D-channel, not payload */
	}
	struct e1_counters c = counters(&b, 0);
	CHECK_EQ(c.rx_slips, 0);
	CHECK_EQ(c.tx_slips, 0);
	CHECK_EQ(c.crc_errors, 0);
	CHECK_EQ(c.rx_frames, 34 * 80);
	bench_free(&b);
}

static void test_sync_internal(void)
{
	test_sync_and_dma(0);
}

static void test_sync_line(void)
{
	test_sync_and_dma(1);
}

static void test_dchannel(void)
{
	struct bench b;
	bench_init(&b, 1, 0, 1);
	ticks(&b, 5);
	static const uint8_t fill[3] = { 0x7E, 0x7D, 0xFF };
	uint8_t msg[6][260];
	int len[6];
	for (int m = 0; m < 6; m++) {
		len[m] = 5 + 50 * m;
		for (int i = 0; i < len[m]; i++)
			msg[m][i] = m < 3 ? fill[m] : (uint8_t)rnd();
		CHECK_EQ(e1drv_dchan_send(b.drv, 0, msg[m], (uint32_t)len[m]), 0);
		CHECK_EQ(e1f_hdlc_send(b.far[0], msg[m], len[m]), 0);
	}
	ticks(&b, 30);
	uint8_t got[300];
	for (int m = 0; m < 6; m++) {
		int n = e1f_hdlc_recv(b.far[0], got, sizeof(got));
		CHECK(n == len[m] && memcmp(got, msg[m], (size_t)len[m]) == 0);
		CHECK_EQ(e1drv_dchan_recv(b.drv, 0, got, 4), len[m] > 4 ? -EMSGSIZE : len[m]);
		n = e1drv_dchan_recv(b.drv, 0, got, sizeof(got));
		CHECK(n == len[m] && memcmp(got, msg[m], (size_t)len[m]) == 0);
	}
	CHECK_EQ(e1drv_dchan_recv(b.drv, 0, got, sizeof(got)), 0);
	/* the TX FIFO fills up */
	int sent = 0;
	while (e1drv_dchan_send(b.drv, 0, msg[0], 10) == 0)
		sent++;
	CHECK_EQ(sent, 16);
	CHECK_EQ(e1drv_dchan_send(b.drv, 0, msg[0], 10), -EAGAIN);
	struct e1_counters c = counters(&b, 0);
	CHECK_EQ(c.hdlc_rx, 6);
	CHECK_EQ(c.hdlc_tx, 6);
	CHECK_EQ(c.hdlc_fcs_errors, 0);
	bench_free(&b);
}

static void test_cas_all_channels(void)
{
	struct bench b;
	bench_init(&b, 1, 1, 1);
	ticks(&b, 3);
	CHECK_EQ(status(&b, 0).raw & (E1ST_LCASMFA | E1ST_LOF), 0);
	uint8_t tx[31], rx[31];
	uint32_t chg;
	CHECK_EQ(e1drv_cas_get_all(b.drv, 0, rx, &chg), 0);
	for (int ch = 1; ch <= 30; ch++) {
		tx[ch] = (uint8_t)((ch % 15) + 1);
		e1f_cas_tx(b.far[0], ch, (unsigned)(16 - tx[ch]) & 0xF);
	}
	CHECK_EQ(e1drv_cas_set_all(b.drv, 0, tx), 0);
	ticks(&b, 2);
	CHECK_EQ(e1drv_cas_get_all(b.drv, 0, rx, &chg), 0);
	for (int ch = 1; ch <= 30; ch++) {
		CHECK_EQ(rx[ch], (16 - tx[ch]) & 0xF);
		CHECK_EQ(e1f_cas_rx(b.far[0], ch), tx[ch]);
	}
	uint32_t want = 0;
	for (int ch = 1; ch <= 30; ch++)
		if (((16 - tx[ch]) & 0xF) != 0xD)   /* 0xD is the idle value already there */
			want |= 1u << ch;
	CHECK_EQ(chg, want);
	CHECK_EQ(e1drv_cas_get_all(b.drv, 0, rx, &chg), 0);
	CHECK_EQ(chg, 0);
	e1f_cas_tx(b.far[0], 17, 0x5);
	ticks(&b, 1);
	CHECK_EQ(e1drv_cas_get_all(b.drv, 0, rx, &chg), 0);
	CHECK_EQ(chg, 1u << 17);
	CHECK_EQ(rx[17], 0x5);
	bench_free(&b);
}

static void test_alarms(void)
{
	struct bench b;
	bench_init(&b, 1, 0, 1);
	ticks(&b, 5);
	/* cable pulled: LOS after the window, red after 2.5 s, RAI sent needs a line: none */
	b.connected[0] = 0;
	ticks(&b, 3);
	CHECK(status(&b, 0).raw & E1ST_LOS);
	ticks(&b, 247);
	CHECK(!(status(&b, 0).debounced & E1DB_RED));
	ticks(&b, 5);
	CHECK(status(&b, 0).debounced & E1DB_RED);
	/* the line timed span fell back to its oscillator: it still transmits, with RAI */
	uint8_t out[32 * 16];
	CHECK_EQ(sim_e1_tick(b.card, 16), 0);
	CHECK_EQ(sim_e1_line_tx(b.card, 0, out, 16), 16);
	int nfas = 0, a_bits = 0;
	for (int f = 0; f < 16; f++)
		if ((out[32 * f] & 0x7F) != 0x1B) {
			nfas++;
			a_bits += (out[32 * f] & 0x20) != 0;
		}
	CHECK_EQ(nfas, 8);
	CHECK_EQ(a_bits, 8);
	b.connected[0] = 1;
	e1f_reset(b.far[0]);
	ticks(&b, 2);
	CHECK_EQ(status(&b, 0).raw & (E1ST_LOS | E1ST_LOF), 0);
	CHECK(status(&b, 0).debounced & E1DB_RED);
	ticks(&b, 500);
	CHECK_EQ(status(&b, 0).debounced, 0);
	CHECK_EQ(e1f_status_raw(b.far[0]) & E1ST_RAI, 0);
	/* AIS from the far end: blue */
	e1f_tx_alarms(b.far[0], E1TXA_AIS);
	ticks(&b, 1);
	CHECK(status(&b, 0).raw & E1ST_AIS);
	ticks(&b, 251);
	struct e1_span_status st = status(&b, 0);
	CHECK(st.debounced & E1DB_BLUE);
	CHECK(!(st.debounced & E1DB_RED));
	e1f_tx_alarms(b.far[0], 0);
	ticks(&b, 501);
	CHECK_EQ(status(&b, 0).debounced, 0);
	/* RAI from the far end: yellow after 0.5 s */
	e1f_tx_alarms(b.far[0], E1TXA_RAI);
	ticks(&b, 1);
	CHECK(status(&b, 0).raw & E1ST_RAI);
	ticks(&b, 51);
	CHECK(status(&b, 0).debounced & E1DB_YELLOW);
	/* sent alarms: AIS from the card */
	CHECK_EQ(e1drv_tx_alarms(b.drv, 0, E1TXA_AIS), 0);
	ticks(&b, 2);
	CHECK(e1f_status_raw(b.far[0]) & E1ST_AIS);
	CHECK_EQ(e1drv_tx_alarms(b.drv, 0, 0), 0);
	ticks(&b, 2);
	CHECK_EQ(e1f_status_raw(b.far[0]) & E1ST_AIS, 0);
	bench_free(&b);
}

static void test_crc_ebits_through_driver(void)
{
	struct bench b;
	bench_init(&b, 1, 0, 1);
	ticks(&b, 5);
	for (int i = 0; i < 9; i++) {
		e1f_inject(b.far[0], E1INJ_CRC);
		ticks(&b, 1);
	}
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(e1drv_inject(b.drv, 0, E1INJ_CRC), 0);
		ticks(&b, 1);
	}
	ticks(&b, 2);
	struct e1_counters c = counters(&b, 0);
	CHECK_EQ(c.crc_errors, 9);
	CHECK_EQ(c.febe, 4);
	struct e1_counters fc;
	e1f_counters(b.far[0], &fc);
	CHECK_EQ(fc.febe, 9);
	CHECK_EQ(fc.crc_errors, 4);
	/* FAS errors: three in a row lose alignment, the far end sees RAI */
	for (int i = 0; i < 3; i++) {
		e1f_inject(b.far[0], E1INJ_FAS);
		tick_n(&b, 2, 0);
	}
	CHECK(status(&b, 0).raw & E1ST_LOF);
	ticks(&b, 2);
	CHECK_EQ(status(&b, 0).raw & E1ST_LOF, 0);
	c = counters(&b, 0);
	CHECK_EQ(c.fas_errors, 3);
	bench_free(&b);
}

static void test_slips(void)
{
	struct bench b;
	bench_init(&b, 1, 0, 0);   /* internal timing: card clock != line clock */
	ticks(&b, 5);
	/* the elastic store runs between 80 and 160 frames (batches of 80, primed at 128) */
	CHECK_EQ(regio_rd8(sim_e1_regio(b.card), 0x100 + E1R_ESTATE), 80);
	/* far end 1 frame per tick faster (1.25 %): the store fills up (96 frames of room
	 * above 160), then every further excess frame is deleted: one slip each */
	for (int i = 0; i < 400; i++)
		tick_n(&b, 80, 1);
	struct e1_counters c = counters(&b, 0);
	CHECK_EQ(c.rx_slips, 400 - 96);
	CHECK(status(&b, 0).isr & E1ISR_SLIP);
	/* far end slower: the store (176 after a tick) drains, then a frame is repeated per tick */
	uint32_t before = c.rx_slips;
	for (int i = 0; i < 400; i++)
		tick_n(&b, 80, -1);
	c = counters(&b, 0);
	CHECK_EQ(c.rx_slips - before, 400 - 176);
	CHECK_EQ(status(&b, 0).raw & (E1ST_LOS | E1ST_LOF), 0);
	bench_free(&b);
}

static void test_slips_line_timing(void)
{
	struct bench b;
	bench_init(&b, 1, 0, 1);   /* line timing: TX follows the line, the DMA the card clock */
	ticks(&b, 5);
	for (int i = 0; i < 400; i++)
		tick_n(&b, 80, 1);
	struct e1_counters c = counters(&b, 0);
	CHECK_EQ(c.rx_slips, 400 - 96);
	CHECK(c.tx_slips >= 400 - 128 - 1 && c.tx_slips <= 400 - 80 + 1);   /* the TX store drains */
	CHECK_EQ(c.tx_frames, c.rx_frames);   /* exactly one TX frame per RX frame */
	CHECK_EQ(status(&b, 0).raw & (E1ST_LOS | E1ST_LOF), 0);
	CHECK_EQ(e1f_status_raw(b.far[0]) & (E1ST_LOS | E1ST_LOF | E1ST_LMFA), 0);
	bench_free(&b);
}

static void test_loopbacks_prbs(void)
{
	struct bench b;
	bench_init(&b, 1, 0, 1);
	ticks(&b, 5);
	/* local loopback: our PRBS comes back to our own checker, injected errors counted */
	CHECK_EQ(e1drv_loopback(b.drv, 0, E1MAINT_LLB), 0);
	CHECK_EQ(e1drv_prbs(b.drv, 0, 1, 1, 0), 0);
	ticks(&b, 3);
	int sync = 0;
	uint32_t errs = 99;
	CHECK_EQ(e1drv_prbs_result(b.drv, 0, &sync, &errs), 0);
	CHECK(sync);
	CHECK_EQ(errs, 0);
	for (int i = 0; i < 25; i++) {
		CHECK_EQ(e1drv_inject(b.drv, 0, E1INJ_BIT), 0);
		tick_n(&b, 3, 0);
	}
	ticks(&b, 2);
	CHECK_EQ(e1drv_prbs_result(b.drv, 0, &sync, &errs), 0);
	CHECK(sync);
	CHECK_EQ(errs, 25);
	CHECK_EQ(e1drv_prbs(b.drv, 0, 0, 0, 0), 0);
	/* network line loopback: the far end's PRBS comes back unchanged */
	CHECK_EQ(e1drv_loopback(b.drv, 0, E1MAINT_RLB), 0);
	e1f_prbs(b.far[0], 1, 1, 0);
	ticks(&b, 4);
	CHECK(e1f_prbs_sync(b.far[0]));
	uint32_t e0 = e1f_prbs_errors(b.far[0]);
	for (int i = 0; i < 11; i++) {
		e1f_inject(b.far[0], E1INJ_BIT);
		tick_n(&b, 5, 0);
	}
	ticks(&b, 2);
	CHECK_EQ(e1f_prbs_errors(b.far[0]) - e0, 11);
	/* network payload loopback: TS1..31 back with our own framing */
	CHECK_EQ(e1drv_loopback(b.drv, 0, E1MAINT_PLB), 0);
	ticks(&b, 4);
	CHECK(e1f_prbs_sync(b.far[0]));
	e0 = e1f_prbs_errors(b.far[0]);
	for (int i = 0; i < 7; i++) {
		e1f_inject(b.far[0], E1INJ_BIT);
		tick_n(&b, 5, 0);
	}
	ticks(&b, 2);
	CHECK_EQ(e1f_prbs_errors(b.far[0]) - e0, 7);
	CHECK_EQ(e1f_status_raw(b.far[0]) & (E1ST_LOF | E1ST_LMFA), 0);
	CHECK_EQ(e1drv_loopback(b.drv, 0, E1MAINT_PLB | E1MAINT_RLB), -EINVAL);
	CHECK_EQ(e1drv_loopback(b.drv, 0, 0), 0);
	e1f_prbs(b.far[0], 0, 0, 0);
	ticks(&b, 3);
	CHECK_EQ(status(&b, 0).raw & (E1ST_LOS | E1ST_LOF | E1ST_LMFA), 0);
	bench_free(&b);
}

static void test_garbage_line(void)
{
	sim_e1_t *c = sim_e1_new(2);
	int err;
	e1drv_t *d = e1drv_open(sim_e1_regio(c), &err);
	struct e1_span_config cfg = { .crc4 = 1, .line_timing = 1 };
	e1drv_span_config(d, 0, &cfg);
	e1drv_span_enable(d, 0, 1);
	cfg.cas = 1;
	e1drv_span_config(d, 1, &cfg);
	e1drv_span_enable(d, 1, 1);
	e1drv_dma_start(d, 160);
	uint8_t buf[32 * 20 + 31];
	for (int i = 0; i < 3000; i++) {
		int n = (int)(rnd() % sizeof(buf));
		for (int k = 0; k < n; k++)
			buf[k] = (uint8_t)rnd();
		sim_e1_line_rx(c, i & 1, buf, n);
		sim_e1_tick(c, (int)(rnd() % 40));
		sim_e1_line_tx(c, i & 1, buf, 20);
		uint8_t m[300];
		e1drv_dchan_recv(d, 0, m, sizeof(m));
	}
	CHECK_EQ(sim_e1_line_rx(c, 2, buf, 32), -EINVAL);
	CHECK_EQ(sim_e1_line_rx(c, 0, NULL, 32), -EINVAL);
	CHECK_EQ(sim_e1_tick(c, -1), -EINVAL);
	struct e1_counters cn;
	e1drv_span_counters(d, 0, &cn);
	CHECK(cn.runt_octets > 0);
	/* a DMA header that points outside the area is refused */
	uint32_t dsize;
	uint8_t *dma = regio_dma(sim_e1_regio(c), &dsize);
	struct e1_dma_info di;
	CHECK_EQ(e1drv_dma_info(d, &di), 0);
	uint32_t keep, bad = dsize - 100;
	memcpy(&keep, dma + 24, 4);
	memcpy(dma + 24, &bad, 4);
	CHECK_EQ(e1drv_dma_info(d, &di), -EIO);
	memcpy(dma + 24, &keep, 4);
	CHECK_EQ(e1drv_dma_info(d, &di), 0);
	/* raw SPI garbage: any command bytes, never a crash */
	const struct regio *io = sim_e1_regio(c);
	for (int i = 0; i < 2000; i++) {
		uint8_t tx[40], rx[40];
		uint32_t n = 2 + rnd() % 38;
		for (uint32_t k = 0; k < n; k++)
			tx[k] = (uint8_t)rnd();
		if (tx[0] == 0x00 && tx[1] == E1G_RESET)
			continue;
		io->ops->xfer(io->ctx, tx, rx, n);
	}
	CHECK(1);
	e1drv_close(d);
	sim_e1_free(c);
}

int main(void)
{
	RUN(test_probe);
	RUN(test_sync_internal);
	RUN(test_sync_line);
	RUN(test_dchannel);
	RUN(test_cas_all_channels);
	RUN(test_alarms);
	RUN(test_crc_ebits_through_driver);
	RUN(test_slips);
	RUN(test_slips_line_timing);
	RUN(test_loopbacks_prbs);
	RUN(test_garbage_line);
	return check_done();
}
