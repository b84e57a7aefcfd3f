/*
 * sim_fxo.c - the simulated FXO card: per port a DAA (hook switch, AC-coupled ring
 * detector with frequency validation, line voltage / loop current monitors, battery and
 * polarity debounce, A-law codec with hardware gain) behind drivers/fxoregs.h, an event
 * FIFO with sample-counter timestamps, and the TDM DMA area.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim_fxo.h"
#include "sim_card.h"
#include "g711.h"
#include "../../drivers/dmahdr.h"
#include "../../drivers/fxoregs.h"
#include "../../drivers/regio.h"

enum {
	RATE = 8000,
	FEED_OHMS = 800,      /* CO feed resistance (both legs) */
	DAA_OHMS = 100,       /* DAA DC termination slope */
	DAA_KNEE_MV = 6000,   /* DAA DC termination knee */
};

struct fifo16 {
	int16_t d[SIM_FXO_AUDIO_FIFO];
	int rd, n;
};

struct port {
	uint8_t ctrl;
	struct sim_fxo_line line;
	int16_t rxgain, txgain;     /* 0.1 dB */
	float rxmul, txmul;
	uint8_t rdth, fmin, fmax, batth;
	uint16_t rcc, rto, batdb;   /* ms */
	/* ring detector */
	double phase;               /* ring sine phase, cycles */
	int cmp;                    /* comparator: +1 / -1 / 0 unknown */
	uint32_t last_toggle;
	uint32_t last_valid;        /* last toggle that ended a valid half cycle */
	int burst;                  /* valid toggles seen, burst in progress */
	uint32_t burst_start;
	int ringing;
	int ring_raw;
	/* battery / polarity */
	int bat, rev;               /* debounced */
	int bat_raw, rev_raw;
	uint32_t bat_since, rev_since;
	struct fifo16 in, out;
	uint32_t in_underrun;
};

struct event {
	uint8_t b[FXO_EVENT_SIZE];
};

struct sim_fxo {
	struct sim_card card;       /* registers, DMA area */
	int nports;
	uint32_t now;               /* sample counter */
	struct event ev[FXO_EVFIFO];
	int ev_rd, ev_n, ev_pos;
	uint16_t ev_lost;
	struct port p[];
};

static float gain_mul(int tenth_db)
{
	return powf(10.0f, (float)tenth_db / 200.0f);
}

static void post(sim_fxo_t *c, int type, int port, uint32_t ts, int32_t value)
{
	if (c->ev_n == FXO_EVFIFO) {
		c->ev_lost++;
		return;
	}
	struct event *e = &c->ev[(c->ev_rd + c->ev_n) % FXO_EVFIFO];
	memset(e, 0, sizeof(*e));
	e->b[0] = (uint8_t)type;
	e->b[1] = (uint8_t)port;
	for (int i = 0; i < 4; i++) {
		e->b[4 + i] = (uint8_t)(ts >> (8 * i));
		e->b[8 + i] = (uint8_t)((uint32_t)value >> (8 * i));
	}
	c->ev_n++;
}

/* ------------------------------------------------------------ DC model */

static int offhook(const struct port *p)
{
	return p->ctrl & FXCTRL_OH;
}

/* loop current in uA and |tip-ring| in mV */
static void dc_point(const struct port *p, int32_t *ua, int32_t *mv)
{
	int32_t vb = p->line.battery_mv > 0 ? p->line.battery_mv : 0;
	if (!offhook(p) || vb <= DAA_KNEE_MV) {
		*ua = 0;
		*mv = vb;
		return;
	}
	int32_t i = (int32_t)(((int64_t)(vb - DAA_KNEE_MV) * 1000) / (FEED_OHMS + DAA_OHMS));
	*ua = i;
	*mv = DAA_KNEE_MV + (int32_t)(((int64_t)i * DAA_OHMS) / 1000);
}

static int16_t line_dv(const struct port *p)
{
	int32_t ua, mv;
	dc_point(p, &ua, &mv);
	int32_t dv = mv / 100;
	return (int16_t)(p->line.reversed ? dv : -dv);
}

/* ------------------------------------------------------------- ring */

static void ring_end(sim_fxo_t *c, int pi, struct port *p, uint32_t t)
{
	if (p->ringing)
		post(c, FXEV_RING_STOP, pi, t, 0);
	else if (p->burst)
		post(c, FXEV_RING_REJECT, pi, t, (int32_t)((p->last_valid - p->burst_start) / 8));
	p->ringing = 0;
	p->burst = 0;
	p->ring_raw = 0;
}

static void ring_run(sim_fxo_t *c, int pi, struct port *p, int n)
{
	uint32_t rto = (uint32_t)p->rto * 8;
	uint32_t rcc = (uint32_t)p->rcc * 8;
	uint32_t min_half = (uint32_t)(RATE / (2 * (p->fmax ? p->fmax : 1)));
	uint32_t max_half = (uint32_t)(RATE / (2 * (p->fmin ? p->fmin : 1))) + 1;
	double peak = p->line.ring_vrms * 1.41421356;
	if (p->line.ring_vrms <= 0 || p->line.ring_hz <= 0 || peak < p->rdth) {
		/* no ring signal: only the timeout can fire */
		if (p->burst) {
			uint32_t end = p->last_valid + rto;
			if ((int32_t)(end - (c->now + (uint32_t)n)) <= 0)
				ring_end(c, pi, p, (int32_t)(end - c->now) > 0 ? end : c->now);
		}
		p->cmp = 0;
		p->phase = 0;
		return;
	}
	double step = (double)p->line.ring_hz / RATE;
	double th = p->rdth;
	for (int k = 0; k < n; k++) {
		uint32_t t = c->now + (uint32_t)k;
		double v = peak * sin(2.0 * M_PI * p->phase);
		p->phase += step;
		if (p->phase >= 1.0)
			p->phase -= 1.0;
		int nc = v > th ? 1 : v < -th ? -1 : p->cmp;
		if (nc != p->cmp && nc != 0) {
			if (p->cmp != 0) {
				uint32_t half = t - p->last_toggle;
				if (half >= min_half && half <= max_half) {
					if (!p->burst) {
						p->burst = 1;
						p->burst_start = p->last_toggle;
					}
					p->ring_raw = 1;
					p->last_valid = t;
				}
			}
			p->last_toggle = t;
			p->cmp = nc;
		}
		if (p->burst && !p->ringing && t - p->burst_start >= rcc) {
			p->ringing = 1;
			post(c, FXEV_RING_START, pi, t, 0);
		}
		if (p->burst && t - p->last_valid > rto)
			ring_end(c, pi, p, t);
	}
}

/* --------------------------------------------------- battery / polarity */

static void dc_run(sim_fxo_t *c, int pi, struct port *p, int n)
{
	int32_t ua, mv;
	dc_point(p, &ua, &mv);
	int bat = mv >= (int32_t)p->batth * 1000;
	int rev = bat ? (p->line.reversed != 0) : p->rev_raw;
	uint32_t db = (uint32_t)p->batdb * 8;
	if (bat != p->bat_raw) {
		p->bat_raw = bat;
		p->bat_since = c->now;
	}
	if (rev != p->rev_raw) {
		p->rev_raw = rev;
		p->rev_since = c->now;
	}
	uint32_t end = c->now + (uint32_t)n;
	if (p->bat != p->bat_raw && end - p->bat_since >= db) {
		p->bat = p->bat_raw;
		post(c, p->bat ? FXEV_BATTERY_RESTORED : FXEV_BATTERY_LOST, pi, p->bat_since + db, 0);
	}
	if (p->bat && p->rev != p->rev_raw && end - p->rev_since >= db) {
		p->rev = p->rev_raw;
		post(c, FXEV_POLARITY, pi, p->rev_since + db, p->rev);
	}
}

/* ------------------------------------------------------------- audio */

static void fifo_push(struct fifo16 *f, int16_t s)
{
	if (f->n == SIM_FXO_AUDIO_FIFO) {
		f->rd = (f->rd + 1) % SIM_FXO_AUDIO_FIFO;
		f->n--;
	}
	f->d[(f->rd + f->n) % SIM_FXO_AUDIO_FIFO] = s;
	f->n++;
}

static int16_t clip16(float v)
{
	if (v > 32767.0f)
		return 32767;
	if (v < -32768.0f)
		return -32768;
	return (int16_t)lrintf(v);
}

int sim_fxo_tick(sim_fxo_t *c, int n)
{
	if (!c || n < 0)
		return -EINVAL;
	int dma_on = c->card.dmactl & 1;
	uint32_t ring = c->card.ringlen;
	uint8_t *rxr = sim_card_rx_ring(&c->card, 0);
	const uint8_t *txr = sim_card_tx_ring(&c->card, 0);
	for (int pi = 0; pi < c->nports; pi++) {
		struct port *p = &c->p[pi];
		ring_run(c, pi, p, n);
		dc_run(c, pi, p, n);
		int rx_on = offhook(p) || (p->ctrl & FXCTRL_ONHM);
		int tx_on = offhook(p);
		for (int k = 0; k < n; k++) {
			int16_t in = 0;
			if (p->in.n) {
				in = p->in.d[p->in.rd];
				p->in.rd = (p->in.rd + 1) % SIM_FXO_AUDIO_FIFO;
				p->in.n--;
			} else {
				p->in_underrun++;
			}
			int16_t out = 0;
			if (dma_on) {
				uint32_t idx = (c->card.dmacount + (uint32_t)k) % ring;
				rxr[(size_t)pi * ring + idx] = cb_alaw_encode(rx_on ? clip16(in * p->rxmul) : 0);
				if (tx_on)
					out = clip16(cb_alaw_decode(txr[(size_t)pi * ring + idx]) * p->txmul);
			}
			fifo_push(&p->out, out);
		}
	}
	c->now += (uint32_t)n;
	sim_card_dma_advance(&c->card, (uint32_t)n);
	return 0;
}

/* --------------------------------------------------------- line side */

int sim_fxo_line_set(sim_fxo_t *c, int port, const struct sim_fxo_line *line)
{
	if (!c || port < 0 || port >= c->nports || !line)
		return -EINVAL;
	if (line->battery_mv < 0 || line->battery_mv > 200000 || line->ring_vrms < 0 ||
	    line->ring_vrms > 200 || line->ring_hz < 0 || line->ring_hz > 100)
		return -EINVAL;
	c->p[port].line = *line;
	return 0;
}

int sim_fxo_line_get(sim_fxo_t *c, int port, struct sim_fxo_line_state *st)
{
	if (!c || port < 0 || port >= c->nports || !st)
		return -EINVAL;
	int32_t ua, mv;
	dc_point(&c->p[port], &ua, &mv);
	st->offhook = offhook(&c->p[port]) != 0;
	st->loop_ma = ua / 1000;
	st->line_dv = line_dv(&c->p[port]);
	return 0;
}

int sim_fxo_line_audio_in(sim_fxo_t *c, int port, const int16_t *pcm, int n)
{
	if (!c || port < 0 || port >= c->nports || n < 0 || (!pcm && n))
		return -EINVAL;
	struct fifo16 *f = &c->p[port].in;
	int room = SIM_FXO_AUDIO_FIFO - f->n;
	int take = n < room ? n : room;
	for (int i = 0; i < take; i++)
		f->d[(f->rd + f->n + i) % SIM_FXO_AUDIO_FIFO] = pcm[i];
	f->n += take;
	return take;
}

int sim_fxo_line_audio_out(sim_fxo_t *c, int port, int16_t *pcm, int max)
{
	if (!c || port < 0 || port >= c->nports || max < 0 || (!pcm && max))
		return -EINVAL;
	struct fifo16 *f = &c->p[port].out;
	int n = 0;
	while (n < max && f->n) {
		pcm[n++] = f->d[f->rd];
		f->rd = (f->rd + 1) % SIM_FXO_AUDIO_FIFO;
		f->n--;
	}
	return n;
}

/* ----------------------------------------------------------- registers */

static void port_reset(struct port *p)
{
	memset(p, 0, sizeof(*p));
	p->rxmul = p->txmul = 1.0f;
	p->rdth = 40;
	p->rcc = 150;
	p->rto = 128;
	p->fmin = 15;
	p->fmax = 68;
	p->batdb = 20;
	p->batth = 2;
}

static void ports_reset(void *owner)
{
	sim_fxo_t *c = owner;
	for (int i = 0; i < c->nports; i++) {
		struct sim_fxo_line keep = c->p[i].line;   /* the line is not part of the card */
		port_reset(&c->p[i]);
		c->p[i].line = keep;
	}
	c->ev_rd = c->ev_n = c->ev_pos = 0;
	c->ev_lost = 0;
}

static uint8_t stat_reg(const struct port *p)
{
	uint8_t v = 0;
	if (offhook(p))
		v |= FXST_OFFHOOK;
	if (p->ringing)
		v |= FXST_RINGING;
	if (p->bat)
		v |= FXST_BATTERY;
	if (p->rev)
		v |= FXST_REVERSED;
	if (p->ring_raw)
		v |= FXST_RINGRAW;
	return v;
}

static uint8_t port_read(struct port *p, unsigned off)
{
	int32_t ua, mv;
	switch (off) {
	case FXR_CTRL:
		return p->ctrl;
	case FXR_STAT:
		return stat_reg(p);
	case FXR_LV:
	case FXR_LV + 1:
		return (uint8_t)((uint16_t)line_dv(p) >> (8 * (off - FXR_LV)));
	case FXR_LC:
		dc_point(p, &ua, &mv);
		return (uint8_t)(ua / 1000 > 255 ? 255 : ua / 1000);
	case FXR_RXGAIN:
	case FXR_RXGAIN + 1:
		return (uint8_t)((uint16_t)p->rxgain >> (8 * (off - FXR_RXGAIN)));
	case FXR_TXGAIN:
	case FXR_TXGAIN + 1:
		return (uint8_t)((uint16_t)p->txgain >> (8 * (off - FXR_TXGAIN)));
	case FXR_RDTH:
		return p->rdth;
	case FXR_RCC:
	case FXR_RCC + 1:
		return (uint8_t)(p->rcc >> (8 * (off - FXR_RCC)));
	case FXR_RTO:
	case FXR_RTO + 1:
		return (uint8_t)(p->rto >> (8 * (off - FXR_RTO)));
	case FXR_RINGFMIN:
		return p->fmin;
	case FXR_RINGFMAX:
		return p->fmax;
	case FXR_BATDB:
	case FXR_BATDB + 1:
		return (uint8_t)(p->batdb >> (8 * (off - FXR_BATDB)));
	case FXR_BATTH:
		return p->batth;
	default:
		return 0;
	}
}

static uint16_t put_byte16(uint16_t old, unsigned which, uint8_t v)
{
	return which ? (uint16_t)((old & 0x00FF) | (v << 8)) : (uint16_t)((old & 0xFF00) | v);
}

static int16_t clamp_gain(int16_t g)
{
	return g < -150 ? -150 : g > 120 ? 120 : g;
}

static void port_write(sim_fxo_t *c, int pi, unsigned off, uint8_t v)
{
	struct port *p = &c->p[pi];
	switch (off) {
	case FXR_CTRL: {
		int was = offhook(p);
		p->ctrl = v & (FXCTRL_OH | FXCTRL_ONHM);
		if (was != offhook(p))
			post(c, FXEV_HOOK, pi, c->now, offhook(p) ? 1 : 0);
		break;
	}
	case FXR_RXGAIN:
	case FXR_RXGAIN + 1:
		/* the 16-bit value takes effect (clamped) when its high octet is written */
		p->rxgain = (int16_t)put_byte16((uint16_t)p->rxgain, off - FXR_RXGAIN, v);
		if (off != FXR_RXGAIN) {
			p->rxgain = clamp_gain(p->rxgain);
			p->rxmul = gain_mul(p->rxgain);
		}
		break;
	case FXR_TXGAIN:
	case FXR_TXGAIN + 1:
		p->txgain = (int16_t)put_byte16((uint16_t)p->txgain, off - FXR_TXGAIN, v);
		if (off != FXR_TXGAIN) {
			p->txgain = clamp_gain(p->txgain);
			p->txmul = gain_mul(p->txgain);
		}
		break;
	case FXR_RDTH:
		p->rdth = v;
		break;
	case FXR_RCC:
	case FXR_RCC + 1:
		p->rcc = put_byte16(p->rcc, off - FXR_RCC, v);
		break;
	case FXR_RTO:
	case FXR_RTO + 1:
		p->rto = put_byte16(p->rto, off - FXR_RTO, v);
		break;
	case FXR_RINGFMIN:
		p->fmin = v;
		break;
	case FXR_RINGFMAX:
		p->fmax = v;
		break;
	case FXR_BATDB:
	case FXR_BATDB + 1:
		p->batdb = put_byte16(p->batdb, off - FXR_BATDB, v);
		break;
	case FXR_BATTH:
		p->batth = v;
		break;
	default:
		break;
	}
}

static uint8_t unit_read(void *owner, int port, unsigned off)
{
	return port_read(&((sim_fxo_t *)owner)->p[port], off);
}

static void unit_write(void *owner, int port, unsigned off, uint8_t v)
{
	port_write(owner, port, off, v);
}

static uint8_t fxo_global(sim_fxo_t *c, unsigned addr)
{
	switch (addr) {
	case FXG_EVCNT:
	case FXG_EVCNT + 1:
		return (uint8_t)((unsigned)c->ev_n >> (8 * (addr - FXG_EVCNT)));
	case FXG_EVLOST:
	case FXG_EVLOST + 1:
		return (uint8_t)(c->ev_lost >> (8 * (addr - FXG_EVLOST)));
	case FXG_EVDATA: {
		if (!c->ev_n)
			return 0;
		uint8_t v = c->ev[c->ev_rd].b[c->ev_pos++];
		if (c->ev_pos == FXO_EVENT_SIZE) {
			c->ev_pos = 0;
			c->ev_rd = (c->ev_rd + 1) % FXO_EVFIFO;
			c->ev_n--;
		}
		return v;
	}
	case FXG_SAMPLES:
	case FXG_SAMPLES + 1:
	case FXG_SAMPLES + 2:
	case FXG_SAMPLES + 3:
		return (uint8_t)(c->now >> (8 * (addr - FXG_SAMPLES)));
	default:
		return 0;
	}
}

/* the FXO card's own global registers (event FIFO, sample counter), after the common block */
static int global_read(void *owner, unsigned addr, uint8_t *v)
{
	if (addr < FXG_EVCNT || addr >= FXG_SAMPLES + 4)
		return 0;
	*v = fxo_global(owner, addr);
	return 1;
}

static const struct sim_card_kind fxo_kind = {
	.id = 0xF0,
	.magic = DMA_MAGIC_FXO,
	.slot_octets = 1,
	.idle_octet = 0xD5,   /* A-law silence */
	.ring_max = FXO_RING_MAX,
	.unit_base = FXO_PORT_BASE,
	.unit_stride = FXO_PORT_STRIDE,
};

static const struct sim_card_ops fxo_ops = {
	.unit_read = unit_read,
	.unit_write = unit_write,
	.global_read = global_read,
	.reset = ports_reset,
};

sim_fxo_t *sim_fxo_new(int nports)
{
	if (nports < 1 || nports > FXO_MAX_PORTS)
		return NULL;
	cb_g711_init();
	sim_fxo_t *c = calloc(1, sizeof(*c) + (size_t)nports * sizeof(struct port));
	if (!c)
		return NULL;
	c->nports = nports;
	if (sim_card_init(&c->card, &fxo_kind, &fxo_ops, c, nports) < 0) {
		free(c);
		return NULL;
	}
	return c;
}

void sim_fxo_free(sim_fxo_t *c)
{
	if (!c)
		return;
	sim_card_fini(&c->card);
	free(c);
}

const struct regio *sim_fxo_regio(sim_fxo_t *c)
{
	return c ? &c->card.io : NULL;
}

int sim_fxo_nports(const sim_fxo_t *c)
{
	return c ? c->nports : -EINVAL;
}
