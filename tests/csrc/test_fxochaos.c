/*
 * test_fxochaos.c - seeded random CO line behaviour on all FXO ports (battery drops,
 * polarity flips, ring bursts of any length and frequency, hook flips, audio, garbage
 * register writes are not included: the driver is used as designed). Invariants: events
 * of each kind alternate properly per port, timestamps per kind never go back, and after
 * a calm second the status matches the line. Every choice comes from the seed.
 *
 *   test_fxochaos [first_seed [nseeds]]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fxodrv.h"
#include "fxoregs.h"
#include "sim_fxo.h"

static uint64_t rs;
static uint32_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (uint32_t)(rs >> 11);
}

enum { NP = 8 };

struct track {
	int ringing, battery, reversed, offhook;
	uint32_t last_ts[8];
};

static void check_events(fxodrv_t *d, struct track *tr)
{
	struct fxo_event ev[64];
	int n;
	while ((n = fxodrv_events(d, ev, 64)) > 0) {
		for (int i = 0; i < n; i++) {
			CHECK(ev[i].port < NP);
			CHECK(ev[i].type >= FXEV_RING_START && ev[i].type <= FXEV_RING_REJECT);
			if (ev[i].port >= NP || ev[i].type < 1 || ev[i].type > 7)
				continue;
			struct track *t = &tr[ev[i].port];
			CHECK((int32_t)(ev[i].timestamp - t->last_ts[ev[i].type]) >= 0);
			t->last_ts[ev[i].type] = ev[i].timestamp;
			switch (ev[i].type) {
			case FXEV_RING_START:
				CHECK(!t->ringing);
				t->ringing = 1;
				break;
			case FXEV_RING_STOP:
				CHECK(t->ringing);
				t->ringing = 0;
				break;
			case FXEV_RING_REJECT:
				CHECK(!t->ringing);
				CHECK(ev[i].value >= 0 && ev[i].value < 150);
				break;
			case FXEV_BATTERY_LOST:
				CHECK(t->battery);
				t->battery = 0;
				break;
			case FXEV_BATTERY_RESTORED:
				CHECK(!t->battery);
				t->battery = 1;
				break;
			case FXEV_POLARITY:
				CHECK(ev[i].value == !t->reversed);
				t->reversed = ev[i].value;
				break;
			case FXEV_HOOK:
				CHECK(ev[i].value == !t->offhook);
				t->offhook = ev[i].value;
				break;
			default:
				break;
			}
		}
	}
	CHECK(n == 0);
}

static int run_seed(uint64_t seed)
{
	rs = seed * 0x9E3779B97F4A7C15ull + 7;
	int before = check_failures;
	sim_fxo_t *c = sim_fxo_new(NP);
	int err;
	fxodrv_t *d = fxodrv_open(sim_fxo_regio(c), &err);
	fxodrv_dma_start(d, 640);
	struct track tr[NP];
	memset(tr, 0, sizeof(tr));
	struct sim_fxo_line line[NP];
	for (int p = 0; p < NP; p++) {
		line[p] = (struct sim_fxo_line){ 48000, 0, 0, 25 };
		sim_fxo_line_set(c, p, &line[p]);
	}
	int16_t pcm[80], out[4096];
	for (int t = 0; t < 2000; t++) {   /* 20 s */
		int p = (int)(rnd() % NP);
		switch (rnd() % 10) {
		case 0:
			line[p].battery_mv = rnd() % 3 ? 48000 : (int32_t)(rnd() % 4000);
			break;
		case 1:
			line[p].reversed = !line[p].reversed;
			break;
		case 2:
			line[p].ring_vrms = line[p].ring_vrms ? 0 : 40 + (int32_t)(rnd() % 60);
			line[p].ring_hz = 10 + (int32_t)(rnd() % 70);
			break;
		case 3:
			fxodrv_hook(d, p, (int)(rnd() & 1));
			break;
		case 4:
			fxodrv_set_gain(d, p, (int)(rnd() % 271) - 150, (int)(rnd() % 271) - 150);
			break;
		default:
			break;
		}
		sim_fxo_line_set(c, p, &line[p]);
		for (int q = 0; q < NP; q++) {
			for (int i = 0; i < 80; i++)
				pcm[i] = (int16_t)rnd();
			sim_fxo_line_audio_in(c, q, pcm, 80);
		}
		sim_fxo_tick(c, 80);
		for (int q = 0; q < NP; q++)
			sim_fxo_line_audio_out(c, q, out, 4096);
		check_events(d, tr);
	}
	/* calm: battery on, normal polarity, no ring, for a second */
	for (int p = 0; p < NP; p++) {
		line[p] = (struct sim_fxo_line){ 48000, 0, 0, 25 };
		sim_fxo_line_set(c, p, &line[p]);
	}
	for (int t = 0; t < 100; t++) {
		sim_fxo_tick(c, 80);
		check_events(d, tr);
	}
	for (int p = 0; p < NP; p++) {
		struct fxo_port_status st;
		CHECK_EQ(fxodrv_status(d, p, &st), 0);
		CHECK(!st.ringing && st.battery && !st.reversed);
		CHECK_EQ(st.offhook, tr[p].offhook);
		CHECK(!tr[p].ringing && tr[p].battery && !tr[p].reversed);
	}
	fxodrv_close(d);
	sim_fxo_free(c);
	if (check_failures != before)
		fprintf(stderr, "seed %llu failed\n", (unsigned long long)seed);
	return check_failures == before;
}

int main(int argc, char **argv)
{
	uint64_t first = argc > 1 ? strtoull(argv[1], NULL, 0) : 1;
	int nseeds = argc > 2 ? atoi(argv[2]) : 4;
	int ok = 0;
	for (int i = 0; i < nseeds; i++)
		ok += run_seed(first + (uint64_t)i);
	printf("%s fxo chaos: %d of %d seeds held the invariants\n", ok == nseeds ? "ok  " : "FAIL", ok, nseeds);
	return check_done();
}
