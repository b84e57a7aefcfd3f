/* test_fxocard.c - the FXO driver over the simulated card: ring cadence, battery, polarity,
 * hook, loop current, audio with hardware gain. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "fxodrv.h"
#include "fxoregs.h"
#include "g711.h"
#include "regio.h"
#include "sim_fxo.h"

static sim_fxo_t *card;
static fxodrv_t *drv;
static struct fxo_event evs[1024];
static int nev;

static void setup(int nports)
{
	card = sim_fxo_new(nports);
	int err = 1;
	drv = fxodrv_open(sim_fxo_regio(card), &err);
	CHECK(drv != NULL);
	CHECK_EQ(err, 0);
	nev = 0;
}

static void teardown(void)
{
	fxodrv_close(drv);
	sim_fxo_free(card);
}

/* run ms of time in 10 ms ticks, collecting events */
static void run_ms(int ms)
{
	for (int t = 0; t < ms / 10; t++) {
		CHECK_EQ(sim_fxo_tick(card, 80), 0);
		int n = fxodrv_events(drv, evs + nev, (int)(sizeof(evs) / sizeof(evs[0])) - nev);
		CHECK(n >= 0);
		nev += n;
	}
}

static int count(int type, int port)
{
	int n = 0;
	for (int i = 0; i < nev; i++)
		n += evs[i].type == type && evs[i].port == port;
	return n;
}

static const struct fxo_event *find(int type, int port, int nth)
{
	for (int i = 0; i < nev; i++)
		if (evs[i].type == type && evs[i].port == port && nth-- == 0)
			return &evs[i];
	return NULL;
}

static void line(int port, int mv, int rev, int vrms, int hz)
{
	struct sim_fxo_line l = { mv, rev, vrms, hz };
	CHECK_EQ(sim_fxo_line_set(card, port, &l), 0);
}

static void test_probe(void)
{
	CHECK(sim_fxo_new(0) == NULL);
	CHECK(sim_fxo_new(9) == NULL);
	setup(8);
	CHECK_EQ(fxodrv_nports(drv), 8);
	CHECK_EQ(fxodrv_hook(drv, 8, 1), -EINVAL);
	CHECK_EQ(fxodrv_set_gain(drv, 0, -151, 0), -EINVAL);
	CHECK_EQ(fxodrv_set_gain(drv, 0, 0, 121), -EINVAL);
	struct sim_fxo_line bad = { -5, 0, 0, 0 };
	CHECK_EQ(sim_fxo_line_set(card, 0, &bad), -EINVAL);
	teardown();
}

static void test_battery_polarity_hook(void)
{
	setup(4);
	line(0, 48000, 0, 0, 0);
	run_ms(100);
	CHECK_EQ(count(FXEV_BATTERY_RESTORED, 0), 1);
	CHECK_EQ(count(FXEV_BATTERY_RESTORED, 1), 0);
	const struct fxo_event *e = find(FXEV_BATTERY_RESTORED, 0, 0);
	CHECK(e && e->timestamp == 160);        /* 20 ms debounce */
	struct fxo_port_status st;
	CHECK_EQ(fxodrv_status(drv, 0, &st), 0);
	CHECK_EQ(st.line_dv, -480);
	CHECK_EQ(st.loop_ma, 0);
	CHECK(st.battery && !st.reversed && !st.offhook);
	/* off hook: loop current flows, the line voltage drops */
	CHECK_EQ(fxodrv_hook(drv, 0, 1), 0);
	run_ms(10);
	CHECK_EQ(count(FXEV_HOOK, 0), 1);
	CHECK_EQ(find(FXEV_HOOK, 0, 0)->value, 1);
	CHECK_EQ(fxodrv_status(drv, 0, &st), 0);
	CHECK(st.offhook);
	CHECK(st.loop_ma >= 40 && st.loop_ma <= 50);
	CHECK(st.line_dv <= -80 && st.line_dv >= -120);
	struct sim_fxo_line_state ls;
	CHECK_EQ(sim_fxo_line_get(card, 0, &ls), 0);
	CHECK(ls.offhook && ls.loop_ma == st.loop_ma);
	/* polarity reversal (answer supervision) */
	line(0, 48000, 1, 0, 0);
	run_ms(10);
	CHECK_EQ(count(FXEV_POLARITY, 0), 0);   /* not yet: 20 ms debounce */
	run_ms(20);
	CHECK_EQ(count(FXEV_POLARITY, 0), 1);
	e = find(FXEV_POLARITY, 0, 0);
	CHECK(e && e->value == 1);
	CHECK_EQ(fxodrv_status(drv, 0, &st), 0);
	CHECK(st.reversed && st.line_dv > 0);
	line(0, 48000, 0, 0, 0);
	run_ms(30);
	CHECK_EQ(count(FXEV_POLARITY, 0), 2);
	CHECK_EQ(find(FXEV_POLARITY, 0, 1)->value, 0);
	/* a 10 ms glitch is filtered */
	line(0, 48000, 1, 0, 0);
	run_ms(10);
	line(0, 48000, 0, 0, 0);
	run_ms(50);
	CHECK_EQ(count(FXEV_POLARITY, 0), 2);
	/* battery lost and restored */
	uint32_t t0 = fxodrv_samples(drv);
	line(0, 0, 0, 0, 0);
	run_ms(50);
	CHECK_EQ(count(FXEV_BATTERY_LOST, 0), 1);
	e = find(FXEV_BATTERY_LOST, 0, 0);
	CHECK(e && e->timestamp == t0 + 160);
	CHECK_EQ(fxodrv_status(drv, 0, &st), 0);
	CHECK(!st.battery && st.loop_ma == 0 && st.line_dv == 0);
	line(0, 48000, 0, 0, 0);
	run_ms(50);
	CHECK_EQ(count(FXEV_BATTERY_RESTORED, 0), 2);
	CHECK_EQ(fxodrv_hook(drv, 0, 0), 0);
	run_ms(10);
	CHECK_EQ(count(FXEV_HOOK, 0), 2);
	CHECK_EQ(find(FXEV_HOOK, 0, 1)->value, 0);
	teardown();
}

static void test_ring_china_cadence(void)
{
	setup(4);
	line(2, 48000, 0, 0, 25);
	run_ms(100);
	nev = 0;
	uint32_t onset[3];
	for (int cyc = 0; cyc < 3; cyc++) {
		onset[cyc] = fxodrv_samples(drv);
		line(2, 48000, 0, 75, 25);
		run_ms(1000);
		if (cyc == 0) {
			struct fxo_port_status st;
			CHECK_EQ(fxodrv_status(drv, 2, &st), 0);
			CHECK(st.ringing);
		}
		line(2, 48000, 0, 0, 25);
		run_ms(4000);
	}
	CHECK_EQ(count(FXEV_RING_START, 2), 3);
	CHECK_EQ(count(FXEV_RING_STOP, 2), 3);
	CHECK_EQ(count(FXEV_RING_REJECT, 2), 0);
	CHECK_EQ(count(FXEV_BATTERY_LOST, 2), 0);
	for (int cyc = 0; cyc < 3; cyc++) {
		const struct fxo_event *s = find(FXEV_RING_START, 2, cyc);
		const struct fxo_event *e = find(FXEV_RING_STOP, 2, cyc);
		CHECK(s && e);
		if (!s || !e)
			continue;
		uint32_t ds = s->timestamp - onset[cyc];   /* 150 ms confirmation + first cycle */
		uint32_t de = e->timestamp - onset[cyc];   /* 1 s of ring + up to 128 ms timeout */
		CHECK(ds >= 150 * 8 && ds <= 200 * 8);
		CHECK(de >= 1000 * 8 && de <= 1150 * 8);
	}
	/* a short burst (100 ms) is rejected */
	nev = 0;
	line(2, 48000, 0, 75, 25);
	run_ms(100);
	line(2, 48000, 0, 0, 25);
	run_ms(500);
	CHECK_EQ(count(FXEV_RING_START, 2), 0);
	CHECK_EQ(count(FXEV_RING_REJECT, 2), 1);
	/* a ring below the threshold or at a wrong frequency is not a ring */
	line(2, 48000, 0, 20, 25);
	run_ms(1000);
	line(2, 48000, 0, 75, 90);
	run_ms(1000);
	line(2, 48000, 0, 0, 0);
	run_ms(500);
	CHECK_EQ(count(FXEV_RING_START, 2), 0);
	/* other ports stay quiet */
	CHECK_EQ(count(FXEV_RING_START, 0) + count(FXEV_RING_START, 1) + count(FXEV_RING_START, 3), 0);
	teardown();
}

static double rms_db(const int16_t *x, int n)
{
	double s = 0;
	for (int i = 0; i < n; i++)
		s += (double)x[i] * x[i];
	return 10.0 * log10(s / n + 1e-9);
}

static double measure_rx(int port, int gain)
{
	CHECK_EQ(fxodrv_set_gain(drv, port, gain, 0), 0);
	struct fxo_dma_info di;
	CHECK_EQ(fxodrv_dma_info(drv, &di), 0);
	int16_t in[80], got[800];
	static uint32_t ph;
	for (int t = 0; t < 10; t++) {
		for (int i = 0; i < 80; i++, ph++)
			in[i] = (int16_t)lrint(2000.0 * sin(2.0 * M_PI * 1004.0 * ph / 8000.0));
		CHECK_EQ(sim_fxo_line_audio_in(card, port, in, 80), 80);
		CHECK_EQ(sim_fxo_tick(card, 80), 0);
		uint32_t cnt = fxodrv_dma_count(drv);
		for (int i = 0; i < 80; i++)
			got[80 * t + i] =
				cb_alaw_decode(di.rx[port * di.port_stride + (cnt - 80 + (uint32_t)i) % di.ring_samples]);
	}
	return rms_db(got, 800);
}

static double measure_tx(int port, int gain)
{
	CHECK_EQ(fxodrv_set_gain(drv, port, 0, gain), 0);
	struct fxo_dma_info di;
	CHECK_EQ(fxodrv_dma_info(drv, &di), 0);
	int16_t out[80 * 11];
	int n = 0;
	static uint32_t ph;
	int16_t drop[4096];
	sim_fxo_line_audio_out(card, port, drop, 4096);
	for (int t = 0; t < 11; t++) {
		uint32_t cnt = fxodrv_dma_count(drv);
		for (int i = 0; i < 80; i++, ph++)
			di.tx[port * di.port_stride + (cnt + (uint32_t)i) % di.ring_samples] =
				cb_alaw_encode((int16_t)lrint(2000.0 * sin(2.0 * M_PI * 1004.0 * ph / 8000.0)));
		CHECK_EQ(sim_fxo_tick(card, 80), 0);
		n += sim_fxo_line_audio_out(card, port, out + n, 80);
	}
	CHECK_EQ(n, 880);
	return rms_db(out + 80, 800);
}

static void test_audio_gain(void)
{
	setup(4);
	line(1, 48000, 0, 0, 0);
	CHECK_EQ(fxodrv_dma_start(drv, 640), 0);
	CHECK_EQ(fxodrv_hook(drv, 1, 1), 0);
	double ref_rx = measure_rx(1, 0);
	double ref_tx = measure_tx(1, 0);
	CHECK(ref_rx > 60.0);
	static const int gains[] = { -150, -95, -60, -1, 1, 35, 60, 120 };
	for (unsigned i = 0; i < sizeof(gains) / sizeof(gains[0]); i++) {
		double drx = measure_rx(1, gains[i]) - ref_rx;
		double dtx = measure_tx(1, gains[i]) - ref_tx;
		CHECK(fabs(drx - gains[i] / 10.0) <= 0.2);
		CHECK(fabs(dtx - gains[i] / 10.0) <= 0.2);
		if (fabs(drx - gains[i] / 10.0) > 0.2 || fabs(dtx - gains[i] / 10.0) > 0.2)
			printf("gain %d: rx %.3f tx %.3f dB\n", gains[i], drx, dtx);
	}
	int rx, tx;
	CHECK_EQ(fxodrv_set_gain(drv, 1, -37, 64), 0);
	CHECK_EQ(fxodrv_get_gain(drv, 1, &rx, &tx), 0);
	CHECK_EQ(rx, -37);
	CHECK_EQ(tx, 64);
	/* on hook: no audio either way, unless the on-hook monitor is on */
	CHECK_EQ(fxodrv_set_gain(drv, 1, 0, 0), 0);
	CHECK_EQ(fxodrv_hook(drv, 1, 0), 0);
	CHECK(measure_rx(1, 0) < 20.0);   /* A-law idle 0xD5 decodes to 8 */
	CHECK(measure_tx(1, 0) < 1.0);
	CHECK_EQ(fxodrv_monitor(drv, 1, 1), 0);
	CHECK(fabs(measure_rx(1, 0) - ref_rx) < 0.05);
	teardown();
}

static void test_garbage(void)
{
	setup(8);
	const struct regio *io = sim_fxo_regio(card);
	uint32_t r = 99;
	for (int i = 0; i < 3000; i++) {
		uint8_t tx[40], rx[40];
		uint32_t n = 2 + (r % 38);
		for (uint32_t k = 0; k < n; k++) {
			r = r * 1103515245u + 12345u;
			tx[k] = (uint8_t)(r >> 16);
		}
		io->ops->xfer(io->ctx, tx, rx, n);
		if (i % 10 == 0)
			sim_fxo_tick(card, (int)(r % 200));
	}
	struct fxo_event ev[16];
	CHECK(fxodrv_events(drv, ev, 16) >= 0);
	CHECK_EQ(sim_fxo_tick(card, -1), -EINVAL);
	CHECK_EQ(sim_fxo_line_audio_in(card, 9, NULL, 0), -EINVAL);
	teardown();
}

int main(void)
{
	RUN(test_probe);
	RUN(test_battery_polarity_hook);
	RUN(test_ring_china_cadence);
	RUN(test_audio_gain);
	RUN(test_garbage);
	return check_done();
}
