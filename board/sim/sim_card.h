/*
 * sim_card.h - what every simulated CallBox card shares (board/sim/sim_card.c): the SPI front end, the
 * global register block (drivers/cardregs.h) and the TDM DMA area with its header and two rings. The
 * E1 and FXO models embed a `struct sim_card` and answer their own units' registers through its ops.
 */
#ifndef CALLBOX_SIM_CARD_H
#define CALLBOX_SIM_CARD_H

#include <stdint.h>

#include "../../drivers/regio.h"

/* What one kind of card is. */
struct sim_card_kind {
	uint8_t id;              /* CARD_ID */
	uint32_t magic;          /* DMA header magic */
	uint32_t slot_octets;    /* octets one unit moves per ring slot: 32 (E1 span) or 1 (FXO port) */
	uint8_t idle_octet;      /* both rings hold it when DMA starts */
	uint16_t ring_max;
	uint16_t unit_base;      /* unit n's register block at unit_base + n * unit_stride */
	uint16_t unit_stride;
};

/* The model's own parts, called with the model (`owner`). */
struct sim_card_ops {
	uint8_t (*unit_read)(void *owner, int unit, unsigned off);
	void (*unit_write)(void *owner, int unit, unsigned off, uint8_t v);
	/* a global register the common block does not have: 1 and *v if it is one of the model's */
	int (*global_read)(void *owner, unsigned addr, uint8_t *v);
	/* reset the units and the model's own state (the common block resets itself after) */
	void (*reset)(void *owner);
};

struct sim_card {
	struct regio io;
	const struct sim_card_kind *kind;
	const struct sim_card_ops *ops;
	void *owner;
	int nunits;
	uint8_t *dma;
	uint32_t dma_size;
	uint8_t dmactl;
	uint16_t ringlen;
	uint32_t dmacount;
};

/* Allocate the DMA area and reset the card; 0 or -ENOMEM. */
int sim_card_init(struct sim_card *k, const struct sim_card_kind *kind, const struct sim_card_ops *ops,
		  void *owner, int nunits);
void sim_card_fini(struct sim_card *k);
void sim_card_reset(struct sim_card *k);
/* The receive ring of unit `unit` (slot_octets x ring octets) and the transmit ring likewise. */
uint8_t *sim_card_rx_ring(struct sim_card *k, int unit);
const uint8_t *sim_card_tx_ring(const struct sim_card *k, int unit);
/* After the model moved n slots: advance the DMA write pointer (no-op while DMA is off). */
void sim_card_dma_advance(struct sim_card *k, uint32_t n);

#endif
