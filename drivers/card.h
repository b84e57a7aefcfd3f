/*
 * card.h - what the drivers of the CallBox cards share (drivers/card.c): the global register block
 * (cardregs.h) and the TDM DMA area (dmahdr.h) with its receive and transmit rings. e1drv and fxodrv
 * add their own units (spans, ports) on top.
 */
#ifndef CALLBOX_CARD_H
#define CALLBOX_CARD_H

#include <stddef.h>
#include <stdint.h>

struct regio;

/* A running DMA area, checked against the card's header when it started. */
struct card_dma {
	uint8_t *area;
	uint32_t size;
	uint32_t ring;           /* slots per ring */
	uint32_t ring_bytes;     /* octets of one ring */
	uint8_t *rx;             /* card -> host ring */
	uint8_t *tx;             /* host -> card ring */
};

enum { CARD_MAX_UNITS = 8 };

/* A driver's view of one card: the register access, its units (spans, ports), a shadow of each unit's
 * control register (offset 0 of the unit's block), and the DMA area once started. */
struct card_drv {
	const struct regio *io;
	int nunits;
	uint16_t unit_base;
	uint16_t unit_stride;
	uint8_t ctrl[CARD_MAX_UNITS];
	struct card_dma dma;
};

/* Probe the card (card_probe) and read the control shadows; 0 or a negative errno. */
int card_open(struct card_drv *c, const struct regio *io, uint8_t id, int max_units, uint16_t unit_base,
	      uint16_t unit_stride);
/* A driver object of `size` octets that starts with its struct card_drv, opened (card_open); NULL with
 * *err set (if err) on failure. Free it with free(). */
void *card_drv_new(size_t size, const struct regio *io, uint8_t id, int max_units, uint16_t unit_base,
		   uint16_t unit_stride, int *err);
/* Reset the card, forget its DMA area and re-read the shadows; 0 or a negative errno. */
int card_drv_reset(struct card_drv *c);
/* Write unit `unit`'s control register and its shadow; 0 or a negative errno. */
int card_ctrl_write(struct card_drv *c, int unit, uint8_t v);
/* Set or clear `bits` of the control register, keeping the rest (from the shadow). */
int card_ctrl_bits(struct card_drv *c, int unit, uint8_t bits, int on);

/* The card's unit count (1..max_units) if its ID register reads `id`; -ENODEV for another card, or the
 * register access's negative errno. */
int card_probe(const struct regio *io, uint8_t id, int max_units);
/* Reset the whole card (its registers and DMA); 0 or a negative errno. */
int card_reset(const struct regio *io);
/* Start DMA with `ring` slots (1..ring_max) per ring of `ring_octets_per_slot` octets (units x octets a
 * unit moves per slot), after checking the card's DMA header (magic, ring length, rings inside the
 * area). The transmit ring starts as A-law silence. 0 or a negative errno; on failure DMA is off. */
int card_dma_start(const struct regio *io, struct card_dma *dma, uint32_t magic, uint32_t ring, uint32_t ring_max,
		   uint32_t ring_octets_per_slot);
/* Check the card's DMA header again (a card may have been reset or gone wrong since) and refresh rx/tx:
 * 0, -ENODEV when DMA is off, -EIO when the header no longer describes the rings. */
int card_dma_rings(struct card_dma *dma);
int card_dma_stop(const struct regio *io, struct card_dma *dma);
/* Slots the card has moved since DMA started (the header's write pointer); 0 when DMA is off. */
uint32_t card_dma_count(const struct card_dma *dma);

#endif
