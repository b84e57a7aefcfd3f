/*
 * cardregs.h - the global register block every CallBox card starts with (docs/hardware.md). The E1 and
 * FXO register maps (e1regs.h, fxoregs.h) name these registers for their card and add their own after
 * them; the drivers (drivers/card.c) and the board models (board/sim/sim_card.c) share this block.
 */
#ifndef CALLBOX_CARDREGS_H
#define CALLBOX_CARDREGS_H

enum {
	CARD_ID = 0x0000,        /* ro: card type */
	CARD_REV = 0x0001,       /* ro: 0x01 */
	CARD_NUNITS = 0x0002,    /* ro: spans or ports */
	CARD_RESET = 0x0003,     /* wo: CARD_RESET_KEY resets the whole card */
	CARD_DMACTL = 0x0004,    /* rw: bit0 DMA enable */
	CARD_RINGLEN = 0x0006,   /* rw 16: DMA ring length in slots, only while DMA off */
	CARD_DMACOUNT = 0x0008,  /* ro 32: slots moved since DMA enable (also in the DMA header) */
	CARD_RESET_KEY = 0xA5,
};

#endif
