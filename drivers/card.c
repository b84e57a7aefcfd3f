/* card.c - the drivers' common part of every CallBox card (card.h, cardregs.h, dmahdr.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "card.h"
#include "cardregs.h"
#include "dmahdr.h"
#include "regio.h"

int card_probe(const struct regio *io, uint8_t id, int max_units)
{
	int got = regio_rd8(io, CARD_ID);
	if (got < 0)
		return got;
	if (got != id)
		return -ENODEV;
	int n = regio_rd8(io, CARD_NUNITS);
	if (n < 0)
		return n;
	return n >= 1 && n <= max_units ? n : -ENODEV;
}

static int read_shadows(struct card_drv *c)
{
	for (int u = 0; u < c->nunits; u++) {
		int v = regio_rd8(c->io, (uint16_t)(c->unit_base + u * c->unit_stride));
		if (v < 0)
			return v;
		c->ctrl[u] = (uint8_t)v;
	}
	return 0;
}

int card_open(struct card_drv *c, const struct regio *io, uint8_t id, int max_units, uint16_t unit_base,
	      uint16_t unit_stride)
{
	if (max_units > CARD_MAX_UNITS)
		return -EINVAL;
	memset(c, 0, sizeof(*c));
	int n = card_probe(io, id, max_units);
	if (n < 0)
		return n;
	c->io = io;
	c->nunits = n;
	c->unit_base = unit_base;
	c->unit_stride = unit_stride;
	return read_shadows(c);
}

void *card_drv_new(size_t size, const struct regio *io, uint8_t id, int max_units, uint16_t unit_base,
		   uint16_t unit_stride, int *err)
{
	struct card_drv *c = size >= sizeof(*c) ? calloc(1, size) : NULL;
	int e = c ? card_open(c, io, id, max_units, unit_base, unit_stride) : -ENOMEM;
	if (e < 0) {
		free(c);
		c = NULL;
	}
	if (err)
		*err = e;
	return c;
}

int card_drv_reset(struct card_drv *c)
{
	int rc = card_reset(c->io);
	if (rc < 0)
		return rc;
	memset(&c->dma, 0, sizeof(c->dma));
	return read_shadows(c);
}

int card_ctrl_write(struct card_drv *c, int unit, uint8_t v)
{
	int rc = regio_wr8(c->io, (uint16_t)(c->unit_base + unit * c->unit_stride), v);
	if (rc == 0)
		c->ctrl[unit] = v;
	return rc;
}

int card_ctrl_bits(struct card_drv *c, int unit, uint8_t bits, int on)
{
	uint8_t v = on ? (uint8_t)(c->ctrl[unit] | bits) : (uint8_t)(c->ctrl[unit] & ~bits);
	return card_ctrl_write(c, unit, v);
}

int card_reset(const struct regio *io)
{
	return regio_wr8(io, CARD_RESET, CARD_RESET_KEY);
}

static uint32_t header_word(const uint8_t *area, int off)
{
	uint32_t v;
	memcpy(&v, area + off, 4);   /* the header is little-endian, as the host (x86-64, arm64) */
	return v;
}

int card_dma_rings(struct card_dma *dma)
{
	if (!dma || !dma->area)
		return -ENODEV;
	uint64_t ring_bytes = dma->ring_bytes;
	uint64_t rxoff = header_word(dma->area, DMAH_RXOFF), txoff = header_word(dma->area, DMAH_TXOFF);
	int overlap = rxoff < txoff ? rxoff + ring_bytes > txoff : txoff + ring_bytes > rxoff;
	if (rxoff < DMAH_SIZE || txoff < DMAH_SIZE || rxoff + ring_bytes > dma->size ||
	    txoff + ring_bytes > dma->size || overlap)
		return -EIO;   /* the card's DMA header does not describe rings inside its area */
	dma->rx = dma->area + rxoff;
	dma->tx = dma->area + txoff;
	return 0;
}

int card_dma_start(const struct regio *io, struct card_dma *dma, uint32_t magic, uint32_t ring, uint32_t ring_max,
		   uint32_t ring_octets_per_slot)
{
	if (!dma || ring < 1 || ring > ring_max)
		return -EINVAL;
	memset(dma, 0, sizeof(*dma));
	int rc = regio_wr8(io, CARD_DMACTL, 0);
	if (rc == 0)
		rc = regio_wr16(io, CARD_RINGLEN, (uint16_t)ring);
	if (rc < 0)
		return rc;
	uint32_t size;
	uint8_t *area = regio_dma(io, &size);
	if (!area)
		return -ENODEV;
	uint64_t ring_bytes = (uint64_t)ring_octets_per_slot * ring;
	if (DMA_RX_OFFSET + 2 * ring_bytes > size)
		return -ENOSPC;
	rc = regio_wr8(io, CARD_DMACTL, 1);
	if (rc < 0)
		return rc;
	struct card_dma found = {.area = area, .size = size, .ring = ring, .ring_bytes = (uint32_t)ring_bytes};
	if (header_word(area, DMAH_MAGIC) != magic || header_word(area, DMAH_RING) != ring ||
	    card_dma_rings(&found) < 0) {
		regio_wr8(io, CARD_DMACTL, 0);
		return -EIO;
	}
	*dma = found;
	memset(dma->tx, 0xD5, ring_bytes);   /* A-law silence until the host writes the first tick */
	return 0;
}

int card_dma_stop(const struct regio *io, struct card_dma *dma)
{
	if (dma)
		memset(dma, 0, sizeof(*dma));
	return regio_wr8(io, CARD_DMACTL, 0);
}

uint32_t card_dma_count(const struct card_dma *dma)
{
	if (!dma || !dma->area)
		return 0;
	return *(volatile uint32_t *)(void *)(dma->area + DMAH_COUNT);
}
