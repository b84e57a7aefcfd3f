/* e1drv.c - driver of the CallBox E1 card (register map in e1regs.h, docs/hardware.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "card.h"
#include "dmahdr.h"
#include "e1drv.h"
#include "e1regs.h"
#include "regio.h"

struct e1drv {
	struct card_drv card;   /* units: the spans; ctrl shadows E1R_CTRL */
};

#define SPAN_REG(span, off) ((uint16_t)(E1_SPAN_BASE + (span) * E1_SPAN_STRIDE + (off)))

static int bad_span(const e1drv_t *d, int span)
{
	return !d || span < 0 || span >= d->card.nunits;
}

e1drv_t *e1drv_open(const struct regio *io, int *err)
{
	return card_drv_new(sizeof(e1drv_t), io, 0xE1, E1_MAX_SPANS, E1_SPAN_BASE, E1_SPAN_STRIDE, err);   /* struct e1drv starts with its card_drv */
}

void e1drv_close(e1drv_t *d)
{
	free(d);
}

int e1drv_nspans(const e1drv_t *d)
{
	return d ? d->card.nunits : -EINVAL;
}

int e1drv_reset(e1drv_t *d)
{
	return d ? card_drv_reset(&d->card) : -EINVAL;
}

int e1drv_span_config(e1drv_t *d, int span, const struct e1_span_config *cfg)
{
	if (bad_span(d, span) || !cfg)
		return -EINVAL;
	if (cfg->cas && cfg->ts16_clear)
		return -EINVAL;
	uint8_t v = (uint8_t)(d->card.ctrl[span] & E1CTRL_ENABLE);
	v |= cfg->cas ? E1CTRL_CAS : 0;
	v |= cfg->crc4 ? E1CTRL_CRC4 : 0;
	v |= cfg->hdb3 ? E1CTRL_HDB3 : 0;
	v |= cfg->line_timing ? E1CTRL_LINETIME : 0;
	v |= cfg->auto_rai ? E1CTRL_AUTORAI : 0;
	v |= cfg->ts16_clear ? E1CTRL_TS16CLEAR : 0;
	int rc = regio_wr16(d->card.io, SPAN_REG(span, E1R_LOSWIN), cfg->los_window ? cfg->los_window : 200);
	if (rc < 0)
		return rc;
	return card_ctrl_write(&d->card, span, v);
}

int e1drv_span_enable(e1drv_t *d, int span, int on)
{
	if (bad_span(d, span))
		return -EINVAL;
	return card_ctrl_bits(&d->card, span, E1CTRL_ENABLE, on);
}

int e1drv_span_status(e1drv_t *d, int span, struct e1_span_status *st)
{
	if (bad_span(d, span) || !st)
		return -EINVAL;
	uint8_t b[4];
	int rc = regio_read(d->card.io, SPAN_REG(span, E1R_STATRAW), b, 4);   /* STATRAW STAT SARX ISR */
	if (rc < 0)
		return rc;
	st->raw = b[0];
	st->debounced = b[1];
	st->sa_rx = b[2];
	st->isr = b[3];
	return 0;
}

int e1drv_span_counters(e1drv_t *d, int span, struct e1_counters *c)
{
	if (bad_span(d, span) || !c)
		return -EINVAL;
	uint8_t b[4 * E1_NCOUNTERS];
	int rc = regio_wr8(d->card.io, SPAN_REG(span, E1R_LATCH), 1);
	if (rc < 0)
		return rc;
	rc = regio_read(d->card.io, SPAN_REG(span, E1R_CNT_FAS), b, sizeof(b));
	if (rc < 0)
		return rc;
	uint32_t v[E1_NCOUNTERS];
	for (int i = 0; i < E1_NCOUNTERS; i++)
		v[i] = (uint32_t)b[4 * i] | ((uint32_t)b[4 * i + 1] << 8) | ((uint32_t)b[4 * i + 2] << 16) |
		       ((uint32_t)b[4 * i + 3] << 24);
	c->fas_errors = v[0];
	c->crc_errors = v[1];
	c->febe = v[2];
	c->code_violations = v[3];
	c->rx_slips = v[4];
	c->tx_slips = v[5];
	c->errored_seconds = v[6];
	c->prbs_errors = v[7];
	c->hdlc_rx = v[8];
	c->hdlc_fcs_errors = v[9];
	c->hdlc_aborts = v[10];
	c->hdlc_bad = v[11];
	c->hdlc_tx = v[12];
	c->rx_frames = v[13];
	c->tx_frames = v[14];
	c->runt_octets = v[15];
	c->severely_errored_seconds = v[16];
	return 0;
}

int e1drv_loopback(e1drv_t *d, int span, unsigned loops)
{
	if (bad_span(d, span) || (loops & ~(unsigned)(E1MAINT_LLB | E1MAINT_RLB | E1MAINT_PLB)))
		return -EINVAL;
	if ((loops & E1MAINT_RLB) && (loops & E1MAINT_PLB))
		return -EINVAL;
	return regio_wr8(d->card.io, SPAN_REG(span, E1R_MAINT), (uint8_t)loops);
}

int e1drv_inject(e1drv_t *d, int span, unsigned what)
{
	if (bad_span(d, span) || (what & ~(unsigned)(E1INJ_FAS | E1INJ_CRC | E1INJ_BIT)))
		return -EINVAL;
	return regio_wr8(d->card.io, SPAN_REG(span, E1R_INJECT), (uint8_t)what);
}

int e1drv_tx_alarms(e1drv_t *d, int span, unsigned alarms)
{
	if (bad_span(d, span) || (alarms & ~(unsigned)(E1TXA_RAI | E1TXA_AIS | E1TXA_DMFA)))
		return -EINVAL;
	return regio_wr8(d->card.io, SPAN_REG(span, E1R_TXALM), (uint8_t)alarms);
}

int e1drv_sa_tx(e1drv_t *d, int span, unsigned sa)
{
	if (bad_span(d, span) || sa > 0x1F)
		return -EINVAL;
	return regio_wr8(d->card.io, SPAN_REG(span, E1R_SATX), (uint8_t)sa);
}

int e1drv_prbs(e1drv_t *d, int span, int tx_on, int rx_on, uint32_t tsmask)
{
	if (bad_span(d, span) || (tsmask & 1u))
		return -EINVAL;
	int rc = regio_wr32(d->card.io, SPAN_REG(span, E1R_PRBSMASK), tsmask ? tsmask : 0xFFFFFFFEu);
	if (rc < 0)
		return rc;
	return regio_wr8(d->card.io, SPAN_REG(span, E1R_PRBSCTL),
			 (uint8_t)((tx_on ? E1PRBS_TX : 0) | (rx_on ? E1PRBS_RX : 0)));
}

int e1drv_prbs_result(e1drv_t *d, int span, int *sync, uint32_t *errors)
{
	if (bad_span(d, span))
		return -EINVAL;
	int v = regio_rd8(d->card.io, SPAN_REG(span, E1R_PRBSCTL));
	if (v < 0)
		return v;
	if (sync)
		*sync = (v & E1PRBS_SYNC) != 0;
	if (errors) {
		int rc = regio_wr8(d->card.io, SPAN_REG(span, E1R_LATCH), 1);
		if (rc < 0)
			return rc;
		rc = regio_rd32(d->card.io, SPAN_REG(span, E1R_CNT_PRBS), errors);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int e1drv_dchan_tx_free(e1drv_t *d, int span)
{
	if (bad_span(d, span))
		return -EINVAL;
	return regio_rd8(d->card.io, SPAN_REG(span, E1R_HTXFREE));
}

int e1drv_dchan_send(e1drv_t *d, int span, const uint8_t *buf, uint32_t len)
{
	if (bad_span(d, span) || !buf || len == 0 || len > 300)
		return -EINVAL;
	int free_slots = e1drv_dchan_tx_free(d, span);
	if (free_slots < 0)
		return free_slots;
	if (free_slots == 0)
		return -EAGAIN;
	int rc = regio_write_fifo(d->card.io, SPAN_REG(span, E1R_HTXDATA), buf, len);
	if (rc < 0)
		return rc;
	return regio_wr8(d->card.io, SPAN_REG(span, E1R_HTXCTL), 1);
}

int e1drv_dchan_recv(e1drv_t *d, int span, uint8_t *buf, uint32_t cap)
{
	if (bad_span(d, span) || (!buf && cap))
		return -EINVAL;
	int len = regio_rd16(d->card.io, SPAN_REG(span, E1R_HRXLEN));
	if (len <= 0)
		return len;
	if ((uint32_t)len > cap)
		return -EMSGSIZE;
	int rc = regio_read_fifo(d->card.io, SPAN_REG(span, E1R_HRXDATA), buf, (uint32_t)len);
	if (rc < 0)
		return rc;
	rc = regio_wr8(d->card.io, SPAN_REG(span, E1R_HRXCTL), 1);
	if (rc < 0)
		return rc;
	return len;
}

int e1drv_cas_set(e1drv_t *d, int span, int chan, unsigned abcd)
{
	if (bad_span(d, span) || chan < 1 || chan > 30 || abcd > 0xF)
		return -EINVAL;
	return regio_wr8(d->card.io, SPAN_REG(span, E1R_CASTX + chan), (uint8_t)abcd);
}

int e1drv_cas_set_all(e1drv_t *d, int span, const uint8_t *abcd31)
{
	if (bad_span(d, span) || !abcd31)
		return -EINVAL;
	uint8_t b[30];
	for (int ch = 1; ch <= 30; ch++) {
		if (abcd31[ch] > 0xF)
			return -EINVAL;
		b[ch - 1] = abcd31[ch];
	}
	return regio_write(d->card.io, SPAN_REG(span, E1R_CASTX + 1), b, 30);
}

int e1drv_cas_get_all(e1drv_t *d, int span, uint8_t *abcd31, uint32_t *changed)
{
	if (bad_span(d, span) || !abcd31)
		return -EINVAL;
	if (changed) {
		int rc = regio_rd32(d->card.io, SPAN_REG(span, E1R_CASCHG), changed);
		if (rc < 0)
			return rc;
	}
	abcd31[0] = 0;
	return regio_read(d->card.io, SPAN_REG(span, E1R_CASRX + 1), abcd31 + 1, 30);
}

/* ------------------------------------------------------------------ DMA */

int e1drv_dma_start(e1drv_t *d, uint32_t ring_frames)
{
	if (!d)
		return -EINVAL;
	return card_dma_start(d->card.io, &d->card.dma, DMA_MAGIC_E1, ring_frames, E1_RING_MAX, (uint32_t)d->card.nunits * 32);
}

int e1drv_dma_stop(e1drv_t *d)
{
	return d ? card_dma_stop(d->card.io, &d->card.dma) : -EINVAL;
}

int e1drv_dma_info(e1drv_t *d, struct e1_dma_info *info)
{
	if (!d || !info)
		return -EINVAL;
	int rc = card_dma_rings(&d->card.dma);
	if (rc < 0)
		return rc;
	info->rx = d->card.dma.rx;
	info->tx = d->card.dma.tx;
	info->ring_frames = d->card.dma.ring;
	info->nspans = (uint32_t)d->card.nunits;
	info->span_stride = 32 * d->card.dma.ring;
	info->ts_stride = d->card.dma.ring;
	info->count = (uint32_t *)(void *)(d->card.dma.area + DMAH_COUNT);
	return 0;
}

uint32_t e1drv_dma_count(e1drv_t *d)
{
	return d ? card_dma_count(&d->card.dma) : 0;
}
