/*
 * fxodrv.h - C driver of the CallBox FXO card over regio (hardware spidev or the board model).
 * Return values as in e1drv.h: 0 / non-negative on success, negative errno on failure.
 * Ports are numbered from 0. Audio on the DMA ring is G.711 A-law, 8 kHz.
 */
#ifndef CALLBOX_FXODRV_H
#define CALLBOX_FXODRV_H

#include <stdint.h>

struct regio;
typedef struct fxodrv fxodrv_t;

struct fxo_port_status {
	int16_t line_dv;      /* tip-ring DC voltage in 0.1 V (e.g. -480 on hook, ~-107 off hook) */
	uint8_t loop_ma;      /* loop current in mA (0 on hook) */
	uint8_t offhook;
	uint8_t ringing;      /* validated ring in progress */
	uint8_t battery;      /* battery present */
	uint8_t reversed;     /* polarity reversed */
	uint8_t ring_raw;     /* ring detector toggling now */
};

struct fxo_event {
	uint8_t type;         /* FXEV_* (fxoregs.h) */
	uint8_t port;
	uint16_t reserved;
	uint32_t timestamp;   /* sample counter (8 kHz) of the card when the event was detected */
	int32_t value;
};

/* DMA: rx[port][ring], tx[port][ring], uint8 A-law; sample k at index k % ring. */
struct fxo_dma_info {
	uint8_t *rx;
	uint8_t *tx;
	uint32_t ring_samples;
	uint32_t nports;
	uint32_t port_stride; /* = ring_samples */
	uint32_t *count;          /* the card sample counter in the DMA header: read it volatile or via fxodrv_dma_count() */
};

fxodrv_t *fxodrv_open(const struct regio *io, int *err);
void fxodrv_close(fxodrv_t *d);
int fxodrv_nports(const fxodrv_t *d);
int fxodrv_reset(fxodrv_t *d);

int fxodrv_hook(fxodrv_t *d, int port, int offhook);
int fxodrv_monitor(fxodrv_t *d, int port, int on);   /* on-hook line monitor (caller ID) */
/* Gains in 0.1 dB, -150..120; out-of-range values are rejected with -EINVAL. */
int fxodrv_set_gain(fxodrv_t *d, int port, int rx_tenth_db, int tx_tenth_db);
int fxodrv_get_gain(fxodrv_t *d, int port, int *rx_tenth_db, int *tx_tenth_db);
/* Ring validation: confirm time and timeout in ms, threshold in V peak. */
int fxodrv_ring_params(fxodrv_t *d, int port, int confirm_ms, int timeout_ms, int threshold_v);
int fxodrv_status(fxodrv_t *d, int port, struct fxo_port_status *st);
/* Pops up to max events into ev; returns how many. */
int fxodrv_events(fxodrv_t *d, struct fxo_event *ev, int max);
uint32_t fxodrv_samples(fxodrv_t *d);

int fxodrv_dma_start(fxodrv_t *d, uint32_t ring_samples);
int fxodrv_dma_stop(fxodrv_t *d);
int fxodrv_dma_info(fxodrv_t *d, struct fxo_dma_info *info);
uint32_t fxodrv_dma_count(fxodrv_t *d);

#endif
