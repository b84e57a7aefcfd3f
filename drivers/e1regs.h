/*
 * e1regs.h - register map of the CallBox E1 card ("CBE1", 1..8 spans), shared by the
 * driver (drivers/e1drv.c) and the board model (board/sim/sim_e1.c).
 * Documented in docs/hardware.md. Modelled in the spirit of the FALC56 / DS26528:
 * one global block and one block of 0x100 registers per span. Multi-octet
 * registers are little-endian.
 */
#ifndef CALLBOX_E1REGS_H
#define CALLBOX_E1REGS_H

#include "cardregs.h"

enum {
	/* ---- global block ---- */
	E1G_ID = CARD_ID,         /* ro: 0xE1 */
	E1G_REV = CARD_REV,        /* ro: 0x01 */
	E1G_NSPANS = CARD_NUNITS,     /* ro: 1..8 */
	E1G_RESET = CARD_RESET,      /* wo: 0xA5 resets the whole card */
	E1G_DMACTL = CARD_DMACTL,     /* rw: bit0 DMA enable */
	E1G_RINGLEN = CARD_RINGLEN,    /* rw 16: DMA ring length in frames (1..E1_RING_MAX), only while DMA off */
	E1G_DMACOUNT = CARD_DMACOUNT,   /* ro 32: frames moved since DMA enable (also in the DMA header) */
	E1G_SPANISR = 0x000C,    /* ro: bit n = span n has a pending ISR bit */
	E1G_CLKCNT = 0x0010,     /* ro 32: card oscillator frames since reset */

	E1_SPAN_BASE = 0x0100,   /* span n block at E1_SPAN_BASE + n * E1_SPAN_STRIDE */
	E1_SPAN_STRIDE = 0x0100,
	E1_MAX_SPANS = 8,
	E1_RING_MAX = 4096,

	/* ---- per-span block (offsets) ---- */
	E1R_CTRL = 0x00,         /* rw: framing / line configuration, E1CTRL_* */
	E1R_MAINT = 0x01,        /* rw: loopbacks, E1MAINT_* */
	E1R_INJECT = 0x02,       /* wo, self-clearing: single-error injection, E1INJ_* */
	E1R_TXALM = 0x03,        /* rw: alarms sent, E1TXA_* */
	E1R_SATX = 0x04,         /* rw: Sa4..Sa8 sent in NFAS (bit4 = Sa4 ... bit0 = Sa8) */
	E1R_SITX = 0x05,         /* rw: Si bits when CRC-4 is off (bit0 in FAS, bit1 in NFAS) */
	E1R_LOSWIN = 0x06,       /* rw 16: LOS window in frames with no line signal (default 200) */
	E1R_PRBSCTL = 0x08,      /* rw: E1PRBS_* */
	E1R_PRBSMASK = 0x0C,     /* rw 32: timeslots carrying PRBS (bit n = TS n), default 0xFFFFFFFE */
	E1R_STATRAW = 0x10,      /* ro: instantaneous status, E1ST_* */
	E1R_STAT = 0x11,         /* ro: debounced status, E1DB_* */
	E1R_SARX = 0x12,         /* ro: Sa4..Sa8 received (last NFAS) */
	E1R_ISR = 0x13,          /* ro, clear on read: E1ISR_* */
	E1R_LATCH = 0x14,        /* wo: any write copies all counters into the read-out registers */
	E1R_ESTATE = 0x15,       /* ro: elastic store fill in frames (rx, 8 bit saturating) */

	E1R_CNT_FAS = 0x20,      /* ro 32, latched: errored FAS words */
	E1R_CNT_CRC = 0x24,      /* CRC-4 errored sub-multiframes */
	E1R_CNT_FEBE = 0x28,     /* E-bits received as 0 (far-end block errors) */
	E1R_CNT_CV = 0x2C,       /* code violations: AMI excessive zeros (16+ zeros) on the socket line */
	E1R_CNT_RXSLIP = 0x30,   /* controlled slips in the receive elastic store */
	E1R_CNT_TXSLIP = 0x34,   /* controlled slips in the transmit elastic store (line timing) */
	E1R_CNT_ES = 0x38,       /* errored seconds */
	E1R_CNT_PRBS = 0x3C,     /* PRBS bit errors (while in sync) */
	E1R_CNT_HDLCRX = 0x40,   /* good HDLC frames received */
	E1R_CNT_HDLCFCS = 0x44,  /* HDLC frames with a bad FCS */
	E1R_CNT_HDLCABT = 0x48,  /* HDLC aborts (7+ ones inside a frame) */
	E1R_CNT_HDLCBAD = 0x4C,  /* HDLC frames too short / too long / not octet aligned / rx FIFO full */
	E1R_CNT_HDLCTX = 0x50,   /* HDLC frames sent */
	E1R_CNT_RXFRM = 0x54,    /* line frames received */
	E1R_CNT_TXFRM = 0x58,    /* line frames sent */
	E1R_CNT_RUNT = 0x5C,     /* octets of partial frames dropped at the line input */
	E1R_CNT_SES = 0x60,      /* severely errored seconds */
	E1_NCOUNTERS = 17,       /* counters 0x20 .. 0x60 */

	E1R_HTXCTL = 0x70,       /* wo: bit0 commit the frame written to HTXDATA, bit1 flush TX FIFO */
	E1R_HTXFREE = 0x71,      /* ro: free frame slots in the TX FIFO */
	E1R_HTXDATA = 0x72,      /* wo FIFO port (NOINC): octets of the frame being written */
	E1R_HRXCNT = 0x74,       /* ro: frames waiting in the RX FIFO */
	E1R_HRXLEN = 0x76,       /* ro 16: length of the frame at the RX FIFO head (0 = none) */
	E1R_HRXDATA = 0x78,      /* ro FIFO port (NOINC): octets of the head frame */
	E1R_HRXCTL = 0x79,       /* wo: bit0 release the head frame, bit1 flush RX FIFO */

	E1R_CASTX = 0x80,        /* rw: 0x80 + channel (1..30): ABCD sent, low nibble (A = bit3) */
	E1R_CASRX = 0xA0,        /* ro: 0xA0 + channel (1..30): ABCD received, debounced */
	E1R_CASCHG = 0xC0,       /* ro 32, clear on read: bit ch = channel's RX ABCD changed */

	/* E1R_CTRL bits */
	E1CTRL_ENABLE = 0x01,
	E1CTRL_CRC4 = 0x02,
	E1CTRL_CAS = 0x04,       /* 1: TS16 CAS multiframe; 0: CCS, TS16 = HDLC D-channel */
	E1CTRL_HDB3 = 0x08,      /* 1: HDB3, 0: AMI */
	E1CTRL_LINETIME = 0x10,  /* 1: TX clock = RX line clock; 0: internal oscillator */
	E1CTRL_AUTORAI = 0x20,   /* send RAI automatically while LOS/LOF/AIS */
	E1CTRL_TS16CLEAR = 0x40, /* TS16 transparent (taken from the TX ring, given to the RX ring) */

	/* E1R_MAINT bits */
	E1MAINT_LLB = 0x01,      /* local loopback: TX line signal looped into our RX */
	E1MAINT_RLB = 0x02,      /* network line loopback: received line signal sent back unchanged */
	E1MAINT_PLB = 0x04,      /* network payload loopback: received TS1..31 sent back, own TS0 */

	/* E1R_INJECT bits */
	E1INJ_FAS = 0x01,        /* corrupt the next FAS word */
	E1INJ_CRC = 0x02,        /* invert a C-bit of the next CRC-4 word */
	E1INJ_BIT = 0x04,        /* invert one bit of the next PRBS/payload octet */

	/* E1R_TXALM bits */
	E1TXA_RAI = 0x01,        /* A-bit = 1 */
	E1TXA_AIS = 0x02,        /* send unframed all ones */
	E1TXA_DMFA = 0x04,       /* TS16 frame 0 bit 6 (Y) = 1 in CAS mode */

	/* E1R_PRBSCTL bits */
	E1PRBS_TX = 0x01,
	E1PRBS_RX = 0x02,
	E1PRBS_SYNC = 0x80,      /* ro: checker in sync */

	/* E1R_STATRAW bits */
	E1ST_LOS = 0x01,
	E1ST_AIS = 0x02,
	E1ST_LOF = 0x04,         /* no frame alignment (with CRC-4: until the CRC-4 MF confirms it) */
	E1ST_LMFA = 0x08,        /* CRC-4 multiframe not aligned (CRC-4 on) */
	E1ST_RAI = 0x10,
	E1ST_LCASMFA = 0x20,     /* CAS multiframe not aligned (CAS on) */
	E1ST_DMFA = 0x40,        /* distant multiframe alarm received */
	E1ST_PRBSSYNC = 0x80,

	/* E1R_STAT bits (debounced) */
	E1DB_LOS = 0x01,
	E1DB_AIS = 0x02,
	E1DB_LOF = 0x04,
	E1DB_RAI = 0x08,
	E1DB_RED = 0x10,         /* LOS or LOF for 2.5 s; clears after 5 s without */
	E1DB_BLUE = 0x20,        /* AIS for 2.5 s; clears after 5 s without */
	E1DB_YELLOW = 0x40,      /* RAI for 0.5 s; clears after 5 s without */

	/* E1R_ISR bits */
	E1ISR_STAT = 0x01,       /* E1R_STATRAW changed */
	E1ISR_HDLCRX = 0x02,     /* a frame was put into the RX FIFO */
	E1ISR_HDLCTX = 0x04,     /* a frame was sent */
	E1ISR_CAS = 0x08,        /* E1R_CASCHG has bits */
	E1ISR_SLIP = 0x10,
	E1ISR_DBSTAT = 0x20,     /* E1R_STAT changed */
};

/* The counter block (E1R_CNT_FAS ..), in register order: cumulative since card reset, wrapping at
 * 2^32 (take differences). The driver reads it into this struct; the framer model counts in it. */
struct e1_counters {
	uint32_t fas_errors;
	uint32_t crc_errors;
	uint32_t febe;
	uint32_t code_violations;
	uint32_t rx_slips;
	uint32_t tx_slips;
	uint32_t errored_seconds;
	uint32_t prbs_errors;
	uint32_t hdlc_rx;
	uint32_t hdlc_fcs_errors;
	uint32_t hdlc_aborts;
	uint32_t hdlc_bad;
	uint32_t hdlc_tx;
	uint32_t rx_frames;
	uint32_t tx_frames;
	uint32_t runt_octets;
	uint32_t severely_errored_seconds;
};

#endif
