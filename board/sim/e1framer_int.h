/*
 * e1framer_int.h - inside of the E1 framer model, shared by e1framer.c and sim_e1.c
 * (the card reaches its framers' registers directly). Not part of the cffi contract.
 */
#ifndef CALLBOX_E1FRAMER_INT_H
#define CALLBOX_E1FRAMER_INT_H

#include <stdint.h>

#include "e1framer.h"

enum {
	E1F_RXBUF = 256,          /* line octets buffered for alignment */
	E1F_SEC = 8000,           /* frames per second */
	E1F_RED_ON = 20000,       /* 2.5 s */
	E1F_YEL_ON = 4000,        /* 0.5 s */
	E1F_ALM_OFF = 40000,      /* 5 s recovery */
	E1F_LOSWIN_DEFAULT = 200, /* frames (25 ms): socket lines deliver frames in batches */
};

struct e1f_hfifo {
	uint8_t data[E1F_HDLC_SLOTS][E1F_HDLC_MAX + 2];
	uint16_t len[E1F_HDLC_SLOTS];
	int head;
	int count;
};

struct e1f_debounce {
	uint32_t on;              /* frames the raw condition has been present */
	uint32_t off;             /* frames it has been absent */
	uint8_t state;
};

struct e1f {
	struct e1f_config cfg;
	unsigned tx_alarms, inject, sa_tx, si_tx;

	/* ---- transmitter ---- */
	unsigned tx_pos;          /* frame number in the 16-frame multiframe */
	uint8_t tx_crc;           /* CRC-4 of the sub-multiframe being sent */
	uint8_t tx_crc_prev;      /* CRC-4 of the previous one, sent in this one's C bits */
	int e_pending;            /* errored received SMFs still to report as E = 0 */
	uint8_t cas_tx[31];
	/* HDLC transmitter */
	struct e1f_hfifo htx;
	int htx_active;           /* a frame is being sent */
	int htx_idx;              /* next octet of it (FCS octets at len, len+1) */
	uint8_t htx_fcs[2];
	uint32_t htx_q;           /* bit queue, first bit in bit 0 */
	int htx_qn;
	int htx_ones;
	/* PRBS generator */
	int prbs_tx_on, prbs_rx_on;
	uint32_t prbs_mask;
	uint16_t prbs_tx;

	/* ---- receiver ---- */
	uint8_t rxbuf[E1F_RXBUF];
	int rx_rd, rx_wr;         /* valid octets rxbuf[rx_rd .. rx_wr) */
	int aligned;              /* frame alignment */
	int rx_bit;               /* bit offset of frames in the octet stream */
	int rx_fas_next;          /* the next aligned frame should carry FAS */
	int bad_fas;              /* consecutive errored FAS words */
	uint8_t last_fr[32];      /* the latest aligned frame */
	int have_fr;
	uint32_t rx_aligned_frames;
	/* CRC-4 multiframe */
	int mf_aligned;
	unsigned mf_pos;          /* position of the next aligned frame in the multiframe */
	uint32_t mf_hist;         /* Si bits of NFAS frames while hunting, newest in bit 0 */
	int mf_bad;               /* consecutive multiframes with an errored MF pattern */
	int mf_err_this;
	uint8_t rx_crc;           /* CRC-4 being computed over the current SMF */
	uint8_t rx_crc_prev;      /* computed over the previous SMF */
	int rx_crc_prev_valid;
	uint8_t rx_cbits;         /* C bits received in the current SMF */
	int crc_blocks, crc_bad_blocks; /* G.706 4.3.2: 915 of 1000 errored -> reframe */
	uint32_t fa_age;          /* aligned frames since frame alignment was found */
	int mf_search;            /* aligned frames without CRC-4 MF alignment (8 ms rule) */
	int32_t t400;             /* G.706 Annex B 400 ms timer, frames; -1 = stopped */
	int interwork;            /* far end without CRC-4: frame alignment accepted alone */
	/* CAS multiframe */
	int cas_aligned;
	unsigned cas_pos;
	int cas_bad;
	uint8_t prev_ts16;
	int ts16_zero_run;
	uint8_t cas_raw_last[31];
	uint8_t cas_rx[31];
	uint32_t cas_changed;
	int dmfa;
	/* NFAS contents */
	int rai_run;              /* consecutive NFAS with A = 1 */
	int rai_clear_run;
	int rai;
	uint8_t sa_rx;
	/* HDLC receiver */
	struct e1f_hfifo hrx;
	uint8_t hrx_buf[E1F_HDLC_MAX + 4];
	int hrx_len;
	uint32_t hrx_acc;
	int hrx_accn;
	int hrx_ones;
	int hrx_inframe;
	int hrx_toolong;
	/* PRBS checker */
	uint16_t prbs_rx;         /* shift register while hunting, reference once in sync */
	int prbs_sync;
	int prbs_match;
	uint32_t prbs_win_bits, prbs_win_err;

	/* ---- line condition and alarms ---- */
	uint32_t zrun;            /* zeros in a row at the end of the received stream (AMI EXZ) */
	uint32_t nosig;           /* frames with no signal (idle) */
	uint32_t zero_frames;     /* consecutive all-zero frames */
	int los;
	uint32_t ais_zeros;       /* zeros in the current 512-bit period */
	int ais_half;
	unsigned ais_hist;        /* bit0: last period had < 3 zeros, bit1: the one before */
	int ais;
	struct e1f_debounce db_los, db_lof, db_ais, db_rai;
	unsigned status_db;
	unsigned last_raw;
	unsigned isr;
	/* seconds */
	uint32_t sec_frames;
	int sec_err, sec_defect;
	uint32_t sec_crc;

	struct e1_counters cnt;
};

/* CRC-4 of one frame continuing from crc: bit-serial reference and the folded version. */
uint8_t e1f_crc4_frame_serial(uint8_t crc, const uint8_t *fr, int fas);
uint8_t e1f_crc4_frame_fast(uint8_t crc, const uint8_t *fr, int fas);

/* ISR bits accumulated since the last call (E1ISR_*), cleared. */
unsigned e1f_isr_take(e1f_t *f);

#endif
