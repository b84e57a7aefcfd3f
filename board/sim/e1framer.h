/*
 * e1framer.h - the E1 framer model (G.704 / G.706 / G.775 / O.151), usable on its own.
 *
 * The simulated E1 card (sim_e1.h) has one per span; a far end (the exchange side of
 * an E1 line, NETWORK role) uses one directly: give it TX timeslot data, D-channel
 * frames and CAS bits, get line frames; give it line frames, get RX timeslot data,
 * D-channel frames, CAS bits, alarms and counters. The role makes no difference to
 * the framer: the network side simply runs on internal timing (it is the clock).
 *
 * Line frames are 32 octets, octet 0 = TS0, bit 1 (first transmitted) = MSB. The
 * receiver finds frame and multiframe alignment itself, at any bit offset.
 * Time is counted in frames of 125 us: each frame passed to e1f_rx() and each frame
 * of e1f_idle() advances the framer's alarm timers by one frame.
 * All buffers are caller-owned; nothing is kept after a call returns.
 */
#ifndef CALLBOX_E1FRAMER_H
#define CALLBOX_E1FRAMER_H

#include <stdint.h>

#include "../../drivers/e1regs.h"   /* struct e1_counters */

typedef struct e1f e1f_t;

struct e1f_config {
	uint8_t cas;          /* 1: TS16 CAS multiframe; 0: TS16 HDLC (CCS) */
	uint8_t crc4;         /* 1: CRC-4 multiframe */
	uint8_t hdb3;         /* line code, reported only (the socket line carries bits) */
	uint8_t auto_rai;     /* send RAI while LOS/LOF/AIS (raw) */
	uint8_t ts16_clear;   /* TS16 transparent: taken from / given to the payload */
	uint8_t reserved;
	uint16_t los_window;  /* frames of no signal / all-zero before LOS (0 = 200 = 25 ms) */
};


enum {
	E1F_FRAME = 32,
	E1F_HDLC_MAX = 300,   /* longest D-channel frame, FCS excluded */
	E1F_HDLC_SLOTS = 16,  /* frames each HDLC FIFO holds */
};

e1f_t *e1f_new(void);
void e1f_free(e1f_t *f);
void e1f_reset(e1f_t *f);                 /* power-on state, default config */
void e1f_configure(e1f_t *f, const struct e1f_config *cfg);
void e1f_get_config(const e1f_t *f, struct e1f_config *cfg);

/*
 * Transmit n frames. payload: n*32 octets of timeslot data (TS0 ignored; TS16 ignored
 * unless ts16_clear) or NULL for idle (0xD5 in voice timeslots); out: n*32 line octets.
 */
void e1f_tx(e1f_t *f, const uint8_t *payload, uint8_t *out, int n);
/*
 * Receive n line frames (n*32 octets, any bit alignment). payload (may be NULL): n*32
 * octets, one aligned frame per input frame (the latest completed aligned frame;
 * 0xFF while not aligned). Returns the number of aligned frames completed.
 */
int e1f_rx(e1f_t *f, const uint8_t *line, uint8_t *payload, int n);
/* n frame times with no signal at all (cable pulled): LOS after the window. */
void e1f_idle(e1f_t *f, int n);

/* Status (e1regs.h bits): E1ST_* raw, E1DB_* debounced. */
unsigned e1f_status_raw(const e1f_t *f);
unsigned e1f_status(const e1f_t *f);
unsigned e1f_sa_rx(const e1f_t *f);
void e1f_counters(const e1f_t *f, struct e1_counters *c);

/* Maintenance: E1TXA_* alarms to send, E1INJ_* single errors, Sa4..Sa8 (bit4 = Sa4),
 * Si bits when CRC-4 is off (bit0 in FAS, bit1 in NFAS). */
void e1f_tx_alarms(e1f_t *f, unsigned alarms);
void e1f_inject(e1f_t *f, unsigned what);
void e1f_sa_tx(e1f_t *f, unsigned sa);
void e1f_si_tx(e1f_t *f, unsigned si);

/* PRBS 2^15-1 per O.151 (inverted) on the timeslots in tsmask (bit n = TS n). */
void e1f_prbs(e1f_t *f, int tx_on, int rx_on, uint32_t tsmask);
int e1f_prbs_sync(const e1f_t *f);
uint32_t e1f_prbs_errors(const e1f_t *f);

/* HDLC D-channel. send: 0, or -1 if the FIFO is full / len is 0 or > E1F_HDLC_MAX.
 * recv: frame length (FCS stripped), 0 if none, -1 if cap is too small (frame kept). */
int e1f_hdlc_send(e1f_t *f, const uint8_t *data, int len);
int e1f_hdlc_recv(e1f_t *f, uint8_t *buf, int cap);
int e1f_hdlc_tx_free(const e1f_t *f);
int e1f_hdlc_rx_pending(const e1f_t *f);
int e1f_hdlc_rx_head_len(const e1f_t *f);
void e1f_hdlc_flush(e1f_t *f, int tx, int rx);

/* CAS ABCD, channel 1..30, low nibble (A = bit 3). RX is debounced (2 equal multiframes).
 * changed: bitmap (bit ch) of channels whose RX ABCD changed since the last call. */
void e1f_cas_tx(e1f_t *f, int chan, unsigned abcd);
unsigned e1f_cas_tx_get(const e1f_t *f, int chan);
unsigned e1f_cas_rx(const e1f_t *f, int chan);
uint32_t e1f_cas_changed(e1f_t *f);

#endif
