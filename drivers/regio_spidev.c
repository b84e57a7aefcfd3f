/*
 * regio_spidev.c - hardware backend of regio: the card's control registers through Linux
 * spidev (one full-duplex SPI_IOC_MESSAGE per register access, mode 0, 8 bits per word),
 * its TDM DMA area through an mmap of a UIO device (map 0) or a character device.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/spi/spidev.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "regio.h"
#include "regio_spidev.h"

struct spidev_ctx {
	int fd;
	uint32_t speed_hz;
	int dma_fd;
	uint8_t *dma;
	uint32_t dma_size;
};

static int xioctl(int fd, unsigned long req, void *arg)
{
	int rc;
	do {
		rc = ioctl(fd, req, arg);
	} while (rc < 0 && errno == EINTR);
	return rc;
}

static int spidev_xfer(void *ctx, const uint8_t *tx, uint8_t *rx, uint32_t len)
{
	struct spidev_ctx *c = ctx;
	struct spi_ioc_transfer tr;
	memset(&tr, 0, sizeof(tr));
	tr.tx_buf = (uint64_t)(uintptr_t)tx;
	tr.rx_buf = (uint64_t)(uintptr_t)rx;
	tr.len = len;
	tr.speed_hz = c->speed_hz;
	tr.bits_per_word = 8;
	tr.cs_change = 0;      /* chip-select is released at the end of the transfer */
	int rc = xioctl(c->fd, SPI_IOC_MESSAGE(1), &tr);
	if (rc < 0)
		return -errno;
	if ((uint32_t)rc != len)
		return -EIO;
	return 0;
}

static uint8_t *spidev_dma(void *ctx, uint32_t *size)
{
	struct spidev_ctx *c = ctx;
	*size = c->dma ? c->dma_size : 0;
	return c->dma;
}

static void spidev_close(void *ctx)
{
	struct spidev_ctx *c = ctx;
	if (!c)
		return;
	if (c->dma)
		munmap(c->dma, c->dma_size);
	if (c->dma_fd >= 0)
		close(c->dma_fd);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

static const struct regio_ops spidev_ops = {
	.xfer = spidev_xfer,
	.dma = spidev_dma,
	.close = spidev_close,
};

int regio_spidev_open(struct regio *io, const char *spidev, uint32_t speed_hz,
		      const char *dma_dev, uint32_t dma_size)
{
	if (!io || !spidev || speed_hz == 0 || (dma_size && !dma_dev))
		return -EINVAL;
	struct spidev_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->dma_fd = -1;
	c->speed_hz = speed_hz;
	int rc;
	c->fd = open(spidev, O_RDWR | O_CLOEXEC);
	if (c->fd < 0)
		goto fail_errno;

	uint8_t mode = SPI_MODE_0;
	uint8_t bits = 8;
	uint32_t speed = speed_hz;
	if (xioctl(c->fd, SPI_IOC_WR_MODE, &mode) < 0 ||
	    xioctl(c->fd, SPI_IOC_WR_BITS_PER_WORD, &bits) < 0 ||
	    xioctl(c->fd, SPI_IOC_WR_MAX_SPEED_HZ, &speed) < 0)
		goto fail_errno;
	/* read back what the controller accepted */
	uint8_t mode_rd = 0xFF, bits_rd = 0;
	if (xioctl(c->fd, SPI_IOC_RD_MODE, &mode_rd) < 0 ||
	    xioctl(c->fd, SPI_IOC_RD_BITS_PER_WORD, &bits_rd) < 0)
		goto fail_errno;
	if ((mode_rd & (SPI_CPHA | SPI_CPOL)) != SPI_MODE_0 || bits_rd != 8) {
		rc = -EOPNOTSUPP;
		goto fail;
	}

	if (dma_size) {
		c->dma_fd = open(dma_dev, O_RDWR | O_SYNC | O_CLOEXEC);
		if (c->dma_fd < 0)
			goto fail_errno;
		void *p = mmap(NULL, dma_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->dma_fd, 0);
		if (p == MAP_FAILED)
			goto fail_errno;
		c->dma = p;
		c->dma_size = dma_size;
	}
	io->ops = &spidev_ops;
	io->ctx = c;
	return 0;

fail_errno:
	rc = -errno;
fail:
	spidev_close(c);
	return rc;
}
