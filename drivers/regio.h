/*
 * regio.h - the one register-access interface of the CallBox card drivers.
 *
 * A `struct regio` is one card on one SPI chip-select plus that card's TDM DMA area.
 * The drivers (e1drv, fxodrv) only ever talk to a card through it, so they cannot tell
 * the two backends apart:
 *   - hardware:  regio_spidev_open() (drivers/regio_spidev.c): Linux spidev for the
 *                control registers, a UIO / character-device mmap for the DMA area;
 *   - simulator: sim_e1_regio() / sim_fxo_regio() (board/sim): the register-level models.
 *
 * SPI command format (docs/hardware.md, "SPI command format"): one transfer =
 *   octet 0: bit 7 = R (1 read, 0 write), bit 6 = NOINC (1: address does not
 *            auto-increment, used for FIFO ports), bits 5..0 = address bits 13..8
 *   octet 1: address bits 7..0
 *   octet 2..: data (write: sent by the host; read: returned by the card in the
 *            same positions of the full-duplex receive buffer; octets 0..1 of the
 *            receive buffer are undefined).
 * Multi-octet registers are little-endian.
 *
 * cffi-friendly: plain C types, caller-allocated buffers, no varargs, no bitfields.
 */
#ifndef CALLBOX_REGIO_H
#define CALLBOX_REGIO_H

#include <stdint.h>

/* Backend operations. Both return 0 / a pointer on success, a negative errno / NULL on failure. */
struct regio_ops {
	/* Full-duplex SPI transfer of `len` octets on this card's chip-select. */
	int (*xfer)(void *ctx, const uint8_t *tx, uint8_t *rx, uint32_t len);
	/* The card's TDM DMA area (layout in docs/hardware.md); *size gets its length in octets. */
	uint8_t *(*dma)(void *ctx, uint32_t *size);
	/* Release the backend (close fds, unmap). May be NULL. */
	void (*close)(void *ctx);
};

struct regio {
	const struct regio_ops *ops;
	void *ctx;
};

/* Largest data part of one transfer the helpers issue (longer accesses are split). */
enum { REGIO_MAX_DATA = 512 };

/* SPI command octet 0 bits. */
enum { REGIO_CMD_READ = 0x80, REGIO_CMD_NOINC = 0x40, REGIO_ADDR_MAX = 0x3fff };

/* Helpers over ops->xfer (drivers/regio.c). Return 0 or a negative errno. */
int regio_read(const struct regio *io, uint16_t addr, uint8_t *buf, uint32_t n);
int regio_write(const struct regio *io, uint16_t addr, const uint8_t *buf, uint32_t n);
/* FIFO ports: n octets at one address (NOINC). */
int regio_read_fifo(const struct regio *io, uint16_t addr, uint8_t *buf, uint32_t n);
int regio_write_fifo(const struct regio *io, uint16_t addr, const uint8_t *buf, uint32_t n);
/* Single registers; the read helpers return the value (>= 0) or a negative errno. */
int regio_rd8(const struct regio *io, uint16_t addr);
int regio_wr8(const struct regio *io, uint16_t addr, uint8_t v);
int regio_rd16(const struct regio *io, uint16_t addr);
int regio_wr16(const struct regio *io, uint16_t addr, uint16_t v);
int regio_rd32(const struct regio *io, uint16_t addr, uint32_t *v);
int regio_wr32(const struct regio *io, uint16_t addr, uint32_t v);
/* DMA area; NULL if the backend has none. */
uint8_t *regio_dma(const struct regio *io, uint32_t *size);
void regio_close(struct regio *io);

#endif
