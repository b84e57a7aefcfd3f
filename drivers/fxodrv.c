/* fxodrv.c - driver of the CallBox FXO card (register map in fxoregs.h, docs/hardware.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "card.h"
#include "dmahdr.h"
#include "fxodrv.h"
#include "fxoregs.h"
#include "regio.h"

struct fxodrv {
	struct card_drv card;   /* units: the ports; ctrl shadows FXR_CTRL */
};

#define PORT_REG(port, off) ((uint16_t)(FXO_PORT_BASE + (port) * FXO_PORT_STRIDE + (off)))

static int bad_port(const fxodrv_t *d, int port)
{
	return !d || port < 0 || port >= d->card.nunits;
}

fxodrv_t *fxodrv_open(const struct regio *io, int *err)
{
	return card_drv_new(sizeof(fxodrv_t), io, 0xF0, FXO_MAX_PORTS, FXO_PORT_BASE, FXO_PORT_STRIDE, err);   /* struct fxodrv starts with its card_drv */
}

void fxodrv_close(fxodrv_t *d)
{
	free(d);
}

int fxodrv_nports(const fxodrv_t *d)
{
	return d ? d->card.nunits : -EINVAL;
}

int fxodrv_reset(fxodrv_t *d)
{
	return d ? card_drv_reset(&d->card) : -EINVAL;
}

int fxodrv_hook(fxodrv_t *d, int port, int offhook)
{
	if (bad_port(d, port))
		return -EINVAL;
	return card_ctrl_bits(&d->card, port, FXCTRL_OH, offhook);
}

int fxodrv_monitor(fxodrv_t *d, int port, int on)
{
	if (bad_port(d, port))
		return -EINVAL;
	return card_ctrl_bits(&d->card, port, FXCTRL_ONHM, on);
}

int fxodrv_set_gain(fxodrv_t *d, int port, int rx_tenth_db, int tx_tenth_db)
{
	if (bad_port(d, port) || rx_tenth_db < -150 || rx_tenth_db > 120 || tx_tenth_db < -150 ||
	    tx_tenth_db > 120)
		return -EINVAL;
	int rc = regio_wr16(d->card.io, PORT_REG(port, FXR_RXGAIN), (uint16_t)(int16_t)rx_tenth_db);
	if (rc < 0)
		return rc;
	return regio_wr16(d->card.io, PORT_REG(port, FXR_TXGAIN), (uint16_t)(int16_t)tx_tenth_db);
}

int fxodrv_get_gain(fxodrv_t *d, int port, int *rx_tenth_db, int *tx_tenth_db)
{
	if (bad_port(d, port))
		return -EINVAL;
	int rx = regio_rd16(d->card.io, PORT_REG(port, FXR_RXGAIN));
	if (rx < 0)
		return rx;
	int tx = regio_rd16(d->card.io, PORT_REG(port, FXR_TXGAIN));
	if (tx < 0)
		return tx;
	if (rx_tenth_db)
		*rx_tenth_db = (int16_t)(uint16_t)rx;
	if (tx_tenth_db)
		*tx_tenth_db = (int16_t)(uint16_t)tx;
	return 0;
}

int fxodrv_ring_params(fxodrv_t *d, int port, int confirm_ms, int timeout_ms, int threshold_v)
{
	if (bad_port(d, port) || confirm_ms < 1 || confirm_ms > 5000 || timeout_ms < 1 ||
	    timeout_ms > 5000 || threshold_v < 1 || threshold_v > 255)
		return -EINVAL;
	int rc = regio_wr16(d->card.io, PORT_REG(port, FXR_RCC), (uint16_t)confirm_ms);
	if (rc == 0)
		rc = regio_wr16(d->card.io, PORT_REG(port, FXR_RTO), (uint16_t)timeout_ms);
	if (rc == 0)
		rc = regio_wr8(d->card.io, PORT_REG(port, FXR_RDTH), (uint8_t)threshold_v);
	return rc;
}

int fxodrv_status(fxodrv_t *d, int port, struct fxo_port_status *st)
{
	if (bad_port(d, port) || !st)
		return -EINVAL;
	uint8_t b[5];   /* CTRL STAT LV(2) LC */
	int rc = regio_read(d->card.io, PORT_REG(port, FXR_CTRL), b, sizeof(b));
	if (rc < 0)
		return rc;
	st->line_dv = (int16_t)(uint16_t)(b[2] | (b[3] << 8));
	st->loop_ma = b[4];
	st->offhook = (b[1] & FXST_OFFHOOK) != 0;
	st->ringing = (b[1] & FXST_RINGING) != 0;
	st->battery = (b[1] & FXST_BATTERY) != 0;
	st->reversed = (b[1] & FXST_REVERSED) != 0;
	st->ring_raw = (b[1] & FXST_RINGRAW) != 0;
	return 0;
}

int fxodrv_events(fxodrv_t *d, struct fxo_event *ev, int max)
{
	if (!d || max < 0 || (!ev && max))
		return -EINVAL;
	int n = regio_rd16(d->card.io, FXG_EVCNT);
	if (n < 0)
		return n;
	if (n > max)
		n = max;
	for (int i = 0; i < n; i++) {
		uint8_t b[FXO_EVENT_SIZE];
		int rc = regio_read_fifo(d->card.io, FXG_EVDATA, b, sizeof(b));
		if (rc < 0)
			return rc;
		ev[i].type = b[0];
		ev[i].port = b[1];
		ev[i].reserved = 0;
		ev[i].timestamp = (uint32_t)b[4] | ((uint32_t)b[5] << 8) | ((uint32_t)b[6] << 16) |
				  ((uint32_t)b[7] << 24);
		ev[i].value = (int32_t)((uint32_t)b[8] | ((uint32_t)b[9] << 8) | ((uint32_t)b[10] << 16) |
					((uint32_t)b[11] << 24));
	}
	return n;
}

uint32_t fxodrv_samples(fxodrv_t *d)
{
	uint32_t v = 0;
	if (d)
		regio_rd32(d->card.io, FXG_SAMPLES, &v);
	return v;
}

int fxodrv_dma_start(fxodrv_t *d, uint32_t ring_samples)
{
	if (!d)
		return -EINVAL;
	return card_dma_start(d->card.io, &d->card.dma, DMA_MAGIC_FXO, ring_samples, FXO_RING_MAX, (uint32_t)d->card.nunits);
}

int fxodrv_dma_stop(fxodrv_t *d)
{
	return d ? card_dma_stop(d->card.io, &d->card.dma) : -EINVAL;
}

int fxodrv_dma_info(fxodrv_t *d, struct fxo_dma_info *info)
{
	if (!d || !info)
		return -EINVAL;
	int rc = card_dma_rings(&d->card.dma);
	if (rc < 0)
		return rc;
	info->rx = d->card.dma.rx;
	info->tx = d->card.dma.tx;
	info->ring_samples = d->card.dma.ring;
	info->nports = (uint32_t)d->card.nunits;
	info->port_stride = d->card.dma.ring;
	info->count = (uint32_t *)(void *)(d->card.dma.area + DMAH_COUNT);
	return 0;
}

uint32_t fxodrv_dma_count(fxodrv_t *d)
{
	return d ? card_dma_count(&d->card.dma) : 0;
}
