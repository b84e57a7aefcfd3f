/* dmahdr.h - header of the cards' TDM DMA areas (docs/hardware.md, "TDM DMA areas"). */
#ifndef CALLBOX_DMAHDR_H
#define CALLBOX_DMAHDR_H

enum {
	DMAH_MAGIC = 0,          /* u32 */
	DMAH_VERSION = 4,
	DMAH_NCHAN = 8,          /* spans (E1) or ports (FXO) */
	DMAH_RING = 12,          /* ring length in frames / samples */
	DMAH_COUNT = 16,         /* frames / samples moved since DMA enable: the write pointer */
	DMAH_RXOFF = 20,
	DMAH_TXOFF = 24,
	DMAH_RUNNING = 28,
	DMAH_SIZE = 64,
	DMA_RX_OFFSET = 4096,    /* rx ring always starts here */
	DMA_MAGIC_E1 = 0x31454243,  /* "CBE1" little-endian */
	DMA_MAGIC_FXO = 0x58464243, /* "CBFX" */
};

#endif
