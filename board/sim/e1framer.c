/*
 * e1framer.c - E1 framer model: G.704 frames, CRC-4 multiframe, TS16 CAS multiframe
 * and HDLC, G.706 alignment, G.775 / O.162 defects with DAHDI-like debounce, O.151
 * PRBS. Byte-wise and table-driven where the bit stream allows it.
 */
#include <stdlib.h>
#include <string.h>

#include "e1framer_int.h"
#include "../../drivers/e1regs.h"

enum {
	FAS_WORD = 0x1B,          /* bits 2..8 of TS0 in FAS frames: 0011011 */
	IDLE_VOICE = 0xD5,        /* A-law silence */
	TS16_CAS_MFAS = 0x0B,     /* 0000 X Y X X with X = 1, Y = 0 */
	PRBS_SYNC_BITS = 64,      /* consecutive matches to declare sync */
	PRBS_WIN = 2048,          /* loss of sync: more than PRBS_LOSS errors in a window */
	PRBS_LOSS = 200,
};

static uint8_t crc4_tab[256];
static uint8_t crc4_pos[15][256];   /* b(x) * x^(8j+4) mod g: a byte followed by j octets */
static uint8_t crc4_skip[16];       /* r(x) * x^256 mod g: the register across one frame */
static uint16_t fcs_tab[256];
static uint8_t rev8[256];
static int tables_ready;

static void tables_init(void)
{
	if (tables_ready)
		return;
	for (int v = 0; v < 256; v++) {
		/* CRC-4, x^4 + x + 1, MSB first: remainder of v(x) * x^4 for an 8-bit v
		 * whose top nibble already holds the register (see crc4_byte). */
		unsigned crc = 0;
		for (int b = 7; b >= 0; b--) {
			unsigned fb = ((crc >> 3) ^ (unsigned)(v >> b)) & 1u;
			crc = (crc << 1) & 0xFu;
			if (fb)
				crc ^= 0x3u;
		}
		crc4_tab[v] = (uint8_t)crc;
		/* FCS-16 (CRC-CCITT reflected, 0x8408) */
		unsigned fcs = (unsigned)v;
		for (int b = 0; b < 8; b++)
			fcs = (fcs & 1u) ? (fcs >> 1) ^ 0x8408u : fcs >> 1;
		fcs_tab[v] = (uint16_t)fcs;
		unsigned r = 0;
		for (int b = 0; b < 8; b++)
			if (v & (1 << b))
				r |= 0x80u >> b;
		rev8[v] = (uint8_t)r;
	}
	for (int j = 0; j < 15; j++)
		for (int v = 0; v < 256; v++) {
			uint8_t c = crc4_tab[v];
			for (int k = 0; k < j; k++)
				c = crc4_tab[(uint8_t)(c << 4)];
			crc4_pos[j][v] = c;
		}
	for (int r = 0; r < 16; r++) {
		uint8_t c = (uint8_t)r;
		for (int k = 0; k < 32; k++)
			c = crc4_tab[(uint8_t)(c << 4)];
		crc4_skip[r] = c;
	}
	tables_ready = 1;
}

static inline uint8_t crc4_byte(uint8_t crc, uint8_t b)
{
	return crc4_tab[(uint8_t)((crc << 4) ^ b)];
}

static uint16_t fcs16(const uint8_t *p, int n)
{
	uint16_t fcs = 0xFFFF;
	while (n-- > 0)
		fcs = (uint16_t)((fcs >> 8) ^ fcs_tab[(fcs ^ *p++) & 0xFF]);
	return fcs;
}

/*
 * CRC-4 over one 32-octet frame; in FAS frames the C bit (TS0 bit 1) counts as 0.
 * The CRC is linear and x^15 = 1 modulo x^4 + x + 1, so octets 15 apart contribute
 * alike: fold the frame into 15 octets and look each up in its position's table, with
 * no chain of dependent lookups (crc4_frame_serial() is the reference).
 */
static uint8_t crc4_frame(uint8_t crc, const uint8_t *fr, int fas)
{
	/* h[k] = fr[1+k] ^ fr[16+k]: for k = 1..15 the two octets of fold position 15-k */
	uint64_t p0, p1, q0, q1;
	memcpy(&p0, fr + 1, 8);
	memcpy(&p1, fr + 9, 8);
	memcpy(&q0, fr + 16, 8);
	memcpy(&q1, fr + 24, 8);
	p0 ^= q0;
	p1 ^= q1;
	uint8_t h[16];
	memcpy(h, &p0, 8);
	memcpy(h + 8, &p1, 8);
	h[15] ^= fr[1];                                   /* position 0: octets 1, 16, 31 */
	h[14] ^= fas ? (uint8_t)(fr[0] & 0x7F) : fr[0];   /* position 1: octets 0, 15, 30 */
	uint8_t c = crc4_skip[crc & 0xF];
	for (int k = 1; k < 16; k++)
		c ^= crc4_pos[15 - k][h[k]];
	return c;
}

uint8_t e1f_crc4_frame_serial(uint8_t crc, const uint8_t *fr, int fas)
{
	tables_init();
	crc = crc4_byte(crc, fas ? (uint8_t)(fr[0] & 0x7F) : fr[0]);
	for (int i = 1; i < 32; i++)
		crc = crc4_byte(crc, fr[i]);
	return crc;
}

uint8_t e1f_crc4_frame_fast(uint8_t crc, const uint8_t *fr, int fas)
{
	tables_init();
	return crc4_frame(crc, fr, fas);
}

/* ------------------------------------------------------------------ setup */

e1f_t *e1f_new(void)
{
	e1f_t *f = malloc(sizeof(*f));
	if (!f)
		return NULL;
	e1f_reset(f);
	return f;
}

void e1f_free(e1f_t *f)
{
	free(f);
}

void e1f_reset(e1f_t *f)
{
	tables_init();
	memset(f, 0, sizeof(*f));
	f->cfg.crc4 = 1;
	f->cfg.hdb3 = 1;
	f->cfg.auto_rai = 1;
	f->cfg.los_window = E1F_LOSWIN_DEFAULT;
	f->sa_tx = 0x1F;
	f->si_tx = 0x3;
	f->prbs_tx = 0x7FFF;
	f->prbs_mask = 0xFFFFFFFEu;
	for (int i = 0; i < 31; i++) {
		f->cas_tx[i] = 0xD;   /* ABCD idle: 1101 (C/D = 01 per G.704 when unused) */
		f->cas_rx[i] = 0xD;
		f->cas_raw_last[i] = 0xD;
	}
	f->rx_fas_next = 1;
	f->last_raw = E1ST_LOF;
	f->t400 = -1;
}

void e1f_configure(e1f_t *f, const struct e1f_config *cfg)
{
	if (!f || !cfg)
		return;
	int mode_change = cfg->cas != f->cfg.cas || cfg->crc4 != f->cfg.crc4;
	f->cfg = *cfg;
	if (!f->cfg.los_window)
		f->cfg.los_window = E1F_LOSWIN_DEFAULT;
	if (mode_change) {
		f->mf_aligned = 0;
		f->mf_hist = 0;
		f->cas_aligned = 0;
		f->rx_crc_prev_valid = 0;
		f->interwork = 0;
		f->t400 = -1;
		f->mf_search = 0;
	}
}

void e1f_get_config(const e1f_t *f, struct e1f_config *cfg)
{
	*cfg = f->cfg;
}

/* ------------------------------------------------------------- HDLC TX */

static void htx_push_bits(e1f_t *f, uint32_t bits, int n)
{
	f->htx_q |= bits << f->htx_qn;
	f->htx_qn += n;
}

/* One octet of frame data, LSB first, with zero-bit insertion. */
static void htx_push_stuffed(e1f_t *f, uint8_t byte)
{
	for (int b = 0; b < 8; b++) {
		unsigned bit = (byte >> b) & 1u;
		htx_push_bits(f, bit, 1);
		if (bit) {
			if (++f->htx_ones == 5) {
				htx_push_bits(f, 0, 1);
				f->htx_ones = 0;
			}
		} else {
			f->htx_ones = 0;
		}
	}
}

static void htx_start(e1f_t *f)
{
	struct e1f_hfifo *q = &f->htx;
	uint16_t fcs = (uint16_t)~fcs16(q->data[q->head], q->len[q->head]);
	f->htx_fcs[0] = (uint8_t)fcs;
	f->htx_fcs[1] = (uint8_t)(fcs >> 8);
	f->htx_active = 1;
	f->htx_idx = 0;
	f->htx_ones = 0;
}

static void htx_refill(e1f_t *f)
{
	struct e1f_hfifo *q = &f->htx;
	if (!f->htx_active) {
		htx_push_bits(f, 0x7E, 8);
		if (q->count)
			htx_start(f);
		return;
	}
	int len = q->len[q->head];
	if (f->htx_idx < len) {
		htx_push_stuffed(f, q->data[q->head][f->htx_idx++]);
	} else if (f->htx_idx < len + 2) {
		htx_push_stuffed(f, f->htx_fcs[f->htx_idx++ - len]);
	} else {
		/* closing flag; it also opens the next frame when one is queued */
		htx_push_bits(f, 0x7E, 8);
		q->head = (q->head + 1) % E1F_HDLC_SLOTS;
		q->count--;
		f->cnt.hdlc_tx++;
		f->isr |= E1ISR_HDLCTX;
		f->htx_active = 0;
		if (q->count)
			htx_start(f);
	}
}

static uint8_t htx_octet(e1f_t *f)
{
	while (f->htx_qn < 8)
		htx_refill(f);
	uint8_t o = rev8[f->htx_q & 0xFF];   /* first bit -> bit 1 (MSB) of TS16 */
	f->htx_q >>= 8;
	f->htx_qn -= 8;
	return o;
}

int e1f_hdlc_send(e1f_t *f, const uint8_t *data, int len)
{
	if (!f || !data)
		return -1;
	struct e1f_hfifo *q = &f->htx;
	if (len <= 0 || len > E1F_HDLC_MAX || q->count >= E1F_HDLC_SLOTS)
		return -1;
	int slot = (q->head + q->count) % E1F_HDLC_SLOTS;
	memcpy(q->data[slot], data, (size_t)len);
	q->len[slot] = (uint16_t)len;
	q->count++;
	return 0;
}

int e1f_hdlc_tx_free(const e1f_t *f)
{
	return E1F_HDLC_SLOTS - f->htx.count;
}

/* ------------------------------------------------------------- HDLC RX */

static void hrx_frame_end(e1f_t *f)
{
	int bits = f->hrx_len * 8 + f->hrx_accn - 7;
	if (bits <= 0)
		return;                 /* consecutive flags */
	if (f->hrx_toolong || (bits & 7) || bits / 8 < 4) {
		f->cnt.hdlc_bad++;
		return;
	}
	int len = bits / 8;
	if (fcs16(f->hrx_buf, len) != 0xF0B8) {
		f->cnt.hdlc_fcs_errors++;
		return;
	}
	struct e1f_hfifo *q = &f->hrx;
	if (q->count >= E1F_HDLC_SLOTS) {
		f->cnt.hdlc_bad++;      /* receive FIFO overflow */
		return;
	}
	int slot = (q->head + q->count) % E1F_HDLC_SLOTS;
	memcpy(q->data[slot], f->hrx_buf, (size_t)(len - 2));
	q->len[slot] = (uint16_t)(len - 2);
	q->count++;
	f->cnt.hdlc_rx++;
	f->isr |= E1ISR_HDLCRX;
}

static inline void hrx_restart(e1f_t *f)
{
	f->hrx_len = 0;
	f->hrx_acc = 0;
	f->hrx_accn = 0;
	f->hrx_toolong = 0;
}

static void hrx_octet(e1f_t *f, uint8_t o)
{
	for (int b = 7; b >= 0; b--) {
		unsigned bit = (o >> b) & 1u;
		if (bit) {
			if (++f->hrx_ones >= 7) {
				if (f->hrx_ones == 7 && f->hrx_inframe &&
				    f->hrx_len * 8 + f->hrx_accn > 6)
					f->cnt.hdlc_aborts++;
				f->hrx_inframe = 0;
				continue;
			}
		} else {
			int ones = f->hrx_ones;
			f->hrx_ones = 0;
			if (ones == 5)
				continue;       /* stuffed zero */
			if (ones == 6) {        /* flag */
				if (f->hrx_inframe)
					hrx_frame_end(f);
				f->hrx_inframe = 1;
				hrx_restart(f);
				continue;
			}
		}
		if (!f->hrx_inframe)
			continue;
		f->hrx_acc |= bit << f->hrx_accn;
		if (++f->hrx_accn == 8) {
			if (f->hrx_len < (int)sizeof(f->hrx_buf))
				f->hrx_buf[f->hrx_len++] = (uint8_t)f->hrx_acc;
			else
				f->hrx_toolong = 1;
			f->hrx_acc = 0;
			f->hrx_accn = 0;
		}
	}
}

int e1f_hdlc_rx_pending(const e1f_t *f)
{
	return f->hrx.count;
}

int e1f_hdlc_rx_head_len(const e1f_t *f)
{
	return f->hrx.count ? f->hrx.len[f->hrx.head] : 0;
}

int e1f_hdlc_recv(e1f_t *f, uint8_t *buf, int cap)
{
	if (!f || (!buf && cap > 0))
		return -1;
	struct e1f_hfifo *q = &f->hrx;
	if (!q->count)
		return 0;
	int len = q->len[q->head];
	if (len > cap)
		return -1;
	memcpy(buf, q->data[q->head], (size_t)len);
	q->head = (q->head + 1) % E1F_HDLC_SLOTS;
	q->count--;
	return len;
}

void e1f_hdlc_flush(e1f_t *f, int tx, int rx)
{
	if (tx) {
		f->htx.count = 0;
		f->htx.head = 0;
		f->htx_active = 0;
	}
	if (rx) {
		f->hrx.count = 0;
		f->hrx.head = 0;
	}
}

/* ----------------------------------------------------------------- PRBS */

/* O.151 2^15-1: x^15 + x^14 + 1, a(n) = a(n-14) ^ a(n-15), sent inverted. */
static inline unsigned prbs_step(uint16_t *s)
{
	unsigned b = ((*s >> 13) ^ (*s >> 14)) & 1u;
	*s = (uint16_t)(((*s << 1) | b) & 0x7FFF);
	return b;
}

static uint8_t prbs_tx_octet(e1f_t *f)
{
	unsigned o = 0;
	for (int i = 0; i < 8; i++)
		o = (o << 1) | prbs_step(&f->prbs_tx);
	return (uint8_t)~o;
}

static void prbs_rx_octet(e1f_t *f, uint8_t o)
{
	o = (uint8_t)~o;
	for (int i = 7; i >= 0; i--) {
		unsigned b = (o >> i) & 1u;
		if (!f->prbs_sync) {
			unsigned pred = ((f->prbs_rx >> 13) ^ (f->prbs_rx >> 14)) & 1u;
			f->prbs_match = (b == pred) ? f->prbs_match + 1 : 0;
			f->prbs_rx = (uint16_t)(((f->prbs_rx << 1) | b) & 0x7FFF);
			if (f->prbs_match >= PRBS_SYNC_BITS && f->prbs_rx) {
				f->prbs_sync = 1;
				f->prbs_win_bits = 0;
				f->prbs_win_err = 0;
			}
			continue;
		}
		unsigned pred = prbs_step(&f->prbs_rx);   /* free-running reference */
		if (b != pred) {
			f->cnt.prbs_errors++;
			f->prbs_win_err++;
		}
		if (++f->prbs_win_bits == PRBS_WIN) {
			if (f->prbs_win_err > PRBS_LOSS) {
				f->prbs_sync = 0;
				f->prbs_match = 0;
			}
			f->prbs_win_bits = 0;
			f->prbs_win_err = 0;
		}
	}
}

void e1f_prbs(e1f_t *f, int tx_on, int rx_on, uint32_t tsmask)
{
	f->prbs_tx_on = tx_on != 0;
	if ((rx_on != 0) != f->prbs_rx_on) {
		f->prbs_sync = 0;
		f->prbs_match = 0;
	}
	f->prbs_rx_on = rx_on != 0;
	f->prbs_mask = (tsmask ? tsmask : 0xFFFFFFFEu) & 0xFFFFFFFEu;
}

int e1f_prbs_sync(const e1f_t *f)
{
	return f->prbs_rx_on && f->prbs_sync;
}

uint32_t e1f_prbs_errors(const e1f_t *f)
{
	return f->cnt.prbs_errors;
}

/* ------------------------------------------------------------------ TX */

static unsigned raw_status(const e1f_t *f);

static void tx_frame(e1f_t *f, const uint8_t *payload, uint8_t *out)
{
	unsigned pos = f->tx_pos;
	f->tx_pos = (pos + 1) & 15;
	f->cnt.tx_frames++;
	if (f->tx_alarms & E1TXA_AIS) {
		memset(out, 0xFF, 32);
		return;
	}
	if (payload)
		memcpy(out + 1, payload + 1, 31);
	else
		memset(out + 1, IDLE_VOICE, 31);

	int ts16_own = !f->cfg.ts16_clear;
	if (f->prbs_tx_on) {
		uint32_t m = f->prbs_mask;
		if (m & (1u << 16))
			ts16_own = 0;
		for (int ts = 1; ts < 32; ts++)
			if (m & (1u << ts))
				out[ts] = prbs_tx_octet(f);
	}
	if (ts16_own) {
		if (f->cfg.cas) {
			if (pos == 0)
				out[16] = (uint8_t)(TS16_CAS_MFAS | ((f->tx_alarms & E1TXA_DMFA) ? 0x04 : 0));
			else
				out[16] = (uint8_t)((f->cas_tx[pos] << 4) | f->cas_tx[pos + 15]);
		} else {
			out[16] = htx_octet(f);
		}
	}

	if (!(pos & 1)) {                   /* FAS frame */
		unsigned c;
		if (f->cfg.crc4)
			c = (f->tx_crc_prev >> (3 - ((pos & 7) >> 1))) & 1u;
		else
			c = f->si_tx & 1u;
		out[0] = (uint8_t)((c << 7) | FAS_WORD);
	} else {                            /* NFAS frame */
		unsigned si;
		if (f->cfg.crc4) {
			if (pos < 12) {
				si = (0x0Bu >> (5 - (pos >> 1))) & 1u;  /* 001011 in frames 1..11 */
			} else {
				si = 1;
				if (f->e_pending > 0) {
					si = 0;
					f->e_pending--;
				}
			}
		} else {
			si = (f->si_tx >> 1) & 1u;
		}
		unsigned a = (f->tx_alarms & E1TXA_RAI) ? 1u : 0u;
		if (f->cfg.auto_rai && (raw_status(f) & (E1ST_LOS | E1ST_LOF | E1ST_AIS)))
			a = 1;
		out[0] = (uint8_t)((si << 7) | 0x40 | (a << 5) | (f->sa_tx & 0x1F));
	}

	if (f->cfg.crc4) {
		f->tx_crc = crc4_frame(f->tx_crc, out, !(pos & 1));
		if ((pos & 7) == 7) {
			f->tx_crc_prev = f->tx_crc;
			f->tx_crc = 0;
			if (f->inject & E1INJ_CRC) {
				f->tx_crc_prev ^= 0x1;
				f->inject &= ~(unsigned)E1INJ_CRC;
			}
		}
	}
	/* single errors are inserted after the CRC is computed, as line errors */
	if ((f->inject & E1INJ_FAS) && !(pos & 1)) {
		out[0] ^= 0x01;
		f->inject &= ~(unsigned)E1INJ_FAS;
	}
	if (f->inject & E1INJ_BIT) {
		int ts = 1;
		if (f->prbs_tx_on)
			while (ts < 31 && !(f->prbs_mask & (1u << ts)))
				ts++;
		out[ts] ^= 0x01;
		f->inject &= ~(unsigned)E1INJ_BIT;
	}
}

void e1f_tx(e1f_t *f, const uint8_t *payload, uint8_t *out, int n)
{
	if (!f || !out)
		return;
	for (int i = 0; i < n; i++)
		tx_frame(f, payload ? payload + 32 * i : NULL, out + 32 * i);
}

/* ------------------------------------------------------------------ RX */

static void lose_alignment(e1f_t *f)
{
	f->aligned = 0;
	f->bad_fas = 0;
	f->mf_aligned = 0;
	f->mf_hist = 0;
	f->cas_aligned = 0;
	f->rx_crc_prev_valid = 0;
	f->rai_run = 0;
	f->rai = 0;
	f->have_fr = 0;
	f->hrx_inframe = 0;
}

static void crc_mf_frame(e1f_t *f, const uint8_t *fr, int fas)
{
	unsigned si = fr[0] >> 7;
	if (!f->mf_aligned) {
		/* G.706 4.2: no CRC-4 multiframe within 8 ms of frame alignment: the frame
		 * alignment was spurious, search again (unless the far end has no CRC-4) */
		if (!f->interwork && ++f->mf_search >= 64) {
			lose_alignment(f);
			return;
		}
		if (fas)
			return;
		f->mf_hist = (f->mf_hist << 1) | si;
		/* two MF alignment signals 001011, 2 ms apart: this NFAS frame is frame 11 */
		if ((f->mf_hist & 0x3F) == 0x0B && ((f->mf_hist >> 8) & 0x3F) == 0x0B) {
			f->mf_aligned = 1;
			f->mf_search = 0;
			f->t400 = -1;
			f->interwork = 0;
			f->mf_pos = 12;
			f->mf_bad = 0;
			f->mf_err_this = 0;
			f->rx_crc_prev_valid = -1;   /* the SMF in progress is partial */
			f->rx_crc = 0;
			f->rx_cbits = 0;
		}
		return;
	}
	unsigned pos = f->mf_pos;
	f->mf_pos = (pos + 1) & 15;
	if ((pos & 1) != (unsigned)!fas) {
		/* FAS / NFAS parity no longer matches the multiframe: realign it */
		f->mf_aligned = 0;
		f->mf_hist = 0;
		f->mf_search = 0;
		return;
	}
	if (fas) {
		f->rx_cbits = (uint8_t)((f->rx_cbits << 1) | si);
	} else if (pos < 12) {
		if (si != ((0x0Bu >> (5 - (pos >> 1))) & 1u))
			f->mf_err_this = 1;
	} else if (!si) {
		f->cnt.febe++;
	}
	f->rx_crc = crc4_frame(f->rx_crc, fr, fas);
	if ((pos & 7) == 7) {
		/* end of a sub-multiframe: its C bits carry the CRC of the previous one */
		if (f->rx_crc_prev_valid > 0) {
			f->crc_blocks++;
			if ((f->rx_cbits & 0xF) != f->rx_crc_prev) {
				f->cnt.crc_errors++;
				f->sec_crc++;
				f->sec_err = 1;
				f->crc_bad_blocks++;
				if (f->e_pending < 16)
					f->e_pending++;
			}
			if (f->crc_blocks == 1000) {
				int reframe = f->crc_bad_blocks >= 915;
				f->crc_blocks = 0;
				f->crc_bad_blocks = 0;
				if (reframe) {
					lose_alignment(f);
					return;
				}
			}
		}
		f->rx_crc_prev = f->rx_crc;
		f->rx_crc_prev_valid = f->rx_crc_prev_valid < 0 ? 0 : 1;
		f->rx_crc = 0;
		f->rx_cbits = 0;
		if (pos == 15) {
			f->mf_bad = f->mf_err_this ? f->mf_bad + 1 : 0;
			f->mf_err_this = 0;
			if (f->mf_bad >= 2) {
				f->mf_aligned = 0;
				f->mf_hist = 0;
				f->mf_search = 0;
			}
		}
	}
}

static void cas_frame(e1f_t *f, uint8_t ts16)
{
	f->ts16_zero_run = ts16 ? 0 : f->ts16_zero_run + 1;
	if (!f->cas_aligned) {
		if ((ts16 & 0xF0) == 0 && f->prev_ts16 != 0) {
			f->cas_aligned = 1;
			f->cas_pos = 1;
			f->cas_bad = 0;
			f->dmfa = (ts16 & 0x04) != 0;
		}
		f->prev_ts16 = ts16;
		return;
	}
	f->prev_ts16 = ts16;
	unsigned pos = f->cas_pos;
	f->cas_pos = (pos + 1) & 15;
	if (pos == 0) {
		if (ts16 & 0xF0) {
			if (++f->cas_bad >= 2)
				f->cas_aligned = 0;
			return;
		}
		f->cas_bad = 0;
		f->dmfa = (ts16 & 0x04) != 0;
		return;
	}
	if (f->ts16_zero_run >= 16) {       /* G.732: TS16 all zero for a multiframe */
		f->cas_aligned = 0;
		return;
	}
	unsigned abcd[2] = { (unsigned)ts16 >> 4, (unsigned)ts16 & 0xFu };
	int ch[2] = { (int)pos, (int)pos + 15 };
	for (int k = 0; k < 2; k++) {
		int c = ch[k];
		if (abcd[k] == f->cas_raw_last[c] && abcd[k] != f->cas_rx[c]) {
			f->cas_rx[c] = (uint8_t)abcd[k];
			f->cas_changed |= 1u << c;
			f->isr |= E1ISR_CAS;
		}
		f->cas_raw_last[c] = (uint8_t)abcd[k];
	}
}

/* One aligned frame. */
static void rx_frame(e1f_t *f, const uint8_t *fr)
{
	int fas = f->rx_fas_next;
	f->rx_fas_next = !fas;
	if (fas) {
		if ((fr[0] & 0x7F) != FAS_WORD) {
			f->cnt.fas_errors++;
			f->sec_err = 1;
			if (++f->bad_fas >= 3) {
				lose_alignment(f);
				return;
			}
		} else {
			f->bad_fas = 0;
		}
	} else {
		unsigned a = (fr[0] >> 5) & 1u;
		f->sa_rx = fr[0] & 0x1F;
		if (a) {
			f->rai_clear_run = 0;
			if (++f->rai_run >= 2)
				f->rai = 1;
		} else {
			f->rai_run = 0;
			if (++f->rai_clear_run >= 2)
				f->rai = 0;
		}
	}
	if (f->cfg.crc4)
		crc_mf_frame(f, fr, fas);
	if (!f->aligned)
		return;
	f->fa_age++;
	memcpy(f->last_fr, fr, 32);
	f->have_fr = 1;
	f->rx_aligned_frames++;
	if (!f->cfg.ts16_clear && !(f->prbs_rx_on && (f->prbs_mask & (1u << 16)))) {
		if (f->cfg.cas)
			cas_frame(f, fr[16]);
		else
			hrx_octet(f, fr[16]);
	}
	if (f->prbs_rx_on) {
		uint32_t m = f->prbs_mask;
		for (int ts = 1; ts < 32; ts++)
			if (m & (1u << ts))
				prbs_rx_octet(f, fr[ts]);
	}
}

static inline uint8_t bits_at(const uint8_t *b, int bitpos)
{
	int q = bitpos >> 3, r = bitpos & 7;
	return (uint8_t)((((unsigned)b[q] << 8) | b[q + 1]) >> (8 - r));
}

/* G.706 4.1.2: FAS, then bit 2 = 1 in the next frame, then FAS again. */
static int hunt(e1f_t *f)
{
	const uint8_t *b = f->rxbuf + f->rx_rd;
	for (int p = 0; p < 256; p++) {
		if ((bits_at(b, p) & 0x7F) != FAS_WORD)
			continue;
		if (!(bits_at(b, p + 256) & 0x40))
			continue;
		if ((bits_at(b, p + 512) & 0x7F) != FAS_WORD)
			continue;
		f->rx_rd += p >> 3;
		f->rx_bit = p & 7;
		f->aligned = 1;
		f->rx_fas_next = 1;
		f->bad_fas = 0;
		f->fa_age = 0;
		f->mf_search = 0;
		if (f->t400 < 0)
			f->t400 = 0;
		f->mf_aligned = 0;
		f->mf_hist = 0;
		f->cas_aligned = 0;
		f->prev_ts16 = 0;
		return 1;
	}
	return 0;
}

static void rx_octets(e1f_t *f, const uint8_t *in)
{
	if (f->rx_wr + 32 > E1F_RXBUF) {
		int n = f->rx_wr - f->rx_rd;
		memmove(f->rxbuf, f->rxbuf + f->rx_rd, (size_t)n);
		f->rx_rd = 0;
		f->rx_wr = n;
	}
	memcpy(f->rxbuf + f->rx_wr, in, 32);
	f->rx_wr += 32;
	for (;;) {
		int avail = f->rx_wr - f->rx_rd;
		if (!f->aligned) {
			if (avail < 97)
				return;
			if (!hunt(f)) {
				f->rx_rd += 32;
				continue;
			}
			continue;
		}
		if (avail < 32 + (f->rx_bit != 0))
			return;
		uint8_t fr[32];
		const uint8_t *s = f->rxbuf + f->rx_rd;
		int sh = f->rx_bit;
		if (sh == 0) {
			memcpy(fr, s, 32);
		} else {
			for (int i = 0; i < 32; i++)
				fr[i] = (uint8_t)((s[i] << sh) | (s[i + 1] >> (8 - sh)));
		}
		f->rx_rd += 32;
		rx_frame(f, fr);
	}
}

/* ---------------------------------------------------------- alarms/time */

static unsigned raw_status(const e1f_t *f)
{
	unsigned s = 0;
	if (f->los)
		s |= E1ST_LOS;
	if (f->ais)
		s |= E1ST_AIS;
	/* with CRC-4 the frame alignment counts once the CRC-4 multiframe confirms it
	 * (G.706 4.2), or alone when the far end has no CRC-4 (Annex B) */
	if (!f->aligned || (f->cfg.crc4 && !f->mf_aligned && !f->interwork))
		s |= E1ST_LOF;
	if (f->cfg.crc4 && !(f->aligned && f->mf_aligned))
		s |= E1ST_LMFA;
	if (f->aligned && f->rai)
		s |= E1ST_RAI;
	if (f->cfg.cas && !(f->aligned && f->cas_aligned))
		s |= E1ST_LCASMFA;
	if (f->cfg.cas && f->aligned && f->cas_aligned && f->dmfa)
		s |= E1ST_DMFA;
	if (f->prbs_rx_on && f->prbs_sync)
		s |= E1ST_PRBSSYNC;
	return s;
}

static void debounce(struct e1f_debounce *d, int raw, uint32_t n, uint32_t on_time)
{
	if (raw) {
		d->off = 0;
		d->on = d->on + n < d->on ? UINT32_MAX : d->on + n;
		if (d->on >= on_time)
			d->state = 1;
	} else {
		d->on = 0;
		d->off = d->off + n < d->off ? UINT32_MAX : d->off + n;
		if (d->off >= E1F_ALM_OFF)
			d->state = 0;
	}
}

/* n frame times pass with the current raw status. */
static void advance(e1f_t *f, uint32_t n)
{
	unsigned raw = raw_status(f);
	if (raw != f->last_raw) {
		f->isr |= E1ISR_STAT;
		f->last_raw = raw;
	}
	int ais = (raw & E1ST_AIS) != 0;
	debounce(&f->db_los, (raw & E1ST_LOS) != 0, n, E1F_RED_ON);
	debounce(&f->db_lof, (raw & E1ST_LOF) && !ais && !(raw & E1ST_LOS), n, E1F_RED_ON);
	debounce(&f->db_ais, ais, n, E1F_RED_ON);
	debounce(&f->db_rai, (raw & E1ST_RAI) != 0, n, E1F_YEL_ON);
	unsigned db = 0;
	if (f->db_los.state)
		db |= E1DB_LOS | E1DB_RED;
	if (f->db_lof.state)
		db |= E1DB_LOF | E1DB_RED;
	if (f->db_ais.state)
		db |= E1DB_AIS | E1DB_BLUE;
	if (f->db_rai.state)
		db |= E1DB_RAI | E1DB_YELLOW;
	if (db != f->status_db) {
		f->isr |= E1ISR_DBSTAT;
		f->status_db = db;
	}
	if (raw & (E1ST_LOS | E1ST_LOF | E1ST_AIS))
		f->sec_defect = 1;
	while (n) {
		uint32_t step = E1F_SEC - f->sec_frames;
		if (step > n)
			step = n;
		f->sec_frames += step;
		n -= step;
		if (f->sec_frames == E1F_SEC) {
			if (f->sec_err || f->sec_defect)
				f->cnt.errored_seconds++;
			if (f->sec_defect || f->sec_crc >= 300)
				f->cnt.severely_errored_seconds++;
			f->sec_frames = 0;
			f->sec_err = 0;
			f->sec_crc = 0;
			f->sec_defect = (raw & (E1ST_LOS | E1ST_LOF | E1ST_AIS)) != 0;
		}
	}
}

static inline uint64_t pop_bytes(uint64_t x)
{
	/* SWAR: per-octet bit counts (no libgcc call without -mpopcnt) */
	x = x - ((x >> 1) & 0x5555555555555555ull);
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	return (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
}

static inline int popcount32(const uint8_t *p)
{
	uint64_t w[4];
	memcpy(w, p, 32);
	uint64_t s = pop_bytes(w[0]) + pop_bytes(w[1]) + pop_bytes(w[2]) + pop_bytes(w[3]);
	s = (s & 0x00FF00FF00FF00FFull) + ((s >> 8) & 0x00FF00FF00FF00FFull);   /* 16-bit lanes, up to 256 */
	return (int)((s * 0x0001000100010001ull) >> 48);
}

/*
 * AMI has no zero substitution, so 16 or more zeros in a row are a line-code fault
 * (excessive zeros, counted with the code violations as the DS26528 can): one count per run.
 * HDB3 replaces every 4 zeros on the line, and the socket carries decoded bits, so there
 * is nothing to see in HDB3 mode.
 */
static void ami_exz(e1f_t *f, const uint8_t *in)
{
	uint32_t run = f->zrun;
	for (int i = 0; i < 32; i++) {
		uint8_t o = in[i];
		if (!o) {
			run += 8;
			continue;
		}
		run += (uint32_t)__builtin_clz(o) - 24;       /* leading zeros, MSB first */
		if (run >= 16)
			f->cnt.code_violations++;
		run = (uint32_t)__builtin_ctz(o);             /* trailing zeros start the next run */
	}
	f->zrun = run > 1000000 ? 1000000 : run;   /* a run still going is counted when it ends */
}

int e1f_rx(e1f_t *f, const uint8_t *line, uint8_t *payload, int n)
{
	if (!f || !line)
		return 0;
	int done = 0;
	for (int i = 0; i < n; i++) {
		const uint8_t *in = line + 32 * i;
		int ones = popcount32(in);
		f->cnt.rx_frames++;
		if (!f->cfg.hdb3)
			ami_exz(f, in);
		f->nosig = 0;
		/* LOS (G.775 adapted): all-zero frames for the window. Cleared by a frame with
		 * pulses: with HDB3 any one bit (zeros are substituted by pulses on the line),
		 * with AMI a density of at least 12.5 % ones. */
		if (ones == 0) {
			if (++f->zero_frames >= f->cfg.los_window && !f->los) {
				f->los = 1;
				f->interwork = 0;
				f->t400 = -1;
				lose_alignment(f);
				f->rx_rd = f->rx_wr = 0;
			}
		} else {
			f->zero_frames = 0;
			if (f->los && (f->cfg.hdb3 || ones >= 32))
				f->los = 0;
		}
		/* AIS (O.162): < 3 zeros in each of two consecutive 512-bit periods and LOF */
		f->ais_zeros += (uint32_t)(256 - ones);
		if (f->ais_half) {
			unsigned low = f->ais_zeros < 3;
			f->ais_hist = ((f->ais_hist << 1) | low) & 3u;
			if (f->ais_hist == 3 && !f->aligned)
				f->ais = 1;
			else if (f->ais_hist == 0)
				f->ais = 0;
			f->ais_zeros = 0;
		}
		f->ais_half ^= 1;

		if (!f->los) {
			uint32_t got = f->rx_aligned_frames;
			rx_octets(f, in);
			done += (int)(f->rx_aligned_frames - got);
		}
		/* G.706 Annex B: frame alignment found again and again for 400 ms without a
		 * CRC-4 multiframe: the far end does not send CRC-4 */
		if (f->cfg.crc4 && f->t400 >= 0 && !(f->aligned && f->mf_aligned)) {
			if (f->t400 < 3200) {
				f->t400++;
			} else if (f->aligned && f->fa_age >= 32) {
				/* a real frame alignment lasts; a spurious one dies in a few frames */
				f->interwork = 1;
				f->t400 = -1;
			}
		}
		if (payload) {
			if (f->aligned && f->have_fr)
				memcpy(payload + 32 * i, f->last_fr, 32);
			else
				memset(payload + 32 * i, 0xFF, 32);
		}
		advance(f, 1);
	}
	return done;
}

void e1f_idle(e1f_t *f, int n)
{
	if (!f || n <= 0)
		return;
	uint32_t win = f->cfg.los_window;
	uint32_t before = f->nosig;
	f->nosig = before + (uint32_t)n < before ? UINT32_MAX : before + (uint32_t)n;
	if (before < win && f->nosig >= win) {
		/* time up to the window still counts with the old status */
		advance(f, win - before);
		f->los = 1;
		f->interwork = 0;
		f->t400 = -1;
		lose_alignment(f);
		f->rx_rd = f->rx_wr = 0;
		f->ais = 0;
		f->ais_hist = 0;
		advance(f, f->nosig - win);
	} else {
		advance(f, (uint32_t)n);
	}
}

/* --------------------------------------------------------------- access */

unsigned e1f_status_raw(const e1f_t *f)
{
	return raw_status(f);
}

unsigned e1f_status(const e1f_t *f)
{
	return f->status_db;
}

unsigned e1f_sa_rx(const e1f_t *f)
{
	return f->sa_rx;
}

void e1f_counters(const e1f_t *f, struct e1_counters *c)
{
	*c = f->cnt;
}

unsigned e1f_isr_take(e1f_t *f)
{
	unsigned v = f->isr;
	f->isr = 0;
	return v;
}

void e1f_tx_alarms(e1f_t *f, unsigned alarms)
{
	f->tx_alarms = alarms & (E1TXA_RAI | E1TXA_AIS | E1TXA_DMFA);
}

void e1f_inject(e1f_t *f, unsigned what)
{
	f->inject |= what & (E1INJ_FAS | E1INJ_CRC | E1INJ_BIT);
}

void e1f_sa_tx(e1f_t *f, unsigned sa)
{
	f->sa_tx = sa & 0x1F;
}

void e1f_si_tx(e1f_t *f, unsigned si)
{
	f->si_tx = si & 3u;
}

void e1f_cas_tx(e1f_t *f, int chan, unsigned abcd)
{
	if (chan >= 1 && chan <= 30)
		f->cas_tx[chan] = (uint8_t)(abcd & 0xF);
}

unsigned e1f_cas_tx_get(const e1f_t *f, int chan)
{
	return (chan >= 1 && chan <= 30) ? f->cas_tx[chan] : 0;
}

unsigned e1f_cas_rx(const e1f_t *f, int chan)
{
	return (chan >= 1 && chan <= 30) ? f->cas_rx[chan] : 0;
}

uint32_t e1f_cas_changed(e1f_t *f)
{
	uint32_t v = f->cas_changed;
	f->cas_changed = 0;
	return v;
}
