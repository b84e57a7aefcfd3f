/* sim_card.c - the common part of the simulated cards (sim_card.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim_card.h"
#include "spi_slave.h"
#include "../../drivers/cardregs.h"
#include "../../drivers/dmahdr.h"

static void header_put(struct sim_card *k, int off, uint32_t v)
{
	memcpy(k->dma + off, &v, 4);   /* host is little-endian (x86-64, arm64) */
}

static uint32_t ring_bytes(const struct sim_card *k)
{
	return (uint32_t)k->nunits * k->kind->slot_octets * k->ringlen;
}

void sim_card_reset(struct sim_card *k)
{
	k->ops->reset(k->owner);
	k->dmactl = 0;
	k->ringlen = 640;
	k->dmacount = 0;
	memset(k->dma, 0, DMAH_SIZE);
	header_put(k, DMAH_MAGIC, k->kind->magic);
	header_put(k, DMAH_VERSION, 1);
	header_put(k, DMAH_NCHAN, (uint32_t)k->nunits);
	header_put(k, DMAH_RXOFF, DMA_RX_OFFSET);
}

static uint8_t le_byte(uint32_t v, unsigned index)
{
	return (uint8_t)(v >> (8 * index));
}

static uint8_t reg_read(void *card, unsigned addr)
{
	struct sim_card *k = card;
	const struct sim_card_kind *kind = k->kind;
	if (addr >= kind->unit_base) {
		unsigned unit = (addr - kind->unit_base) / kind->unit_stride;
		if (unit >= (unsigned)k->nunits)
			return 0;
		return k->ops->unit_read(k->owner, (int)unit, (addr - kind->unit_base) % kind->unit_stride);
	}
	switch (addr) {
	case CARD_ID:
		return kind->id;
	case CARD_REV:
		return 0x01;
	case CARD_NUNITS:
		return (uint8_t)k->nunits;
	case CARD_DMACTL:
		return k->dmactl;
	case CARD_RINGLEN:
	case CARD_RINGLEN + 1:
		return le_byte(k->ringlen, addr - CARD_RINGLEN);
	case CARD_DMACOUNT:
	case CARD_DMACOUNT + 1:
	case CARD_DMACOUNT + 2:
	case CARD_DMACOUNT + 3:
		return le_byte(k->dmacount, addr - CARD_DMACOUNT);
	default: {
		uint8_t v = 0;
		return k->ops->global_read(k->owner, addr, &v) ? v : 0;
	}
	}
}

static void dma_control(struct sim_card *k, uint8_t v)
{
	if ((v & 1) && !(k->dmactl & 1)) {
		k->dmacount = 0;
		memset(k->dma + DMA_RX_OFFSET, k->kind->idle_octet, (size_t)ring_bytes(k) * 2);
		header_put(k, DMAH_RING, k->ringlen);
		header_put(k, DMAH_COUNT, 0);
		header_put(k, DMAH_TXOFF, DMA_RX_OFFSET + ring_bytes(k));
	}
	k->dmactl = v & 1;
	header_put(k, DMAH_RUNNING, k->dmactl);
}

static void reg_write(void *card, unsigned addr, uint8_t v)
{
	struct sim_card *k = card;
	const struct sim_card_kind *kind = k->kind;
	if (addr >= kind->unit_base) {
		unsigned unit = (addr - kind->unit_base) / kind->unit_stride;
		if (unit < (unsigned)k->nunits)
			k->ops->unit_write(k->owner, (int)unit, (addr - kind->unit_base) % kind->unit_stride, v);
		return;
	}
	switch (addr) {
	case CARD_RESET:
		if (v == CARD_RESET_KEY)
			sim_card_reset(k);
		break;
	case CARD_DMACTL:
		dma_control(k, v);
		break;
	case CARD_RINGLEN:
	case CARD_RINGLEN + 1: {
		if (k->dmactl & 1)
			break;
		unsigned sh = 8 * (addr - CARD_RINGLEN);
		unsigned r = (k->ringlen & ~(0xFFu << sh)) | ((unsigned)v << sh);
		/* the register holds what was written; an out-of-range length is clamped */
		if (r < 1)
			r = 1;
		if (r > kind->ring_max)
			r = kind->ring_max;
		k->ringlen = (uint16_t)r;
		break;
	}
	default:
		break;
	}
}

static int sim_xfer(void *ctx, const uint8_t *tx, uint8_t *rx, uint32_t len)
{
	return spi_slave_xfer(ctx, tx, rx, len, reg_read, reg_write);
}

static uint8_t *sim_dma(void *ctx, uint32_t *size)
{
	struct sim_card *k = ctx;
	*size = k->dma_size;
	return k->dma;
}

static const struct regio_ops sim_card_regio_ops = {
	.xfer = sim_xfer,
	.dma = sim_dma,
	.close = NULL,
};

int sim_card_init(struct sim_card *k, const struct sim_card_kind *kind, const struct sim_card_ops *ops,
		  void *owner, int nunits)
{
	k->kind = kind;
	k->ops = ops;
	k->owner = owner;
	k->nunits = nunits;
	k->dma_size = DMA_RX_OFFSET + (uint32_t)nunits * kind->slot_octets * kind->ring_max * 2;
	k->dma = aligned_alloc(4096, (k->dma_size + 4095) & ~4095u);
	if (!k->dma)
		return -ENOMEM;
	memset(k->dma, 0, k->dma_size);
	k->io.ops = &sim_card_regio_ops;
	k->io.ctx = k;
	sim_card_reset(k);
	return 0;
}

void sim_card_fini(struct sim_card *k)
{
	free(k->dma);
	k->dma = NULL;
}

uint8_t *sim_card_rx_ring(struct sim_card *k, int unit)
{
	return k->dma + DMA_RX_OFFSET + (size_t)unit * k->kind->slot_octets * k->ringlen;
}

const uint8_t *sim_card_tx_ring(const struct sim_card *k, int unit)
{
	return k->dma + DMA_RX_OFFSET + (size_t)(k->nunits + unit) * k->kind->slot_octets * k->ringlen;
}

void sim_card_dma_advance(struct sim_card *k, uint32_t n)
{
	if (!(k->dmactl & 1))
		return;
	k->dmacount += n;
	header_put(k, DMAH_COUNT, k->dmacount);
}
