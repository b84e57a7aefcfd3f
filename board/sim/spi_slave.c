#include "spi_slave.h"

#include <errno.h>

#include "regio.h"

int spi_slave_xfer(void *card, const uint8_t *tx, uint8_t *rx, uint32_t len, spi_slave_read_fn read,
		   spi_slave_write_fn write)
{
	if (len < 2)
		return -EINVAL;
	int rd = tx[0] & REGIO_CMD_READ;
	int noinc = tx[0] & REGIO_CMD_NOINC;
	unsigned addr = ((tx[0] & 0x3Fu) << 8) | tx[1];
	rx[0] = rx[1] = 0;
	for (uint32_t i = 2; i < len; i++) {
		if (rd) {
			rx[i] = read(card, addr);
		} else {
			rx[i] = 0;
			write(card, addr, tx[i]);
		}
		if (!noinc)
			addr = (addr + 1) & REGIO_ADDR_MAX;
	}
	return 0;
}
