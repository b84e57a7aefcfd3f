/* The device side of the cards' SPI command format (docs/hardware.md), shared by every simulated card:
 * byte 0 = read bit (7), no-increment bit (6), address bits 13..8; byte 1 = address bits 7..0; then data. */
#ifndef CALLBOX_SPI_SLAVE_H
#define CALLBOX_SPI_SLAVE_H

#include <stdint.h>

typedef uint8_t (*spi_slave_read_fn)(void *card, unsigned addr);
typedef void (*spi_slave_write_fn)(void *card, unsigned addr, uint8_t value);

/* Answer one full-duplex transfer of len bytes; returns 0, or -EINVAL for a transfer shorter than the
 * command. */
int spi_slave_xfer(void *card, const uint8_t *tx, uint8_t *rx, uint32_t len, spi_slave_read_fn read,
		   spi_slave_write_fn write);

#endif
