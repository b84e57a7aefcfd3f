/*
 * bench_models.c - CPU cost of the C board models alone (no Python): 8 E1 spans in line
 * timing with 8 far-end framers (CCS, CRC-4, D-channel traffic) and 8 FXO ports off hook with
 * audio both ways, 10 ms ticks, for N simulated seconds. Prints CPU seconds per simulated
 * second (= share of one core when run in real time).
 *
 *   gcc -O2 -Idrivers -Iboard/sim tests/csrc/bench_models.c board/sim/e1framer.c board/sim/sim_e1.c board/sim/spi_slave.c \
 *       board/sim/sim_fxo.c board/sim/g711.c drivers/regio.c drivers/e1drv.c drivers/fxodrv.c -lm \
 *       -o /tmp/bench_models && /tmp/bench_models 20
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "e1drv.h"
#include "e1framer.h"
#include "fxodrv.h"
#include "sim_e1.h"
#include "sim_fxo.h"

static double cpu_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : 10;
	if (seconds < 1)
		seconds = 1;
	int err;
	sim_e1_t *e1 = sim_e1_new(8);
	e1drv_t *ed = e1drv_open(sim_e1_regio(e1), &err);
	sim_fxo_t *fx = sim_fxo_new(8);
	fxodrv_t *fd = fxodrv_open(sim_fxo_regio(fx), &err);
	struct e1_span_config cfg = { .crc4 = 1, .hdb3 = 1, .line_timing = 1, .auto_rai = 1 };
	struct e1f_config fcfg = { .crc4 = 1, .hdb3 = 1, .auto_rai = 1 };
	e1f_t *far[8];
	for (int s = 0; s < 8; s++) {
		e1drv_span_config(ed, s, &cfg);
		e1drv_span_enable(ed, s, 1);
		far[s] = e1f_new();
		e1f_configure(far[s], &fcfg);
	}
	e1drv_dma_start(ed, 640);
	struct sim_fxo_line line = { 48000, 0, 0, 0 };
	for (int p = 0; p < 8; p++) {
		sim_fxo_line_set(fx, p, &line);
		fxodrv_hook(fd, p, 1);
		fxodrv_set_gain(fd, p, -30, 20);
	}
	fxodrv_dma_start(fd, 640);
	static uint8_t payload[80 * 32], lbuf[96 * 32], rxp[96 * 32];
	static int16_t pcm[80], pout[160];
	for (int i = 0; i < 80 * 32; i++)
		payload[i] = (uint8_t)(i * 37);
	for (int i = 0; i < 80; i++)
		pcm[i] = (int16_t)((i % 16) * 1000 - 8000);
	static const uint8_t iframe[] = { 0x00, 0x01, 0x00, 0x00, 0x08, 0x01, 0x01, 0x05, 0x04, 0x03,
					  0x80, 0x90, 0xA3, 0x18, 0x03, 0xA9, 0x83, 0x81 };
	double *per_sec = calloc((size_t)seconds, sizeof(double));
	for (int sec = 0; sec < seconds; sec++) {
		double t0 = cpu_now();
		for (int tick = 0; tick < 100; tick++) {
			for (int s = 0; s < 8; s++) {
				if (tick % 10 == 0) {
					e1f_hdlc_send(far[s], iframe, sizeof(iframe));
					e1drv_dchan_send(ed, s, iframe, sizeof(iframe));
				}
				e1f_tx(far[s], payload, lbuf, 80);
				sim_e1_line_rx(e1, s, lbuf, 80 * 32);
			}
			for (int p = 0; p < 8; p++)
				sim_fxo_line_audio_in(fx, p, pcm, 80);
			sim_e1_tick(e1, 80);
			sim_fxo_tick(fx, 80);
			for (int s = 0; s < 8; s++) {
				int n = sim_e1_line_tx(e1, s, lbuf, 96);
				e1f_rx(far[s], lbuf, rxp, n);
				uint8_t m[300];
				while (e1f_hdlc_recv(far[s], m, sizeof(m)) > 0)
					;
				while (e1drv_dchan_recv(ed, s, m, sizeof(m)) > 0)
					;
			}
			for (int p = 0; p < 8; p++)
				sim_fxo_line_audio_out(fx, p, pout, 160);
			struct fxo_event ev[8];
			fxodrv_events(fd, ev, 8);
		}
		per_sec[sec] = cpu_now() - t0;
	}
	qsort(per_sec, (size_t)seconds, sizeof(double), cmp_double);
	struct e1_span_status st;
	e1drv_span_status(ed, 0, &st);
	struct e1_counters c;
	e1drv_span_counters(ed, 0, &c);
	printf("C board models, 8 E1 spans + 8 far-end framers + 8 FXO ports, 10 ms ticks, %d s simulated\n",
	       seconds);
	printf("CPU per simulated second: median %.4f s (%.2f %% of one core), min %.4f, max %.4f\n",
	       per_sec[seconds / 2], per_sec[seconds / 2] * 100.0, per_sec[0], per_sec[seconds - 1]);
	printf("span 0: raw status 0x%02x, crc errors %u, hdlc rx %u tx %u, slips %u/%u\n", st.raw,
	       c.crc_errors, c.hdlc_rx, c.hdlc_tx, c.rx_slips, c.tx_slips);
	for (int s = 0; s < 8; s++)
		e1f_free(far[s]);
	free(per_sec);
	e1drv_close(ed);
	fxodrv_close(fd);
	sim_e1_free(e1);
	sim_fxo_free(fx);
	return 0;
}
