/*
 * sim_e1.c - the simulated E1 card: per span an e1framer behind the register map of
 * drivers/e1regs.h, elastic stores, the line output queue, and the TDM DMA area.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim_e1.h"
#include "sim_card.h"
#include "e1framer_int.h"
#include "../../drivers/dmahdr.h"
#include "../../drivers/e1regs.h"
#include "../../drivers/regio.h"

/*
 * Elastic store. It starts delivering once half full (so batches of up to half its depth
 * in either order cause no slip); after that a controlled slip repeats one frame when it
 * runs empty and deletes one frame when it overflows, like a framer's elastic buffer.
 */
struct estore {
	uint8_t fr[SIM_E1_ES_DEPTH][32];
	int rd, n;
	int primed;
	uint8_t last[32];
};

struct span {
	struct e1f f;
	uint8_t ctrl, maint, txalm, prbsctl;
	uint32_t prbsmask;
	struct estore rx_es;      /* line -> DMA */
	struct estore tx_es;      /* DMA -> line, used in line timing */
	uint8_t txq[SIM_E1_TXQ][32];
	int txq_rd, txq_n;
	uint32_t txq_dropped;
	uint32_t since_rx;        /* oscillator frames since the last line frame */
	uint32_t runt;
	uint8_t isr;
	uint32_t latched[E1_NCOUNTERS];
	uint8_t htx_buf[E1F_HDLC_MAX];
	int htx_len;
	int htx_overflow;
	int hrx_rdpos;
	uint32_t caschg_snap;
};

struct sim_e1 {
	struct sim_card card;     /* registers, DMA area */
	int nspans;
	uint32_t clkcnt;
	struct span sp[];
};

static const uint8_t idle_frame[32] = {
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
};

/* ---------------------------------------------------------- elastic store */

static void es_reset(struct estore *es)
{
	es->rd = 0;
	es->n = 0;
	es->primed = 0;
	memcpy(es->last, idle_frame, 32);
}

/* returns 1 if a slip happened */
static int es_push(struct estore *es, const uint8_t *fr)
{
	int slip = 0;
	if (es->n == SIM_E1_ES_DEPTH) {
		/* overflow: the oldest frame is deleted */
		es->rd = (es->rd + 1) % SIM_E1_ES_DEPTH;
		es->n--;
		slip = 1;
	}
	memcpy(es->fr[(es->rd + es->n) % SIM_E1_ES_DEPTH], fr, 32);
	es->n++;
	if (!es->primed && es->n >= SIM_E1_ES_DEPTH / 2)
		es->primed = 1;
	return slip;
}

/* returns 1 if a slip happened; *out gets the frame to use */
static int es_pop(struct estore *es, const uint8_t **out, int count_slip)
{
	*out = es->last;
	if (!es->primed)
		return 0;
	if (es->n == 0)
		return count_slip;   /* underflow: the last frame is repeated */
	memcpy(es->last, es->fr[es->rd], 32);
	es->rd = (es->rd + 1) % SIM_E1_ES_DEPTH;
	es->n--;
	return 0;
}

/* ------------------------------------------------------------ line side */

static void txq_push(struct span *s, const uint8_t *fr)
{
	if (s->txq_n == SIM_E1_TXQ) {
		s->txq_dropped++;
		s->txq_rd = (s->txq_rd + 1) % SIM_E1_TXQ;
		s->txq_n--;
	}
	memcpy(s->txq[(s->txq_rd + s->txq_n) % SIM_E1_TXQ], fr, 32);
	s->txq_n++;
}

static int enabled(const struct span *s)
{
	return s->ctrl & E1CTRL_ENABLE;
}

static int line_timed(const struct span *s)
{
	return ((s->ctrl & E1CTRL_LINETIME) || (s->maint & E1MAINT_PLB)) && !(s->maint & E1MAINT_LLB);
}

static int rx_bad(const struct span *s)
{
	return (e1f_status_raw(&s->f) & (E1ST_LOS | E1ST_LOF)) != 0;
}

static void span_rx_frame(struct span *s, const uint8_t *line)
{
	uint8_t pl[32];
	e1f_rx(&s->f, line, pl, 1);
	if (es_push(&s->rx_es, pl)) {
		s->f.cnt.rx_slips++;
		s->isr |= E1ISR_SLIP;
	}
}

static void span_tx_frame(struct span *s, const uint8_t *payload, uint8_t *out)
{
	if (s->maint & E1MAINT_PLB) {
		/* payload loopback: TS1..31 as received (TS16 too), own TS0 */
		uint8_t clear = s->f.cfg.ts16_clear;
		s->f.cfg.ts16_clear = 1;
		e1f_tx(&s->f, s->f.have_fr ? s->f.last_fr : NULL, out, 1);
		s->f.cfg.ts16_clear = clear;
		(void)payload;
	} else {
		e1f_tx(&s->f, payload, out, 1);
	}
}

int sim_e1_line_rx(sim_e1_t *c, int span, const uint8_t *octets, int noctets)
{
	if (!c || span < 0 || span >= c->nspans || noctets < 0 || (!octets && noctets))
		return -EINVAL;
	struct span *s = &c->sp[span];
	int n = noctets / 32;
	s->runt += (uint32_t)(noctets % 32);
	if (!enabled(s) || (s->maint & E1MAINT_LLB))
		return n;   /* transmitter and receiver off, or receiver looped locally */
	for (int i = 0; i < n; i++) {
		const uint8_t *line = octets + 32 * i;
		s->since_rx = 0;
		if (s->maint & E1MAINT_PLB) {
			span_rx_frame(s, line);
			uint8_t out[32];
			span_tx_frame(s, NULL, out);
			txq_push(s, out);
			continue;
		}
		if (s->maint & E1MAINT_RLB)
			txq_push(s, line);
		span_rx_frame(s, line);
		if ((s->ctrl & E1CTRL_LINETIME) && !(s->maint & E1MAINT_RLB)) {
			const uint8_t *pl;
			if (es_pop(&s->tx_es, &pl, 1)) {
				s->f.cnt.tx_slips++;
				s->isr |= E1ISR_SLIP;
			}
			uint8_t out[32];
			span_tx_frame(s, pl, out);
			txq_push(s, out);
		}
	}
	return n;
}

int sim_e1_line_tx(sim_e1_t *c, int span, uint8_t *frames, int maxframes)
{
	if (!c || span < 0 || span >= c->nspans || maxframes < 0 || (!frames && maxframes))
		return -EINVAL;
	struct span *s = &c->sp[span];
	int n = 0;
	while (n < maxframes && s->txq_n) {
		memcpy(frames + 32 * n, s->txq[s->txq_rd], 32);
		s->txq_rd = (s->txq_rd + 1) % SIM_E1_TXQ;
		s->txq_n--;
		n++;
	}
	return n;
}

int sim_e1_line_tx_pending(const sim_e1_t *c, int span)
{
	if (!c || span < 0 || span >= c->nspans)
		return -EINVAL;
	return c->sp[span].txq_n;
}

uint32_t sim_e1_line_tx_dropped(const sim_e1_t *c, int span)
{
	if (!c || span < 0 || span >= c->nspans)
		return 0;
	return c->sp[span].txq_dropped;
}

/* ----------------------------------------------------------------- clock */

/* One span over n oscillator frames starting at DMA frame count `base`. */
static void span_tick(sim_e1_t *c, int si, int n, int dma_on, uint32_t base)
{
	struct span *s = &c->sp[si];
	uint32_t ring = c->card.ringlen;
	uint8_t *rxr = sim_card_rx_ring(&c->card, si);
	const uint8_t *txr = sim_card_tx_ring(&c->card, si);
	uint32_t win = s->f.cfg.los_window;
	uint32_t idx = dma_on ? base % ring : 0;
	for (int k = 0; k < n; k++) {
		/* no line frames for the LOS window: the framer sees no signal */
		if (!(s->maint & E1MAINT_LLB)) {
			s->since_rx++;
			if (s->since_rx == win)
				e1f_idle(&s->f, (int)win);
			else if (s->since_rx > win)
				e1f_idle(&s->f, 1);
			if (s->since_rx > win)
				s->since_rx = win + 1;
		}
		uint8_t tx[32];
		const uint8_t *txp = NULL;
		if (dma_on) {
			const uint8_t *pl;
			if (es_pop(&s->rx_es, &pl, !rx_bad(s))) {
				s->f.cnt.rx_slips++;
				s->isr |= E1ISR_SLIP;
			}
			uint8_t *r = rxr + idx;
			const uint8_t *t = txr + idx;
			for (int ts = 0; ts < 32; ts++) {
				r[(size_t)ts * ring] = pl[ts];
				tx[ts] = t[(size_t)ts * ring];
			}
			txp = tx;
			if (++idx == ring)
				idx = 0;
		}
		/* a line-timed span falls back to its oscillator while the line is lost */
		int internal = !line_timed(s) || s->since_rx > win;
		if (internal) {
			uint8_t out[32];
			e1f_tx(&s->f, txp, out, 1);
			if (!(s->maint & E1MAINT_RLB))
				txq_push(s, out);
			if (s->maint & E1MAINT_LLB)
				span_rx_frame(s, out);
		} else if (txp && !(s->maint & (E1MAINT_PLB | E1MAINT_RLB))) {
			if (es_push(&s->tx_es, txp)) {
				s->f.cnt.tx_slips++;
				s->isr |= E1ISR_SLIP;
			}
		}
	}
}

int sim_e1_tick(sim_e1_t *c, int nframes)
{
	if (!c || nframes < 0)
		return -EINVAL;
	int dma_on = c->card.dmactl & 1;
	/* spans are independent: one span at a time keeps its rows of the rings in cache */
	for (int si = 0; si < c->nspans; si++)
		if (enabled(&c->sp[si]))
			span_tick(c, si, nframes, dma_on, c->card.dmacount);
	sim_card_dma_advance(&c->card, (uint32_t)nframes);
	c->clkcnt += (uint32_t)nframes;
	return 0;
}

/* ------------------------------------------------------------- registers */

static void span_reset(struct span *s)
{
	e1f_reset(&s->f);
	s->ctrl = E1CTRL_CRC4 | E1CTRL_HDB3 | E1CTRL_AUTORAI;
	s->maint = 0;
	s->txalm = 0;
	s->prbsctl = 0;
	s->prbsmask = 0xFFFFFFFEu;
	es_reset(&s->rx_es);
	es_reset(&s->tx_es);
	s->txq_rd = s->txq_n = 0;
	s->txq_dropped = 0;
	s->since_rx = 0;
	s->runt = 0;
	s->isr = 0;
	memset(s->latched, 0, sizeof(s->latched));
	s->htx_len = 0;
	s->htx_overflow = 0;
	s->hrx_rdpos = 0;
	s->caschg_snap = 0;
}

static void apply_ctrl(struct span *s)
{
	struct e1f_config cfg;
	e1f_get_config(&s->f, &cfg);
	cfg.cas = (s->ctrl & E1CTRL_CAS) != 0;
	cfg.crc4 = (s->ctrl & E1CTRL_CRC4) != 0;
	cfg.hdb3 = (s->ctrl & E1CTRL_HDB3) != 0;
	cfg.auto_rai = (s->ctrl & E1CTRL_AUTORAI) != 0;
	cfg.ts16_clear = (s->ctrl & E1CTRL_TS16CLEAR) != 0;
	e1f_configure(&s->f, &cfg);
}

static void spans_reset(void *owner)
{
	sim_e1_t *c = owner;
	for (int i = 0; i < c->nspans; i++) {
		span_reset(&c->sp[i]);
		apply_ctrl(&c->sp[i]);
	}
}

static void latch(struct span *s)
{
	s->f.cnt.runt_octets = s->runt;
	memcpy(s->latched, &s->f.cnt, sizeof(s->latched));
}

static uint8_t span_read(struct span *s, unsigned off)
{
	if (off >= E1R_CNT_FAS && off < E1R_CNT_FAS + 4 * E1_NCOUNTERS) {
		unsigned i = (off - E1R_CNT_FAS) / 4;
		return (uint8_t)(s->latched[i] >> (8 * ((off - E1R_CNT_FAS) % 4)));
	}
	if (off >= E1R_CASTX && off < E1R_CASTX + 32)
		return (uint8_t)e1f_cas_tx_get(&s->f, (int)(off - E1R_CASTX));
	if (off >= E1R_CASRX && off < E1R_CASRX + 32)
		return (uint8_t)e1f_cas_rx(&s->f, (int)(off - E1R_CASRX));
	if (off >= E1R_CASCHG && off < E1R_CASCHG + 4) {
		unsigned sh = 8 * (off - E1R_CASCHG);
		s->caschg_snap |= e1f_cas_changed(&s->f);
		uint8_t v = (uint8_t)(s->caschg_snap >> sh);
		s->caschg_snap &= ~(0xFFu << sh);
		return v;
	}
	switch (off) {
	case E1R_CTRL:
		return s->ctrl;
	case E1R_MAINT:
		return s->maint;
	case E1R_TXALM:
		return s->txalm;
	case E1R_SATX:
		return (uint8_t)s->f.sa_tx;
	case E1R_SITX:
		return (uint8_t)s->f.si_tx;
	case E1R_LOSWIN:
		return (uint8_t)s->f.cfg.los_window;
	case E1R_LOSWIN + 1:
		return (uint8_t)(s->f.cfg.los_window >> 8);
	case E1R_PRBSCTL:
		return (uint8_t)(s->prbsctl | (e1f_prbs_sync(&s->f) ? E1PRBS_SYNC : 0));
	case E1R_PRBSMASK:
	case E1R_PRBSMASK + 1:
	case E1R_PRBSMASK + 2:
	case E1R_PRBSMASK + 3:
		return (uint8_t)(s->prbsmask >> (8 * (off - E1R_PRBSMASK)));
	case E1R_STATRAW:
		return (uint8_t)e1f_status_raw(&s->f);
	case E1R_STAT:
		return (uint8_t)e1f_status(&s->f);
	case E1R_SARX:
		return (uint8_t)e1f_sa_rx(&s->f);
	case E1R_ISR: {
		uint8_t v = (uint8_t)(s->isr | e1f_isr_take(&s->f));
		if (s->caschg_snap)
			v |= E1ISR_CAS;
		s->isr = 0;
		return v;
	}
	case E1R_ESTATE:
		return (uint8_t)(s->rx_es.n > 255 ? 255 : s->rx_es.n);
	case E1R_HTXFREE:
		return (uint8_t)e1f_hdlc_tx_free(&s->f);
	case E1R_HRXCNT:
		return (uint8_t)e1f_hdlc_rx_pending(&s->f);
	case E1R_HRXLEN:
		return (uint8_t)e1f_hdlc_rx_head_len(&s->f);
	case E1R_HRXLEN + 1:
		return (uint8_t)(e1f_hdlc_rx_head_len(&s->f) >> 8);
	case E1R_HRXDATA: {
		int len = e1f_hdlc_rx_head_len(&s->f);
		if (s->hrx_rdpos >= len)
			return 0;
		const struct e1f_hfifo *q = &s->f.hrx;
		return q->data[q->head][s->hrx_rdpos++];
	}
	default:
		return 0;
	}
}

static void span_write(struct span *s, unsigned off, uint8_t v)
{
	if (off >= E1R_CASTX && off < E1R_CASTX + 32) {
		e1f_cas_tx(&s->f, (int)(off - E1R_CASTX), v);
		return;
	}
	switch (off) {
	case E1R_CTRL:
		if ((v ^ s->ctrl) & E1CTRL_ENABLE) {
			es_reset(&s->rx_es);
			es_reset(&s->tx_es);
			s->since_rx = 0;
		}
		s->ctrl = v & 0x7F;
		apply_ctrl(s);
		break;
	case E1R_MAINT:
		s->maint = v & (E1MAINT_LLB | E1MAINT_RLB | E1MAINT_PLB);
		break;
	case E1R_INJECT:
		e1f_inject(&s->f, v);
		break;
	case E1R_TXALM:
		s->txalm = v & (E1TXA_RAI | E1TXA_AIS | E1TXA_DMFA);
		e1f_tx_alarms(&s->f, s->txalm);
		break;
	case E1R_SATX:
		e1f_sa_tx(&s->f, v);
		break;
	case E1R_SITX:
		e1f_si_tx(&s->f, v);
		break;
	case E1R_LOSWIN:
	case E1R_LOSWIN + 1: {
		struct e1f_config cfg;
		e1f_get_config(&s->f, &cfg);
		unsigned w = cfg.los_window;
		if (off == E1R_LOSWIN)
			w = (w & 0xFF00u) | v;
		else
			w = (w & 0x00FFu) | ((unsigned)v << 8);
		cfg.los_window = (uint16_t)w;
		e1f_configure(&s->f, &cfg);
		break;
	}
	case E1R_PRBSCTL:
		s->prbsctl = v & (E1PRBS_TX | E1PRBS_RX);
		e1f_prbs(&s->f, v & E1PRBS_TX, v & E1PRBS_RX, s->prbsmask);
		break;
	case E1R_PRBSMASK:
	case E1R_PRBSMASK + 1:
	case E1R_PRBSMASK + 2:
	case E1R_PRBSMASK + 3: {
		unsigned sh = 8 * (off - E1R_PRBSMASK);
		s->prbsmask = (s->prbsmask & ~(0xFFu << sh)) | ((uint32_t)v << sh);
		e1f_prbs(&s->f, s->prbsctl & E1PRBS_TX, s->prbsctl & E1PRBS_RX, s->prbsmask);
		break;
	}
	case E1R_LATCH:
		latch(s);
		break;
	case E1R_HTXCTL:
		if (v & 2) {
			e1f_hdlc_flush(&s->f, 1, 0);
			s->htx_len = 0;
			s->htx_overflow = 0;
		}
		if (v & 1) {
			if (s->htx_overflow || !s->htx_len ||
			    e1f_hdlc_send(&s->f, s->htx_buf, s->htx_len) < 0)
				s->f.cnt.hdlc_bad++;
			s->htx_len = 0;
			s->htx_overflow = 0;
		}
		break;
	case E1R_HTXDATA:
		if (s->htx_len < E1F_HDLC_MAX)
			s->htx_buf[s->htx_len++] = v;
		else
			s->htx_overflow = 1;
		break;
	case E1R_HRXCTL:
		if (v & 2)
			e1f_hdlc_flush(&s->f, 0, 1);
		if ((v & 1) && e1f_hdlc_rx_pending(&s->f)) {
			uint8_t tmp[E1F_HDLC_MAX];
			e1f_hdlc_recv(&s->f, tmp, sizeof(tmp));
		}
		s->hrx_rdpos = 0;
		break;
	default:
		break;
	}
}

static uint8_t unit_read(void *owner, int span, unsigned off)
{
	return span_read(&((sim_e1_t *)owner)->sp[span], off);
}

static void unit_write(void *owner, int span, unsigned off, uint8_t v)
{
	span_write(&((sim_e1_t *)owner)->sp[span], off, v);
}

/* the E1 card's own global registers, after the common block */
static int global_read(void *owner, unsigned addr, uint8_t *v)
{
	sim_e1_t *c = owner;
	switch (addr) {
	case E1G_SPANISR: {
		unsigned bits = 0;
		for (int i = 0; i < c->nspans; i++)
			if (c->sp[i].isr || c->sp[i].f.isr || c->sp[i].f.cas_changed)
				bits |= 1u << i;
		*v = (uint8_t)bits;
		return 1;
	}
	case E1G_CLKCNT:
	case E1G_CLKCNT + 1:
	case E1G_CLKCNT + 2:
	case E1G_CLKCNT + 3:
		*v = (uint8_t)(c->clkcnt >> (8 * (addr - E1G_CLKCNT)));
		return 1;
	default:
		return 0;
	}
}

static const struct sim_card_kind e1_kind = {
	.id = 0xE1,
	.magic = DMA_MAGIC_E1,
	.slot_octets = 32,
	.idle_octet = 0x00,
	.ring_max = E1_RING_MAX,
	.unit_base = E1_SPAN_BASE,
	.unit_stride = E1_SPAN_STRIDE,
};

static const struct sim_card_ops e1_ops = {
	.unit_read = unit_read,
	.unit_write = unit_write,
	.global_read = global_read,
	.reset = spans_reset,
};

/* ------------------------------------------------------------ lifetime */

sim_e1_t *sim_e1_new(int nspans)
{
	if (nspans < 1 || nspans > E1_MAX_SPANS)
		return NULL;
	sim_e1_t *c = calloc(1, sizeof(*c) + (size_t)nspans * sizeof(struct span));
	if (!c)
		return NULL;
	c->nspans = nspans;
	if (sim_card_init(&c->card, &e1_kind, &e1_ops, c, nspans) < 0) {
		free(c);
		return NULL;
	}
	return c;
}

void sim_e1_free(sim_e1_t *c)
{
	if (!c)
		return;
	sim_card_fini(&c->card);
	free(c);
}

const struct regio *sim_e1_regio(sim_e1_t *c)
{
	return c ? &c->card.io : NULL;
}

int sim_e1_nspans(const sim_e1_t *c)
{
	return c ? c->nspans : -EINVAL;
}

struct e1f *sim_e1_framer(sim_e1_t *c, int span)
{
	if (!c || span < 0 || span >= c->nspans)
		return NULL;
	return &c->sp[span].f;
}
