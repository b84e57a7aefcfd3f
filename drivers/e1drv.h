/*
 * e1drv.h - C driver of the CallBox E1 card over regio (hardware spidev or the board model).
 *
 * All functions return 0 (or a documented non-negative value) on success and a negative
 * errno on failure (-ENODEV wrong card, -EINVAL bad argument, -EAGAIN FIFO full,
 * -EMSGSIZE buffer too small, or the backend's error). Buffers are caller-allocated.
 * Spans are numbered from 0, CAS channels 1..30 (channel n = TS n for n <= 15, TS n+1 above).
 */
#ifndef CALLBOX_E1DRV_H
#define CALLBOX_E1DRV_H

#include <stdint.h>

#include "e1regs.h"   /* struct e1_counters */

struct regio;
typedef struct e1drv e1drv_t;

struct e1_span_config {
	uint8_t cas;          /* 1: CAS multiframe on TS16; 0: CCS (TS16 = HDLC D-channel) */
	uint8_t crc4;         /* 1: CRC-4 multiframe on */
	uint8_t hdb3;         /* 1: HDB3, 0: AMI */
	uint8_t line_timing;  /* 1: TX clock from RX line; 0: internal oscillator */
	uint8_t auto_rai;     /* 1: send RAI automatically while in red/blue alarm (raw) */
	uint8_t ts16_clear;   /* 1: TS16 transparent (no CAS, no HDLC) */
	uint16_t los_window;  /* frames without signal before LOS; 0 = default (200 = 25 ms) */
};

struct e1_span_status {
	uint8_t raw;          /* E1ST_* (e1regs.h): instantaneous */
	uint8_t debounced;    /* E1DB_*: debounced, incl. RED / BLUE / YELLOW */
	uint8_t sa_rx;        /* Sa4..Sa8 received (bit4 = Sa4) */
	uint8_t isr;          /* E1ISR_* pending since the last read (reading clears them) */
};


/*
 * The TDM DMA area as the driver sees it. Ring layout (docs/hardware.md):
 *   rx[span][ts][ring_frames], tx[span][ts][ring_frames], uint8 (A-law for voice TS),
 *   so the voice of span s, timeslot t, frames f0..f0+n-1 is rx + (s*32+t)*ring_frames + f0.
 * Frame k of the card's clock lives at index k % ring_frames. After the card has moved
 * frame k, rx[..][k % ring_frames] holds what was received then and tx[..][k % ring_frames]
 * has been sent; the host writes tx frames ahead of the count.
 */
struct e1_dma_info {
	uint8_t *rx;
	uint8_t *tx;
	uint32_t ring_frames;
	uint32_t nspans;
	uint32_t span_stride;     /* octets between spans = 32 * ring_frames */
	uint32_t ts_stride;       /* octets between timeslots = ring_frames */
	uint32_t *count;         /* the card frame counter in the DMA header: read it volatile or via e1drv_dma_count() */
};

/* Open the card behind `io` (the regio must outlive the driver). Checks the ID register. */
e1drv_t *e1drv_open(const struct regio *io, int *err);
void e1drv_close(e1drv_t *d);
int e1drv_nspans(const e1drv_t *d);
int e1drv_reset(e1drv_t *d);

int e1drv_span_config(e1drv_t *d, int span, const struct e1_span_config *cfg);
int e1drv_span_enable(e1drv_t *d, int span, int on);
int e1drv_span_status(e1drv_t *d, int span, struct e1_span_status *st);
int e1drv_span_counters(e1drv_t *d, int span, struct e1_counters *c);

/* Maintenance: loops = E1MAINT_* bits; inject = E1INJ_* bits; alarms = E1TXA_* bits. */
int e1drv_loopback(e1drv_t *d, int span, unsigned loops);
int e1drv_inject(e1drv_t *d, int span, unsigned what);
int e1drv_tx_alarms(e1drv_t *d, int span, unsigned alarms);
int e1drv_sa_tx(e1drv_t *d, int span, unsigned sa);

/* PRBS 2^15-1 (O.151) generator / checker on the timeslots in tsmask (0 = TS1..31). */
int e1drv_prbs(e1drv_t *d, int span, int tx_on, int rx_on, uint32_t tsmask);
int e1drv_prbs_result(e1drv_t *d, int span, int *sync, uint32_t *errors);

/* D-channel (HDLC on TS16 in CCS mode). send: -EAGAIN if the TX FIFO is full.
 * recv: length of the frame copied (FCS stripped), 0 if none, -EMSGSIZE if cap is too
 * small (the frame stays queued). */
int e1drv_dchan_send(e1drv_t *d, int span, const uint8_t *buf, uint32_t len);
int e1drv_dchan_recv(e1drv_t *d, int span, uint8_t *buf, uint32_t cap);
int e1drv_dchan_tx_free(e1drv_t *d, int span);

/* CAS ABCD (low nibble, A = bit 3). get_all fills abcd[0..30] (index = channel, [0] unused)
 * and *changed with the bitmap of channels changed since the last call (bit ch). */
int e1drv_cas_set(e1drv_t *d, int span, int chan, unsigned abcd);
int e1drv_cas_set_all(e1drv_t *d, int span, const uint8_t *abcd31);
int e1drv_cas_get_all(e1drv_t *d, int span, uint8_t *abcd31, uint32_t *changed);

/* TDM DMA: start with a ring of ring_frames frames (a multiple of the tick, <= 4096). */
int e1drv_dma_start(e1drv_t *d, uint32_t ring_frames);
int e1drv_dma_stop(e1drv_t *d);
int e1drv_dma_info(e1drv_t *d, struct e1_dma_info *info);
uint32_t e1drv_dma_count(e1drv_t *d);

#endif
