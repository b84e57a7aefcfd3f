/* regio.c - register-access helpers over a backend's SPI transfer (command format in regio.h). */
#include <errno.h>
#include <string.h>

#include "regio.h"

static int xfer_chunk(const struct regio *io, int read, int noinc, uint16_t addr, uint8_t *rbuf,
		      const uint8_t *wbuf, uint32_t n)
{
	uint8_t tx[2 + REGIO_MAX_DATA];
	uint8_t rx[2 + REGIO_MAX_DATA];
	if (!io || !io->ops || !io->ops->xfer)
		return -ENODEV;
	if (addr > REGIO_ADDR_MAX || n > REGIO_MAX_DATA)
		return -EINVAL;
	tx[0] = (uint8_t)((read ? REGIO_CMD_READ : 0) | (noinc ? REGIO_CMD_NOINC : 0) | (addr >> 8));
	tx[1] = (uint8_t)addr;
	if (read)
		memset(tx + 2, 0, n);
	else
		memcpy(tx + 2, wbuf, n);
	int rc = io->ops->xfer(io->ctx, tx, rx, n + 2);
	if (rc < 0)
		return rc;
	if (read)
		memcpy(rbuf, rx + 2, n);
	return 0;
}

static int access(const struct regio *io, int read, int noinc, uint16_t addr, uint8_t *rbuf,
		  const uint8_t *wbuf, uint32_t n)
{
	uint32_t done = 0;
	while (done < n) {
		uint32_t chunk = n - done > REGIO_MAX_DATA ? REGIO_MAX_DATA : n - done;
		uint32_t a = noinc ? addr : addr + done;
		if (a + (noinc ? 0 : chunk - 1) > REGIO_ADDR_MAX)
			return -EINVAL;
		int rc = xfer_chunk(io, read, noinc, (uint16_t)a, read ? rbuf + done : NULL,
				    read ? NULL : wbuf + done, chunk);
		if (rc < 0)
			return rc;
		done += chunk;
	}
	return 0;
}

int regio_read(const struct regio *io, uint16_t addr, uint8_t *buf, uint32_t n)
{
	return access(io, 1, 0, addr, buf, NULL, n);
}

int regio_write(const struct regio *io, uint16_t addr, const uint8_t *buf, uint32_t n)
{
	return access(io, 0, 0, addr, NULL, buf, n);
}

int regio_read_fifo(const struct regio *io, uint16_t addr, uint8_t *buf, uint32_t n)
{
	return access(io, 1, 1, addr, buf, NULL, n);
}

int regio_write_fifo(const struct regio *io, uint16_t addr, const uint8_t *buf, uint32_t n)
{
	return access(io, 0, 1, addr, NULL, buf, n);
}

int regio_rd8(const struct regio *io, uint16_t addr)
{
	uint8_t v;
	int rc = regio_read(io, addr, &v, 1);
	return rc < 0 ? rc : v;
}

int regio_wr8(const struct regio *io, uint16_t addr, uint8_t v)
{
	return regio_write(io, addr, &v, 1);
}

int regio_rd16(const struct regio *io, uint16_t addr)
{
	uint8_t v[2];
	int rc = regio_read(io, addr, v, 2);
	return rc < 0 ? rc : (int)(v[0] | (v[1] << 8));
}

int regio_wr16(const struct regio *io, uint16_t addr, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	return regio_write(io, addr, b, 2);
}

int regio_rd32(const struct regio *io, uint16_t addr, uint32_t *v)
{
	uint8_t b[4];
	int rc = regio_read(io, addr, b, 4);
	if (rc < 0)
		return rc;
	*v = (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
	return 0;
}

int regio_wr32(const struct regio *io, uint16_t addr, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	return regio_write(io, addr, b, 4);
}

uint8_t *regio_dma(const struct regio *io, uint32_t *size)
{
	if (!io || !io->ops || !io->ops->dma) {
		if (size)
			*size = 0;
		return NULL;
	}
	uint32_t dummy;
	return io->ops->dma(io->ctx, size ? size : &dummy);
}

void regio_close(struct regio *io)
{
	if (io && io->ops && io->ops->close)
		io->ops->close(io->ctx);
	if (io) {
		io->ops = NULL;
		io->ctx = NULL;
	}
}
