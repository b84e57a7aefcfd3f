/*
 * regio_spidev.h - hardware backend of regio: Linux spidev for the control registers
 * (SPI_IOC_MESSAGE full-duplex transfers, mode 0, 8 bits per word) and a UIO or
 * character-device mapping for the card's TDM DMA area.
 */
#ifndef CALLBOX_REGIO_SPIDEV_H
#define CALLBOX_REGIO_SPIDEV_H

#include <stdint.h>

struct regio;

/* spidev: e.g. "/dev/spidev0.0"; dma_dev: e.g. "/dev/uio0" (mapped at offset 0) or NULL;
 * dma_size: octets to map (0 = no DMA). Fills *io; returns 0 or a negative errno. */
int regio_spidev_open(struct regio *io, const char *spidev, uint32_t speed_hz,
		      const char *dma_dev, uint32_t dma_size);

#endif
