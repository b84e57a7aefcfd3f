/*
 * test_spidev.c - the hardware regio backend against a fake spidev device.
 * Linked with -Wl,--wrap=open,--wrap=ioctl,--wrap=mmap,--wrap=munmap,--wrap=close: the
 * wrappers below play the kernel for the fake device nodes, check every spi_ioc_transfer
 * the backend issues, and answer from a register file: the simulated E1 card itself, so
 * the E1 driver runs over real spidev code against the same registers as in simulation.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/spi/spidev.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "e1drv.h"
#include "e1framer.h"
#include "e1regs.h"
#include "regio.h"
#include "regio_spidev.h"
#include "sim_e1.h"

enum { FAKE_SPI_FD = 1000, FAKE_UIO_FD = 1001 };

static struct {
	sim_e1_t *card;
	uint8_t mode, bits;
	uint32_t speed;
	uint8_t mode_readback_extra;   /* controller refuses mode 0 */
	int fail_message;              /* errno to fail SPI_IOC_MESSAGE with */
	int transfers;
	int bad_transfers;
	uint8_t last_tx[2 + REGIO_MAX_DATA];
	uint32_t last_len;
	uint32_t lens[64];
	uint8_t heads[64][2];
	int spi_open, uio_open, mapped;
} fk;

int __real_open(const char *path, int flags, ...);
int __real_ioctl(int fd, unsigned long req, ...);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);
int __real_close(int fd);

int __wrap_open(const char *path, int flags, ...);
int __wrap_ioctl(int fd, unsigned long req, ...);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_munmap(void *addr, size_t len);
int __wrap_close(int fd);

int __wrap_open(const char *path, int flags, ...)
{
	if (strcmp(path, "/dev/spidev7.3") == 0) {
		if ((flags & O_ACCMODE) != O_RDWR) {
			errno = EACCES;
			return -1;
		}
		fk.spi_open++;
		return FAKE_SPI_FD;
	}
	if (strcmp(path, "/dev/uio9") == 0) {
		fk.uio_open++;
		return FAKE_UIO_FD;
	}
	va_list ap;
	va_start(ap, flags);
	int mode = (flags & O_CREAT) ? va_arg(ap, int) : 0;
	va_end(ap);
	return __real_open(path, flags, mode);
}

static uint8_t *card_dma(uint32_t *size)
{
	const struct regio *io = sim_e1_regio(fk.card);
	return io->ops->dma(io->ctx, size);
}

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (fd != FAKE_SPI_FD)
		return __real_ioctl(fd, req, arg);
	switch (req) {
	case SPI_IOC_WR_MODE:
		fk.mode = *(uint8_t *)arg;
		return 0;
	case SPI_IOC_RD_MODE:
		*(uint8_t *)arg = (uint8_t)(fk.mode | fk.mode_readback_extra);
		return 0;
	case SPI_IOC_WR_BITS_PER_WORD:
		fk.bits = *(uint8_t *)arg;
		return 0;
	case SPI_IOC_RD_BITS_PER_WORD:
		*(uint8_t *)arg = fk.bits;
		return 0;
	case SPI_IOC_WR_MAX_SPEED_HZ:
		fk.speed = *(uint32_t *)arg;
		return 0;
	case SPI_IOC_MESSAGE(1): {
		const struct spi_ioc_transfer *tr = arg;
		if (fk.fail_message) {
			errno = fk.fail_message;
			return -1;
		}
		if (tr->len < 2 || tr->len > 2 + REGIO_MAX_DATA || !tr->tx_buf || !tr->rx_buf ||
		    tr->bits_per_word != 8 || tr->speed_hz != fk.speed || tr->cs_change != 0 ||
		    tr->delay_usecs != 0) {
			fk.bad_transfers++;
			errno = EINVAL;
			return -1;
		}
		const uint8_t *tx = (const uint8_t *)(uintptr_t)tr->tx_buf;
		uint8_t *rx = (uint8_t *)(uintptr_t)tr->rx_buf;
		if (fk.transfers < 64) {
			fk.lens[fk.transfers] = tr->len;
			fk.heads[fk.transfers][0] = tx[0];
			fk.heads[fk.transfers][1] = tx[1];
		}
		fk.transfers++;
		memcpy(fk.last_tx, tx, tr->len);
		fk.last_len = tr->len;
		const struct regio *io = sim_e1_regio(fk.card);
		io->ops->xfer(io->ctx, tx, rx, tr->len);
		return (int)tr->len;
	}
	default:
		errno = ENOTTY;
		return -1;
	}
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (fd != FAKE_UIO_FD)
		return __real_mmap(addr, len, prot, flags, fd, off);
	uint32_t size;
	uint8_t *dma = card_dma(&size);
	if (addr || len > size || prot != (PROT_READ | PROT_WRITE) || !(flags & MAP_SHARED) || off) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	fk.mapped++;
	return dma;
}

int __wrap_munmap(void *addr, size_t len)
{
	uint32_t size;
	if (fk.card && addr == card_dma(&size)) {
		fk.mapped--;
		return 0;
	}
	return __real_munmap(addr, len);
}

int __wrap_close(int fd)
{
	if (fd == FAKE_SPI_FD) {
		fk.spi_open--;
		return 0;
	}
	if (fd == FAKE_UIO_FD) {
		fk.uio_open--;
		return 0;
	}
	return __real_close(fd);
}

static void fresh(void)
{
	if (fk.card)
		sim_e1_free(fk.card);
	memset(&fk, 0, sizeof(fk));
	fk.card = sim_e1_new(4);
}

static void test_open_errors(void)
{
	fresh();
	struct regio io;
	CHECK_EQ(regio_spidev_open(&io, "/nonexistent/spidev0.0", 1000000, NULL, 0), -ENOENT);
	CHECK_EQ(regio_spidev_open(&io, "/dev/spidev7.3", 0, NULL, 0), -EINVAL);
	CHECK_EQ(regio_spidev_open(&io, "/dev/spidev7.3", 1000000, NULL, 4096), -EINVAL);
	fk.mode_readback_extra = SPI_CPHA;
	CHECK_EQ(regio_spidev_open(&io, "/dev/spidev7.3", 1000000, NULL, 0), -EOPNOTSUPP);
	CHECK_EQ(fk.spi_open, 0);   /* closed again */
	fk.mode_readback_extra = 0;
	/* a DMA area larger than the device's */
	CHECK_EQ(regio_spidev_open(&io, "/dev/spidev7.3", 1000000, "/dev/uio9", 0x7FFFFFFF), -EINVAL);
	CHECK_EQ(fk.spi_open, 0);
	CHECK_EQ(fk.uio_open, 0);
}

static void test_command_bytes(void)
{
	fresh();
	struct regio io;
	CHECK_EQ(regio_spidev_open(&io, "/dev/spidev7.3", 12500000, NULL, 0), 0);
	CHECK_EQ(fk.mode, SPI_MODE_0);
	CHECK_EQ(fk.bits, 8);
	CHECK_EQ(fk.speed, 12500000);
	/* read the ID: 80 00 00 -> E1 */
	CHECK_EQ(regio_rd8(&io, E1G_ID), 0xE1);
	CHECK_EQ(fk.last_len, 3);
	CHECK_EQ(fk.last_tx[0], 0x80);
	CHECK_EQ(fk.last_tx[1], 0x00);
	/* write span 2 CTRL (0x300) = 0x3B: 03 00 3B */
	CHECK_EQ(regio_wr8(&io, 0x300, 0x3B), 0);
	CHECK_EQ(fk.last_len, 3);
	CHECK_EQ(fk.last_tx[0], 0x03);
	CHECK_EQ(fk.last_tx[1], 0x00);
	CHECK_EQ(fk.last_tx[2], 0x3B);
	CHECK_EQ(regio_rd8(&io, 0x300), 0x3B);
	/* 16-bit little-endian */
	CHECK_EQ(regio_wr16(&io, E1G_RINGLEN, 0x0280), 0);
	CHECK_EQ(fk.last_tx[2], 0x80);
	CHECK_EQ(fk.last_tx[3], 0x02);
	CHECK_EQ(regio_rd16(&io, E1G_RINGLEN), 0x280);
	/* long accesses are split at REGIO_MAX_DATA, the address advancing */
	uint8_t buf[1000];
	int t0 = fk.transfers;
	CHECK_EQ(regio_read(&io, 0x0100, buf, sizeof(buf)), 0);
	CHECK_EQ(fk.transfers - t0, 2);
	CHECK_EQ(fk.lens[t0], 2 + 512);
	CHECK_EQ(fk.lens[t0 + 1], 2 + 488);
	CHECK_EQ(fk.heads[t0][0], 0x81);
	CHECK_EQ(fk.heads[t0][1], 0x00);
	CHECK_EQ(fk.heads[t0 + 1][0], 0x83);
	CHECK_EQ(fk.heads[t0 + 1][1], 0x00);
	/* FIFO ports use NOINC and keep the address */
	t0 = fk.transfers;
	CHECK_EQ(regio_write_fifo(&io, 0x100 + E1R_HTXDATA, buf, 600), 0);
	CHECK_EQ(fk.heads[t0][0], 0x41);
	CHECK_EQ(fk.heads[t0][1], E1R_HTXDATA);
	CHECK_EQ(fk.heads[t0 + 1][0], 0x41);
	CHECK_EQ(fk.heads[t0 + 1][1], E1R_HTXDATA);
	CHECK_EQ(regio_read(&io, 0x3FFF, buf, 2), -EINVAL);   /* past the address space */
	/* a failing transfer reaches the caller */
	fk.fail_message = EIO;
	CHECK_EQ(regio_rd8(&io, E1G_ID), -EIO);
	fk.fail_message = 0;
	CHECK(regio_dma(&io, NULL) == NULL);
	CHECK_EQ(fk.bad_transfers, 0);
	regio_close(&io);
	CHECK_EQ(fk.spi_open, 0);
}

static void test_driver_over_spidev(void)
{
	fresh();
	struct regio io;
	uint32_t size;
	card_dma(&size);
	CHECK_EQ(regio_spidev_open(&io, "/dev/spidev7.3", 10000000, "/dev/uio9", size), 0);
	CHECK_EQ(fk.mapped, 1);
	int err;
	e1drv_t *d = e1drv_open(&io, &err);
	CHECK(d != NULL);
	CHECK_EQ(e1drv_nspans(d), 4);
	struct e1_span_config cfg = { .crc4 = 1, .hdb3 = 1, .line_timing = 1, .auto_rai = 1 };
	CHECK_EQ(e1drv_span_config(d, 1, &cfg), 0);
	CHECK_EQ(e1drv_span_enable(d, 1, 1), 0);
	CHECK_EQ(e1drv_dma_start(d, 160), 0);
	/* a far end on span 1 of the "hardware" */
	e1f_t *far = e1f_new();
	static const uint8_t msg[] = { 0x00, 0x01, 0x7F, 0x7E, 0x7D, 0xFF, 0xFF, 0xFF };
	CHECK_EQ(e1drv_dchan_send(d, 1, msg, sizeof(msg)), 0);
	uint8_t line[80 * 32];
	for (int t = 0; t < 10; t++) {
		e1f_tx(far, NULL, line, 80);
		sim_e1_line_rx(fk.card, 1, line, sizeof(line));
		sim_e1_tick(fk.card, 80);
		int n = sim_e1_line_tx(fk.card, 1, line, 80);
		e1f_rx(far, line, NULL, n);
	}
	struct e1_span_status st;
	CHECK_EQ(e1drv_span_status(d, 1, &st), 0);
	CHECK_EQ(st.raw & (E1ST_LOS | E1ST_LOF | E1ST_LMFA), 0);
	uint8_t got[64];
	CHECK_EQ(e1f_hdlc_recv(far, got, sizeof(got)), (int)sizeof(msg));
	CHECK(memcmp(got, msg, sizeof(msg)) == 0);
	CHECK_EQ(e1drv_dma_count(d), 800);
	CHECK_EQ(fk.bad_transfers, 0);
	e1f_free(far);
	e1drv_close(d);
	regio_close(&io);
	CHECK_EQ(fk.mapped, 0);
	CHECK_EQ(fk.spi_open, 0);
	CHECK_EQ(fk.uio_open, 0);
}

int main(void)
{
	RUN(test_open_errors);
	RUN(test_command_bytes);
	RUN(test_driver_over_spidev);
	sim_e1_free(fk.card);
	return check_done();
}
