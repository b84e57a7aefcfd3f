/*
 * fxoregs.h - register map of the CallBox FXO card ("CBFX", 4..8 ports), shared by the
 * driver (drivers/fxodrv.c) and the board model (board/sim/sim_fxo.c).
 * Documented in docs/hardware.md. Each port is a DAA in the spirit of the Si3050:
 * hook control, ring validation, line voltage / loop current monitors, codec with
 * hardware gain. Multi-octet registers are little-endian.
 */
#ifndef CALLBOX_FXOREGS_H
#define CALLBOX_FXOREGS_H

#include "cardregs.h"

enum {
	/* ---- global block ---- */
	FXG_ID = CARD_ID,         /* ro: 0xF0 */
	FXG_REV = CARD_REV,        /* ro: 0x01 */
	FXG_NPORTS = CARD_NUNITS,     /* ro: 4..8 */
	FXG_RESET = CARD_RESET,      /* wo: 0xA5 resets the card */
	FXG_DMACTL = CARD_DMACTL,     /* rw: bit0 DMA enable */
	FXG_RINGLEN = CARD_RINGLEN,    /* rw 16: DMA ring length in samples (1..FXO_RING_MAX), only while DMA off */
	FXG_DMACOUNT = CARD_DMACOUNT,   /* ro 32: samples moved since DMA enable (also in the DMA header) */
	FXG_EVCNT = 0x000C,      /* ro 16: events waiting in the event FIFO */
	FXG_EVLOST = 0x000E,     /* ro 16: events dropped because the FIFO was full */
	FXG_EVDATA = 0x0010,     /* ro FIFO port (NOINC): FXO_EVENT_SIZE octets per event, popped */
	FXG_SAMPLES = 0x0014,    /* ro 32: sample counter (8 kHz) = event timestamp clock */

	FXO_PORT_BASE = 0x0100,  /* port n block at FXO_PORT_BASE + n * FXO_PORT_STRIDE */
	FXO_PORT_STRIDE = 0x0040,
	FXO_MAX_PORTS = 8,
	FXO_RING_MAX = 4096,
	FXO_EVENT_SIZE = 12,     /* u8 type, u8 port, u16 0, u32 timestamp, i32 value */
	FXO_EVFIFO = 256,

	/* ---- per-port block (offsets) ---- */
	FXR_CTRL = 0x00,         /* rw: FXCTRL_* */
	FXR_STAT = 0x01,         /* ro: FXST_* */
	FXR_LV = 0x02,           /* ro 16 signed: tip-ring DC voltage in 0.1 V (negative = normal polarity) */
	FXR_LC = 0x04,           /* ro: loop current in mA (0 on hook) */
	FXR_RXGAIN = 0x06,       /* rw 16 signed: line->host gain in 0.1 dB, -150..120 (clamped) */
	FXR_TXGAIN = 0x08,       /* rw 16 signed: host->line gain in 0.1 dB, -150..120 (clamped) */
	FXR_RDTH = 0x0A,         /* rw: ring detect threshold, volts peak (default 40) */
	FXR_RCC = 0x0C,          /* rw 16: ring confirmation time in ms (default 150) */
	FXR_RTO = 0x0E,          /* rw 16: ring timeout in ms (default 128) */
	FXR_RINGFMIN = 0x10,     /* rw: lowest valid ring frequency, Hz (default 15) */
	FXR_RINGFMAX = 0x11,     /* rw: highest valid ring frequency, Hz (default 68) */
	FXR_BATDB = 0x12,        /* rw 16: battery / polarity debounce in ms (default 20) */
	FXR_BATTH = 0x14,        /* rw: battery-present threshold, volts (default 2) */

	/* FXR_CTRL bits */
	FXCTRL_OH = 0x01,        /* off hook */
	FXCTRL_ONHM = 0x02,      /* on-hook line monitor: RX audio passes while on hook (caller ID) */

	/* FXR_STAT bits */
	FXST_OFFHOOK = 0x01,
	FXST_RINGING = 0x02,     /* validated ring in progress (between RING_START and RING_STOP) */
	FXST_BATTERY = 0x04,     /* battery present (debounced) */
	FXST_REVERSED = 0x08,    /* polarity reversed (debounced) */
	FXST_RINGRAW = 0x10,     /* ring detector comparator toggling now (undebounced) */

	/* event types */
	FXEV_RING_START = 1,
	FXEV_RING_STOP = 2,
	FXEV_BATTERY_LOST = 3,
	FXEV_BATTERY_RESTORED = 4,
	FXEV_POLARITY = 5,       /* value: 1 reversed, 0 normal */
	FXEV_HOOK = 6,           /* value: 1 off hook, 0 on hook */
	FXEV_RING_REJECT = 7,    /* a ring burst too short to validate; value = burst length in ms */
};

#endif
